from metaflow import FlowSpec, step


class StarredNextFlow(FlowSpec):
    @step
    def start(self):
        steps = [self.a, self.b]
        self.next(*steps)

    @step
    def a(self):
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
    StarredNextFlow()
