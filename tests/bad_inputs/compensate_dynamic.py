from metaflow import FlowSpec, step

from mf_temporal_codegen import compensate

TARGET = "start"


class CompensateDynamicFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @compensate(TARGET)
    def undo(self):
        pass

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CompensateDynamicFlow()
