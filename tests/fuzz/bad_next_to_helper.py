# expect: step start transitions to unknown step 'helper'
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.helper)

    def helper(self):
        pass

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
