from metaflow import FlowSpec, parallel, step


class ParallelStepFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @parallel
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParallelStepFlow()
