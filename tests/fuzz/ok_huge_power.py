from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    p = Parameter("p", default=10 ** 10 ** 10)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
