from metaflow import FlowSpec, step


class DynamicNextFlow(FlowSpec):
    @step
    def start(self):
        name = "end"
        self.next(getattr(self, name))

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DynamicNextFlow()
