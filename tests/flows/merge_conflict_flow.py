"""Two branches set the same artifact to different values; the join's
merge_artifacts(inputs) must fail (MergeArtifactsException), as under
`python flow.py run`."""

from metaflow import FlowSpec, current, step


class MergeConflictFlow(FlowSpec):
    @step
    def start(self):
        self.shared = "same"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.value = "from a"
        self.task = current.task_id
        self.next(self.join)

    @step
    def b(self):
        self.value = "from b"
        self.task = current.task_id
        self.next(self.join)

    @step
    def join(self, inputs):
        self.merge_artifacts(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MergeConflictFlow()
