# expect: unknown self.next() argument `each=`
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end, each='x')

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
