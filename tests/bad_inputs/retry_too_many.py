from metaflow import FlowSpec, retry, step


class RetryTooManyFlow(FlowSpec):
    @retry(times=5)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryTooManyFlow()
