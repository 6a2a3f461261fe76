from metaflow import FlowSpec, Parameter, parallel, step


class ThreeErrorsFlow(FlowSpec):
    """Three independent errors, reported together in source order."""

    run_id = Parameter("run_id", default="x")

    @step
    def start(self):
        self.next(self.middle)

    @parallel
    @step
    def middle(self):
        self.next(self.ned)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ThreeErrorsFlow()
