# expect: starred argument
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        steps = [self.end]
        self.next(*steps)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
