from metaflow import FlowSpec, step


class Pipeline(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class TypoFlow(Pipline):
    pass


if __name__ == "__main__":
    TypoFlow()
