"""A reusable base flow and a custom step decorator.

`Pipeline` carries the Parameters, the `start` step and a helper method;
subclasses (see ../inherited.py) add the remaining steps. `stamp` is a user
step decorator built with Metaflow's public `user_step_decorator` API.
"""
from metaflow import FlowSpec, Parameter, step, user_step_decorator


@user_step_decorator
def stamp(step_name, flow, inputs, attributes):
    """Record which step ran under the decorator, with an optional label."""
    label = attributes.get("label", "stamped")
    yield  # the step body runs here
    # Runs after the step body succeeded: add one deterministic artifact.
    flow.stamp = "%s:%s" % (label, step_name)


class Pipeline(FlowSpec):
    """Base flow: load a small named dataset and hand it to `clean`."""

    dataset = Parameter("dataset", help="Which built-in dataset", default="letters")
    limit = Parameter("limit", help="Max rows to keep", default=4)

    # Tiny in-code datasets so that runs are fast and deterministic.
    DATASETS = {
        "letters": ["a", "b", "c", "d", "e", "f"],
        "digits": ["1", "2", "3"],
    }

    def load_rows(self):
        """Helper (not a step): the first `limit` rows of the dataset."""
        return list(self.DATASETS[self.dataset][: self.limit])

    @step
    def start(self):
        """Load the dataset; subclasses must define a `clean` step."""
        self.rows = self.load_rows()
        self.source = "pipeline:%s" % self.dataset
        self.next(self.clean)
