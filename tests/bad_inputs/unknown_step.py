from metaflow import FlowSpec, step


class UnknownStepFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.proces)

    @step
    def process(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UnknownStepFlow()
