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
    learning_rate = Para