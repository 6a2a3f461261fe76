"""A flow that inherits its Parameters and `start` step from a base class.

Pipeline.start (common/pipeline.py) -> clean -> summarize -> end.
`clean` stacks built-in decorators with a custom user step decorator.
"""
from metaflow import catch, resources, retry, step

from common.pipeline import Pipeline, stamp


class InheritedFlow(Pipeline):
    """Clean and summarize the rows loaded by the Pipeline base class.

    Parameters `dataset` and `limit` come from Pipeline.
    """

    @stamp(label="cleaned")
    @retry(times=1)
    @catch(var="err")
    @resources(cpu=1)
    @step
    def clean(self):
        """Upper-case every row (decorated with retry, catch, resources, stamp)."""
        self.clean_rows = [r.upper() for r in self.rows]
        self.next(self.summarize)

    @step
    def summarize(self):
        """Summarize rows; the helper method from the base class is usable here."""
        self.count = len(self.clean_rows)
        self.joined = "".join(self.clean_rows)
        self.reloaded = self.load_rows() == self.rows
        self.next(self.end)

    @step
    def end(self):