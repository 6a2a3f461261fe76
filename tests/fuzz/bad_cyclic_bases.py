# expect: base class B of A is defined below it
from metaflow import FlowSpec, Parameter, step


class A(B):
    pass


class B(A):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    B()
