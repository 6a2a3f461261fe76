"""start (foreach over items) -> body -> join -> end."""

from metaflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = ["a", "b", "c"]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.value = self.input.upper()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print("values", self.values)


if __name__ == "__main__":
    ForeachFlow()
