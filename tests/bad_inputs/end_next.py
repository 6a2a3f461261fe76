from metaflow import FlowSpec, step


class EndNextFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.next(self.end)


if __name__ == "__main__":
    EndNextFlow()
