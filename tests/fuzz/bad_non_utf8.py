# expect: is not utf-8
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        print('café')


if __name__ == "__main__":
    F()
