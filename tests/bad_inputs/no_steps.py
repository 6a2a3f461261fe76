from metaflow import FlowSpec


class NoStepsFlow(FlowSpec):
    def start(self):
        pass


if __name__ == "__main__":
    NoStepsFlow()
