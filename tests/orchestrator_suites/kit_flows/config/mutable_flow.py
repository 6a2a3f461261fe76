"""A FlowMutator adds `param2` next to the declared `trigger_param`."""

from metaflow import FlowMutator, FlowSpec, Parameter, step


class with_param2(FlowMutator):
    def pre_mutate(self, mutable_flow):
        mutable_flow.add_parameter(
            "param2", Parameter("param2", default="0", help="added by a FlowMutator")
        )


@with_param2
class MutableFlow(FlowSpec):
    trigger_param = Parameter("trigger_param", default="none")

    @step
    def start(self):
        self.seen = (self.trigger_param, self.param2)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MutableFlow()
