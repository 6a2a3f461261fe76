"""Started by every successful run of UpstreamFlow on its own project branch; records
which run started it (tests/test_triggers.py)."""

from metaflow import FlowSpec, current, project, step, trigger_on_finish


@project(name="trig")
@trigger_on_finish(flow="UpstreamFlow")
class DownstreamFlow(FlowSpec):
    @step
    def start(self):
        self.upstream = current.trigger.run.pathspec
        self.upstream_value = current.trigger.run.data.value
        event = current.trigger.event
        self.seen = {"name": event.name, "id": event.id, "type": event.type}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DownstreamFlow()
