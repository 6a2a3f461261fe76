# expect: F is instantiated before its class statement
from metaflow import FlowSpec, Parameter, step


if __name__ == "__main__":
    F()


from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
