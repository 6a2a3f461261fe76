from metaflow import FlowSpec, schedule, step


@schedule(hourly=True, timezone="Mars/Olympus_Mons")
class TimezoneFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimezoneFlow()
