from metaflow import FlowSpec, nvidia, step


class UnknownDecoratorFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @nvidia(gpu=1, gpu_type="H100")
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UnknownDecoratorFlow()
