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
    @catch(var="err