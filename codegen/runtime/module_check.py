"""Does a generated module still orchestrate the flow Metaflow loads?

When a worker starts it has Metaflow describe the flow (``flow_facts``) and compares
that with the generated module: a different graph means the module is stale; a fact
the module fixed when generating (retries, timeout, ``@environment``, compensations)
that Metaflow contradicts is reported with both values, and so are triggers
(``@trigger``/``@trigger_on_finish``) that differ or that this runtime cannot wait
for. Facts the module leaves to
Metaflow (``StepSpec.from_metaflow``) are not compared: Metaflow's win.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .specs import StepSpec
from .subscriptions import module_problems

FACTS = ("retries", "error_retries", "retry_delay_seconds", "timeout_seconds", "env")


def step_specs(module: ModuleType) -> dict[str, StepSpec]:
    """The module's step constants by step name."""
    return {v.name: v for v in vars(module).values() if isinstance(v, StepSpec)}


def problems(module: ModuleType, described: dict[str, Any]) -> list[str]:
    """Why ``module`` cannot serve the flow Metaflow ``described`` (empty: it can)."""
    regenerate = getattr(module, "REGENERATE", None)
    fix = f"regenerate with `{regenerate}`" if regenerate else "regenerate it"
    graph = getattr(module, "GRAPH", None)
    if graph is None:
        return [f"generated module {module.__name__} is too old to be checked: {fix}"]
    generated, actual = set(graph), set(described["graph"])
    if generated != actual:
        lines = [f"  generated: {line}" for line in sorted(generated - actual)]
        lines += [f"  Metaflow:  {line}" for line in sorted(actual - generated)]
        return [
            f"generated module {module.__name__} is stale: the flow's graph changed; "
            f"{fix}\n" + "\n".join(lines)
        ]
    found = []
    specs = step_specs(module)
    for name, spec in sorted(specs.items()):
        facts = described["steps"].get(name, {})
        if spec.from_metaflow:
            continue
        for key in FACTS:
            ours, theirs = getattr(spec, key), facts.get(key)
            if ours != theirs:
                found.append(
                    f"step {name}: the generated module has {key}={ours!r}, Metaflow "
                    f"says {key}={theirs!r} (a decorator the generator cannot see, e.g. "
                    f"added by a StepMutator, or an edited flow); {fix}"
                )
    schedule = getattr(module, "SCHEDULE", None)
    theirs = described.get("schedule")
    if schedule is not None and schedule.cron is not None:
        ours = {"cron": schedule.cron, "timezone": schedule.timezone}
        if ours != theirs:
            found.append(
                f"@schedule: the generated module has {ours}, Metaflow says {theirs}; {fix}"
            )
    elif schedule is None and theirs:
        found.append(
            f"@schedule: the generated module has none, Metaflow says {theirs}; {fix}"
        )
    compensations = {n: s.compensation for n, s in specs.items() if s.compensation}
    if compensations != described.get("compensations", {}):
        found.append(
            f"compensations: the generated module has {compensations}, the flow has "
            f"{described.get('compensations', {})}; {fix}"
        )
    found += module_problems(module, described.get("triggers", []), fix)
    return found
