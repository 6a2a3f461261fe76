from metaflow import FlowSpec, step


class SyntaxErrorFlow(FlowSpec):
    @step
    def start(self):
        self.x = [1, 2
        self.next(self.end)

    @step
    def end(self):
        pass
