"""A foreach in a foreach: outer_join collects "letter-number" per inner split."""

from metaflow import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.letters = ["x", "y"]
        self.next(self.outer, foreach="letters")

    @step
    def outer(self):
        self.letter = self.input
        self.numbers = [1]
        self.next(self.inner, foreach="numbers")

    @step
    def inner(self):
        self.result = f"{self.letter}-{self.input}"
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.results = [i.result for i in inputs]
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_results = sorted(r for i in inputs for r in i.results)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestedForeachFlow()
