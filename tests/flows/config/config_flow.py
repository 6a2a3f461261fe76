"""Config values are resolved once per run and every task sees the same ones.

The start step rewrites the config file on disk: the later tasks must still see the
values the run started with (as under `python flow.py run`), in their artifacts and
in decorator arguments (`config_expr`), which each task process evaluates.
"""
import json

from metaflow import Config, FlowSpec, config_expr, step, user_step_decorator


@user_step_decorator
def stamp(step_name, flow, inputs, attributes):
    """Store the label it was given (a Config value, evaluated per process)."""
    yield
    flow.stamp = attributes["label"]


class ConfigFlow(FlowSpec):
    settings = Config("settings", default="settings.json")
    mode = Config("mode", default_value="fast", plain=True, parser=str)

    @step
    def start(self):
        self.seen = [self.settings.alpha]
        self.items = list(self.settings["items"])
        with open("settings.json", "w") as out:
            json.dump({"alpha": "changed-on-disk", "items": [9]}, out)
        self.next(self.work, foreach="items")

    @stamp(label=config_expr("settings.alpha"))
    @step
    def work(self):
        self.seen_here = (self.settings.alpha, self.mode, self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = [i.seen_here + (i.stamp,) for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        self.final = (self.settings.alpha, self.mode)


if __name__ == "__main__":
    ConfigFlow()
