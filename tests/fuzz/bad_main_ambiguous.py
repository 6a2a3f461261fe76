# expect: the __main__ block may instantiate any of the flows A, B
from metaflow import FlowSpec, Parameter, step


class A(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


from metaflow import FlowSpec, Parameter, step


class B(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    import sys
    if "b" in sys.argv:
        B()
    else:
        A()
