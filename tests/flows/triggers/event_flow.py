"""Started by an event: its Parameters come from the event's payload, and every task
records what `current.trigger` says (tests/test_triggers.py)."""

from metaflow import FlowSpec, Parameter, current, step, trigger


@trigger(event={"name": "data_ready", "parameters": ["alpha", ("count", "n")]})
class EventFlow(FlowSpec):
    alpha = Parameter("alpha", default="none", help="from the payload field alpha")
    count = Parameter("count", default=1, type=int, help="from the payload field n")

    @step
    def start(self):
        self.param = (self.alpha, self.count)
        event = current.trigger.event
        self.seen = {
            "name": event.name,
            "id": event.id,
            "type": event.type,
            "timestamp": event.timestamp,
            "events": len(current.trigger.events),
        }
        self.next(self.end)

    @step
    def end(self):
        self.end_saw = current.trigger.event.name


if __name__ == "__main__":
    EventFlow()
