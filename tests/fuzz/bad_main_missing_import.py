# expect: cannot find module 'no_such_flows'
from metaflow import FlowSpec, Parameter, step


from no_such_flows import TrainFlow


if __name__ == "__main__":
    TrainFlow()
