"""A flow whose FlowMutator adds a Parameter (`extra`) the generator cannot see:
`temporal trigger --extra ...` still sets it per run."""

from metaflow import FlowMutator, FlowSpec, Parameter, step


class add_extra(FlowMutator):
    def pre_mutate(self, mutable_flow):
        mutable_flow.add_parameter(
            "extra", Parameter("extra", default="unset", help="added by a mutator")
        )


@add_extra
class MutatedFlow(FlowSpec):
    size = Parameter("size", default=1, help="a parameter the source declares")

    @step
    def start(self):
        self.seen = (self.size, self.extra)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MutatedFlow()
