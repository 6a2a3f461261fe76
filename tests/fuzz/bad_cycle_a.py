# expect: cyclic inheritance
from metaflow import step
from bad_cycle_b import B


class A(B):
    @step
    def end(self):
        pass


if __name__ == "__main__":
    A()
