"""A switch whose case keys come from a Config (`self.config.<key>`).

start -(route)-> {config.primary: main_route, config.secondary: backup_route}
-> done -> end. Metaflow accepts Config attributes as static switch keys.
"""
from metaflow import Config, FlowSpec, step


class SwitchConfigFlow(FlowSpec):
    """Route with case labels defined in configuration, not in code."""

    routes = Config("routes", default_value={"primary": "blue", "secondary": "green", "pick": "green"})
