from metaflow import FlowSpec, schedule, step


@schedule(timezone="UTC", cron="0 0 L * ? *")
class LastDayFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LastDayFlow()
