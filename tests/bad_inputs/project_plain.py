from metaflow import FlowSpec, project, step


@project(name="demo")
class ProjectPlainFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectPlainFlow()
