from metaflow import FlowSpec, schedule, step


@schedule(hourly=True, every="day")
class AttributeFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AttributeFlow()
