"""Two Configs and one Parameter; the @project name comes from a Config."""

from metaflow import Config, FlowSpec, Parameter, config_expr, project, step


@project(name=config_expr("cfg_default_value.a.project_name"))
class ConfigSimpleFlow(FlowSpec):
    trigger_param = Parameter("trigger_param", default="none")
    cfg = Config("cfg", default_value={"size": 2})
    cfg_default_value = Config(
        "cfg_default_value",
        default_value={"a": {"project_name": "config_project", "b": "1"}},
    )

    @step
    def start(self):
        self.sizes = list(range(self.cfg.size))
        self.next(self.end)

    @step
    def end(self):
        self.config_val_2 = self.cfg_default_value.a.b


if __name__ == "__main__":
    ConfigSimpleFlow()
