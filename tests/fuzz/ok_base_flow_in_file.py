from metaflow import FlowSpec, Parameter, step


class Base(FlowSpec):
    @step
    def start(self):
        self.next(self.end)


class Child(Base):
    @step
    def end(self):
        pass


if __name__ == "__main__":
    Child()
