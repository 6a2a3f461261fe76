"""A switch whose one case is itself a switch.

start -(kind)-> {number: check_size, text: handle_text};
check_size -(size)-> {small: handle_small, large: handle_large};
all handlers -> finish -> end.
"""
from metaflow import FlowSpec, Parameter, step


class NestedSwitchFlow(FlowSpec):
    """Route a value by type, then numbers again by size."""

    value = Parameter("value", help="An int, or any text", default="42")

    @step
    def start(self):
        """Outer switch: is the value a number or text?"""
        self.kind = "number" if self.value.isdigit() else "text"
        self.next({"number": self.check_size, "text": self.handle_text}