# expect: class Base derives from itself
from metaflow import FlowSpec, Parameter, step


class Base(Base):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    Base()
