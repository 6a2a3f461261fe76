"""@trigger with a computed event: Metaflow evaluates it (tests/test_triggers.py)."""

from metaflow import Config, FlowSpec, config_expr, step, trigger


@trigger(event=config_expr("settings.event"))
class ComputedFlow(FlowSpec):
    settings = Config("settings", default_value={"event": "computed_event"})

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ComputedFlow()
