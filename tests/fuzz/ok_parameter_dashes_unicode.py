from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    p = Parameter("my-param", default=1)
    q = Parameter("näme", default=2)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
