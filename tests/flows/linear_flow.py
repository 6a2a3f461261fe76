"""start -> middle -> end, with typed parameters and a retried step."""

import os

from metaflow import FlowSpec, JSONType, Parameter, current, retry, step


class LinearFlow(FlowSpec):
    alpha = Parameter("alpha", type=int, default=1)
    greeting = Parameter("greeting-text", default="hi")
    weights = Parameter("weights", type=JSONType, default='{"a": 1}')

    @step
    def start(self):
        print("start says", self.greeting)
        self.x = self.alpha * 10
        self.next(self.middle)

    @retry(times=2)
    @step
    def middle(self):
        print("middle attempt", current.retry_count)
        if current.retry_count == 0:
            raise RuntimeError("flaky on the first attempt")
        self.x += 1
        self.next(self.end)

    @step
    def end(self):
        print("end x", self.x, "env", os.environ.get("FROM_ENVIRONMENT_DECO"))


if __name__ == "__main__":
    LinearFlow()
