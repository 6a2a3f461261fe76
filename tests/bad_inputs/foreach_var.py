from metaflow import FlowSpec, step


class ForeachVarFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        name = "items"
        self.next(self.body, foreach=name)

    @step
    def body(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachVarFlow()
