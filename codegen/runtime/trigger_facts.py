"""A flow's ``@trigger``/``@trigger_on_finish`` as Metaflow evaluates them, in a process
where Metaflow loaded the flow (``flow_facts temporal-describe``, ``temporal create``).

This is Metaflow's Argo integration's ``_process_triggers`` without its sensor:
deploy-time values evaluated (``format_deploytime_value``), event names and payload
fields checked, parameter mappings made case-insensitive, Metaflow's default
mapping (a single event without ``parameters`` sets every Parameter from the
payload field of its name), and ``@trigger_on_finish`` names resolved against
``@project`` (``metaflow.<project>.<branch>.<Flow>.end``: a flow's own project and
branch unless the decorator names them). Metaflow is imported lazily.
"""

from __future__ import annotations

import re
from typing import Any

from .triggers import EVENT, RUN

EVENT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
PAYLOAD_FIELD = re.compile(r"^[A-Za-z0-9_]+$")


def described_triggers(flow: Any) -> list[dict[str, Any]]:
    """Every event the flow waits for: ``{"type": "event", "name", "parameters":
    {Parameter: payload field}}`` per ``@trigger`` event, ``{"type": "run", "name":
    "metaflow.<...>.end", "flow", "project", "branch", "parameters": {}}`` per
    ``@trigger_on_finish`` flow. Raises ``MetaflowException`` as Argo's ``create``
    does for what it refuses."""
    from metaflow import current
    from metaflow.exception import MetaflowException

    decorators = getattr(flow, "_flow_decorators", {})
    found: list[dict[str, Any]] = []
    if decorators.get("trigger"):
        deco = decorators["trigger"][0]
        deco.format_deploytime_value()
        params = {
            param.name.lower(): param.name
            for _, param in flow._get_parameters()
            if not param.IS_CONFIG_PARAMETER
        }
        seen: set[str] = set()
        events = []
        for event in deco.triggers:
            name = event["name"]
            if not isinstance(name, str) or not EVENT_NAME.match(name):
                raise MetaflowException(
                    f"Invalid event name *{name}* in *@trigger* decorator. Only "
                    "alphanumeric characters, underscores(_), dashes(-) and dots(.) "
                    "are allowed."
                )
            mapping = {}
            for key, value in event.get("parameters", {}).items():
                if not PAYLOAD_FIELD.match(value):
                    raise MetaflowException(
                        f"Invalid event payload key *{value}* for event *{name}* in "
                        "*@trigger* decorator. Only alphanumeric characters and "
                        "underscores(_) are allowed."
                    )
                if key.lower() not in params:
                    raise MetaflowException(
                        f"Parameter *{key}* defined in the event mappings for "
                        "*@trigger* decorator not found in the flow."
                    )
                if key.lower() in seen:
                    raise MetaflowException(
                        f"Duplicate entries for parameter *{key.lower()}* defined in "
                        "the event mappings for *@trigger* decorator."
                    )
                seen.add(key.lower())
                mapping[params[key.lower()]] = value
            events.append({"type": EVENT, "name": name, "parameters": mapping})
        if len(events) == 1 and not events[0]["parameters"]:
            events[0]["parameters"] = {real: low for low, real in params.items()}
        found += events
    if decorators.get("trigger_on_finish"):
        deco = decorators["trigger_on_finish"][0]
        deco.format_deploytime_value()
        for upstream in deco.triggers:
            project = upstream.get("project") or current.get("project_name")
            branch = upstream.get("branch") or current.get("branch_name")
            if (project or branch) and not (project and branch):
                raise MetaflowException(
                    "Incomplete project info. Please specify both 'project' and "
                    "'project_branch' or use the @project decorator"
                )
            qualified = ".".join(v for v in (project, branch, upstream["flow"]) if v)
            found.append(
                {
                    "type": RUN,
                    "name": f"metaflow.{qualified}.end",
                    "flow": upstream["flow"],
                    "project": project,
                    "branch": branch,
                    "parameters": {},
                }
            )
    return found
