from metaflow import FlowSpec, current, project, step


@project(name="mf_temporal")
class ProjectFlow(FlowSpec):
    """Record the @project names every step sees."""

    @step
    def start(self):
        self.seen = {"start": self._names()}
        self.next(self.end)

    @step
    def end(self):
        self.seen["end"] = self._names()

    def _names(self):
        return {
            "project_name": current.project_name,
            "branch_name": current.branch_name,
            "project_flow_name": current.project_flow_name,
            "is_production": current.is_production,
            "is_user_branch": current.is_user_branch,
        }


if __name__ == "__main__":
    ProjectFlow()
