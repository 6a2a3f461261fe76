"""Linear flow that exercises every Parameter type.

str, int, float, bool, JSON, a hyphenated name, and an optional parameter
with no default (None). Steps copy the values into artifacts.
"""
from metaflow import FlowSpec, JSONType, Parameter, step


class ParameterFlow(FlowSpec):
    """Copy every parameter into artifacts and check the defaults."""

    name_param = Parameter("who", help="Who to greet", default="world")
    count = Parameter("count", help="How many repetitions", default=3)
    scale = Parameter("scale", help="A float factor", default=1.5)
    verbose = Parameter("verbose", help="A boolean flag", type=bool, default=False)
    config = Parameter("config", help="JSON settings", type=JSONType, default='{"a": 1}')
    # Hyphen in the CLI name; the attribute uses an underscore.
    learning_rate = Parameter("learning-rate", help="Step size", default=0.1)
    # Required parameter that has a default (so runs need no CLI input).
    region = Parameter("region", help="Where to run", required=True, default="local")
    # Optional, no default: the value is None unless given.
    note = Parameter("note", help="Free text", required=False)

    @step
    def start(self):
        """Copy parameters into plain artifacts."""
        self.greeting = "hello %s" % self.name_param
        self.repeated = [self.name_param] * self.count
        self.scaled = self.count * self.scale
        self.flags = {"verbose": self.verbose, "note_is_none": self.note is None}
        self.settings = dict(self.config)
        self.lr_copy = self.learning_rate
        self.next(self.use_params)

    @step
    def use_params(self):
        """Com