from metaflow import FlowSpec, schedule, step


@schedule(cron="0 12 * *")
class FieldsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FieldsFlow()
