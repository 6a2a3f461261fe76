from metaflow import FlowSpec, pypi, step


class PypiStepFlow(FlowSpec):
    @pypi(packages={"pandas": "2.2.2"})
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PypiStepFlow()
