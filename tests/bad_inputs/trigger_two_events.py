from metaflow import FlowSpec, step, trigger


@trigger(events=["data_ready", "model_ready"])
class TriggerTwoEventsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TriggerTwoEventsFlow()
