"""What only Metaflow can compute about a flow, computed by Metaflow itself.

The generator reads flows statically; values the source computes (``config_expr``,
Config expressions, deploy-time functions, decorators a ``FlowMutator`` adds) are
left to Metaflow. This module runs the flow file under Metaflow's own command line,
as every task does, with three more commands::

    python -m mf_temporal_codegen.runtime.flow_facts FLOW.py <top-level options> \
        temporal-describe --output FILE
    python -m mf_temporal_codegen.runtime.flow_facts FLOW.py <top-level options> \
        temporal-defaults --output FILE [--parameter NAME ...]
    python -m mf_temporal_codegen.runtime.flow_facts FLOW.py <top-level options> \
        temporal-package --output FILE

``temporal-describe`` writes the flow as Metaflow sees it once configs, mutators and
``--with`` are applied: the graph (one line per step, the format of
:func:`graph_lines`), per step the orchestration facts (retries, ``@catch`` error
retries, the pause between attempts, ``@timeout``, ``@environment``), the project
flow name (``@project``), the schedule (``@schedule``) and the events the flow waits
for (``@trigger``/``@trigger_on_finish``, see ``trigger_facts``).

``temporal-package`` builds Metaflow's code package of the flow (``MetaflowPackage``,
as Argo's ``create`` builds it), saves it in the flow's datastore (content-addressed:
the same code is stored once) and writes where it is (:class:`CodePackage` fields).

``temporal-defaults`` evaluates the deploy-time defaults of the named Parameters
(functions, ``IncludeFile`` defaults) as Metaflow's deployers do
(``deploy_time_eval``); Metaflow's ``init`` would otherwise turn them into None.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import runpy
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..contract import graph_line
from .trigger_facts import described_triggers

DESCRIBE = "temporal-describe"
DEFAULTS = "temporal-defaults"
PACKAGE = "temporal-package"


def facts_of_step(node: Any) -> dict[str, Any]:
    """Retries, error retries, retry pause, timeout and environment of a step, as
    Metaflow's orchestrators derive them from its decorators (Argo's compiler)."""
    from metaflow.plugins.timeout_decorator import get_run_time_limit_for_task

    retries = error_retries = 0
    minutes: Any = None
    env: dict[str, str] = {}
    timeout = None
    for deco in node.decorators:
        if deco.name == "retry":
            minutes = deco.attributes.get("minutes_between_retries", minutes)
        user, error = deco.step_task_retry_count()
        retries, error_retries = max(retries, user), max(error_retries, error)
        if deco.name == "environment":
            env.update(
                {str(k): str(v) for k, v in (deco.attributes.get("vars") or {}).items()}
            )
        if deco.name == "timeout":
            timeout = get_run_time_limit_for_task(node.decorators)
    delay = 0
    if retries or error_retries:
        delay = int(float(2 if minutes is None else minutes) * 60)
    return {
        "retries": retries,
        "error_retries": error_retries,
        "retry_delay_seconds": delay,
        "timeout_seconds": int(timeout or 0),
        "env": dict(sorted(env.items())),
    }


def describe(obj: Any) -> dict[str, Any]:
    """The flow of a Metaflow CLI context object, as ``temporal-describe`` writes it."""
    from metaflow import current

    graph = obj.graph
    steps = sorted(graph.nodes)
    schedule = None
    decos = obj.flow._flow_decorators.get("schedule")
    if decos and decos[0].schedule is not None:
        schedule = {"cron": decos[0].schedule, "timezone": decos[0].timezone}
    cls = type(obj.flow)
    compensations = {
        getattr(cls, name).compensates: name
        for name in sorted(dir(cls))
        if not name.startswith("__")
        and isinstance(getattr(getattr(cls, name, None), "compensates", None), str)
    }
    return {
        "flow": obj.flow.name,
        "graph": [
            graph_line(
                name,
                graph[name].type,
                tuple(graph[name].out_funcs),
                graph[name].foreach_param,
                graph[name].condition if graph[name].type == "split-switch" else None,
            )
            for name in steps
        ],
        "steps": {name: facts_of_step(graph[name]) for name in steps},
        "project_name": current.get("project_name"),
        "project_flow_name": current.get("project_flow_name"),
        "branch_name": current.get("branch_name"),
        "schedule": schedule,
        "compensations": dict(sorted(compensations.items())),
        # @trigger / @trigger_on_finish as Metaflow evaluates them (trigger_facts)
        "triggers": described_triggers(obj.flow),
    }


def deploy_time_defaults(obj: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The named Parameters' deploy-time defaults, evaluated as Argo's ``create``
    does, encoded as ``METAFLOW_INIT_*`` values (str as is, else JSON)."""
    from metaflow.parameters import DeployTimeField, deploy_time_eval

    values = {}
    for _, param in obj.flow._get_parameters():
        if param.IS_CONFIG_PARAMETER or param.name not in names:
            continue
        default = param.kwargs.get("default")
        if not isinstance(default, DeployTimeField):
            continue  # init computes it (a value, or a Config expression)
        value = deploy_time_eval(default)
        if value is not None:
            values[param.name] = value if isinstance(value, str) else json.dumps(value)
    return values


def package(obj: Any) -> dict[str, Any]:
    """Build the flow's code package and save it in its datastore, as Argo's
    ``create`` does; what :class:`~.payloads.CodePackage` holds."""
    from metaflow.package import MetaflowPackage

    built = MetaflowPackage(
        obj.flow,
        obj.environment,
        obj.echo,
        suffixes=obj.package_suffixes,
        flow_datastore=obj.flow_datastore,
    )
    sha = built.package_sha()  # (waits for Metaflow's packaging thread)
    return {
        "sha": sha,
        "url": built.package_url(),
        "ds_type": obj.flow_datastore.TYPE,
        "metadata": built.package_metadata,
        "flow_file": os.path.basename(sys.argv[0]),
    }


def _commands():
    from metaflow._vendor import click

    @click.command(name=DESCRIBE, hidden=True, help="Describe the flow as JSON.")
    @click.option("--output", required=True)
    @click.pass_obj
    def describe_command(obj, output):
        _write(output, describe(obj))

    @click.command(name=DEFAULTS, hidden=True, help="Evaluate deploy-time defaults.")
    @click.option("--output", required=True)
    @click.option("--parameter", "names", multiple=True)
    @click.pass_obj
    def defaults_command(obj, output, names):
        _write(output, deploy_time_defaults(obj, tuple(names)))

    @click.command(name=PACKAGE, hidden=True, help="Build and save the package.")
    @click.option("--output", required=True)
    @click.pass_obj
    def package_command(obj, output):
        _write(output, package(obj))

    return describe_command, defaults_command, package_command


def _write(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)


def run_flow_with_commands(commands, argv: list[str]) -> None:
    """Run ``argv[0]`` (a flow file) as ``__main__`` under Metaflow's command line
    with ``commands`` registered, as ``python flow.py argv[1:]`` would run it.

    The commands join Metaflow's CLI right after the flow first imports it: that
    import reads the flow class's decorators (``--branch`` of ``@project``, Config
    options), so importing it any earlier would lose them."""
    flow_file = os.path.abspath(argv[0])
    sys.argv = [argv[0], *argv[1:]]
    sys.path[0] = os.path.dirname(flow_file)

    def register(cli_module: ModuleType) -> None:
        for command in commands:
            cli_module.cli.add_command(command)

    sys.meta_path.insert(0, _AfterImport("metaflow.cli", register))
    runpy.run_path(flow_file, run_name="__main__")
    # Metaflow's command line exits by itself; a flow file that never starts it
    # (no `if __name__ == "__main__": MyFlow()`) ends up here.
    print(f"{argv[0]} did not start Metaflow's command line", file=sys.stderr)
    raise SystemExit(2)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``callback(module)`` once module ``name`` has been imported."""

    def __init__(self, name: str, callback: Callable[[ModuleType], None]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            self.callback(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def main(argv: list[str] | None = None) -> None:
    run_flow_with_commands(_commands(), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
