from metaflow import FlowSpec, Parameter, step


class Base(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class Child(Base):
    @step
    def end(self):
        print("child")


if __name__ == "__main__":
    Base()
