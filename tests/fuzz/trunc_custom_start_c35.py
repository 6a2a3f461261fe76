"""Custom entry and exit steps via @step(start=True) / @step(end=True).

begin -> transform -> finish. There is no step named `start` or `end`
(Metaflow 2.19 rejects a flow that has both an annotated and a named one).
"""
from metaflow import FlowSpec, Parameter, current, step


class CustomStartFlow(FlowSpec):
    """A linear flow whose first and last steps have custom names."""

    factor = Param