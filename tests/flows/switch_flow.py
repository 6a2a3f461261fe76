"""start switches on a parameter to `low` or `high`, both go to end."""

from metaflow import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    level = Parameter("level", default="high")

    @step
    def start(self):
        self.choice = self.level
        self.next({"low": self.low, "high": self.high}, condition="choice")

    @step
    def low(self):
        self.picked = "low"
        self.next(self.end)

    @step
    def high(self):
        self.picked = "high"
        self.next(self.end)

    @step
    def end(self):
        print("picked", self.picked)


if __name__ == "__main__":
    SwitchFlow()
