# expect: unsupported decorator @parallel
from metaflow import FlowSpec, parallel, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @parallel
    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
