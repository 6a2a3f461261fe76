# expect: dynamic transition `getattr(self, 'end')`
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(getattr(self, 'end'))

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
