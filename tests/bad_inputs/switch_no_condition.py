from metaflow import FlowSpec, step


class SwitchNoConditionFlow(FlowSpec):
    @step
    def start(self):
        self.kind = "a"
        self.next({"a": self.a, "b": self.b})

    @step
    def a(self):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchNoConditionFlow()
