"""A scheduled flow: start -> report -> end, on weekday mornings in Paris.

On Temporal the worker keeps a Schedule that starts a run with the default parameters
at 06:00 Europe/Paris, Monday to Friday (each firing its own Metaflow run);
`python flow.py run` and the worker's `trigger` run it once, now.
"""
from metaflow import FlowSpec, Parameter, schedule, step


@schedule(cron="0 6 ? * MON-FRI *", timezone="Europe/Paris")
class ScheduledFlow(FlowSpec):
    """Build a small daily report for one region."""

    region = Parameter("region", default="eu", help="Region to report on")
    days = Parameter("days", default=7, help="Days of history")

    @step
    def start(self):
        """Pick the window."""
        self.window = list(range(self.days))
        self.next(self.report)

    @ste