from metaflow import FlowSpec, schedule, step


@schedule(cron="0 6 ? * 2 *")
class NumericDayFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NumericDayFlow()
