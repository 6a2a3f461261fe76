# expect: cyclic inheritance
from metaflow import step
from bad_cycle_a import A


class B(A):
    @step
    def start(self):
        self.next(self.end)


if __name__ == "__main__":
    B()
