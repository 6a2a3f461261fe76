"""A trivial flow whose name is longer than 25 characters."""

from metaflow import FlowSpec, step


class AFlowWithARatherLongNameNumberOneFlow(FlowSpec):
    @step
    def start(self):
        self.value = 1
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AFlowWithARatherLongNameNumberOneFlow()
