"""A switch whose case keys come from a Config (`self.config.<key>`).

start -(route)-> {config.primary: main_route, config.secondary: backup_route}
-> done -> end. Metaflow accepts Config attributes as static switch keys.
"""
from metaflow import Config, FlowSpec, step


class SwitchConfigFlow(FlowSpec):
    """Route with case labels defined in configuration, not in code."""

    routes = Config("routes", default_value={"primary": "blue", "secondary": "green", "pick": "green"})

    @step
    def start(self):
        """Choose the route named by the config's `pick` entry."""
        self.route = self.routes.pick
        self.next(
            {self.routes.primary: self.main_route, self.routes.secondary: self.backup_route},
            condition="route",
        )

    @step
    def main_route(self):
        """Primary case."""
        self.taken = "main"
        self.next(self.done)

    @step
    def backup_route(self):
        """Secondary case (taken 