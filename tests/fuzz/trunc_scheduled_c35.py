"""A scheduled flow: start -> report -> end, on weekday mornings in Paris.

On Temporal the worker keeps a Schedule that starts a run with the default parameters
at 06:00 Europe/Paris, Monday to Friday (each firing its own Metaflow run);
`python flow.py run` and the worker's `trigger` run it once, now.
"""
from metaflow import FlowSpec, Parameter, schedule, step


@schedule(cron="0 6 ? * MON-FRI *