from metaflow import FlowSpec, step

import mf_temporal_codegen


class CompensateStepFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @mf_temporal_codegen.compensate("start")
    @step
    def end(self):
        pass


if __name__ == "__main__":
    CompensateStepFlow()
