from metaflow import FlowSpec, step

from mf_temporal_codegen import compensate


class CompensateTwiceFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @compensate("start")
    def undo(self):
        pass

    @compensate("start")
    def undo_again(self):
        pass

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CompensateTwiceFlow()
