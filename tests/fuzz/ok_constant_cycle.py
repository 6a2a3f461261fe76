from metaflow import FlowSpec, Parameter, step

A = B
B = A


class F(FlowSpec):
    p = Parameter("p", default=A)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
