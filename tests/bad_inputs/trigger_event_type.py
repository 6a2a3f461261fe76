from metaflow import FlowSpec, step, trigger


@trigger(event=3)
class TriggerEventTypeFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TriggerEventTypeFlow()
