"""A @project flow whose end step records the branch its tasks saw."""

from metaflow import FlowSpec, current, project, step


@project(name="kit_hello_project")
class HelloProjectFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.branch = current.branch_name


if __name__ == "__main__":
    HelloProjectFlow()
