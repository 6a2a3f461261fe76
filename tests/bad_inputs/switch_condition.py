from metaflow import FlowSpec, step


class SwitchConditionFlow(FlowSpec):
    @step
    def start(self):
        self.kind = "a"
        attr = "kind"
        self.next({"a": self.a, "b": self.b}, condition=attr)

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
    SwitchConditionFlow()
