from metaflow import FlowSpec, project, step


@project(name="My-Project")
class ProjectNameFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectNameFlow()
