from metaflow import FlowSpec, Parameter, step


class ReservedParameterFlow(FlowSpec):
    tags = Parameter("tags", default="x")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ReservedParameterFlow()
