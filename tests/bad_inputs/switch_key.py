from metaflow import FlowSpec, step

KIND_A = "a"


class SwitchKeyFlow(FlowSpec):
    @step
    def start(self):
        self.kind = "a"
        self.next({KIND_A: self.a, "b": self.b}, condition="kind")

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
    SwitchKeyFlow()
