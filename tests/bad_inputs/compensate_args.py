from metaflow import FlowSpec, step

from mf_temporal_codegen.compensate import compensate


class CompensateArgsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @compensate("start")
    def undo(self, reason):
        pass

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CompensateArgsFlow()
