from metaflow import FlowSpec, step


class SwitchToJoinFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.kind = "skip"
        self.next({"work": self.work, "skip": self.join}, condition="kind")

    @step
    def work(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchToJoinFlow()
