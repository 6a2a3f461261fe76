from metaflow import FlowSpec, step


class BadPipeline(FlowSpec):
    """A base flow whose start step names a step that does not exist."""

    @step
    def start(self):
        self.rows = [1, 2, 3]
        self.next(self.clen)
