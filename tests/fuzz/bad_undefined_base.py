# expect: base class Pipline of F is not defined
from metaflow import FlowSpec, Parameter, step


class F(Pipline):
    pass


if __name__ == "__main__":
    F()
