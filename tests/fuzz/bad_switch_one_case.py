# expect: switch step start defines 1 case(s)
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.x = 'a'
        self.next({'a': self.end}, condition='x')

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
