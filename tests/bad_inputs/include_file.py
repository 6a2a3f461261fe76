from metaflow import FlowSpec, IncludeFile, step


class IncludeFileFlow(FlowSpec):
    data = IncludeFile("data", default="data.csv")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    IncludeFileFlow()
