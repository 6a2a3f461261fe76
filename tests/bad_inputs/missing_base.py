from metaflow import step

from nowhere.pipeline import Pipeline


class MissingBaseFlow(Pipeline):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MissingBaseFlow()
