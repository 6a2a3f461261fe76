from metaflow import FlowSpec, project, step


@project(name="demo", branch="Feature-1")
class ProjectBranchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectBranchFlow()
