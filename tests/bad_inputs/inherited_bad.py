from metaflow import step

from bad_base.pipeline import BadPipeline


class InheritedBadFlow(BadPipeline):
    @step
    def clean(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    InheritedBadFlow()
