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
        self.next({"number": self.check_size, "text": self.handle_text}, condition="kind")

    @step
    def check_size(self):
        """Inner switch: small or large number."""
        self.number = int(self.value)
        self.size = "small" if self.number < 10 else "large"
        self.next({"small": self.handle_small, "large": self.handle_large}, condition="size")

    @step
    def handle_small(self):
        """Small numbers are squared."""
        self.outcome = self.number * self.number
        self.next(self.finish)

    @step
    def handle_large(self):
        """Large numbers are halved."""
        self.outcome = self.number // 2
        self.next(self.finish)

    @step
    def handle_text(self):
  