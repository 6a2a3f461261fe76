from metaflow import FlowSpec, step

from mf_temporal_codegen import compensate


class CompensateUnknownFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.charge)

    @step
    def charge(self):
        self.next(self.end)

    @compensate("chrage")
    def refund(self):
        pass

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CompensateUnknownFlow()
