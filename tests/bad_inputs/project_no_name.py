from metaflow import FlowSpec, project, step


@project(branch="feature")
class ProjectNoNameFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectNoNameFlow()
