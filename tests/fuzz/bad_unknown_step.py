# expect: step start transitions to unknown step 'ned'
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.ned)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
