from metaflow import FlowSpec, Parameter, schedule, step


@schedule(daily=True)
class RequiredParamFlow(FlowSpec):
    region = Parameter("region", default="eu")
    date = Parameter("date", required=True, help="Day to process")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RequiredParamFlow()
