"""start -> middle (@retry(times=2), no pause) -> end: attempt accounting tests."""

from metaflow import FlowSpec, retry, step


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @retry(times=2, minutes_between_retries=0)
    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFlow()
