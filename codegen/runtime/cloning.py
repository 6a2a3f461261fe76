"""What a run left behind for a resume of it, read from Metaflow's datastore the way
its own ``resume`` decides what to clone (the clones themselves are Metaflow's
``step --clone-only``: see the ``metaflow_clone`` activity). Blocking: call it in a
thread."""

from __future__ import annotations

import json
from typing import Any

from metaflow.datastore import FlowDataStore

from .payloads import PARAMETERS_TASK_ID, OriginRun

# Parameter classes (``_graph_info``) whose values a resume does not hand to ``init``
NOT_PASSED = ("Config", "IncludeFile")


class OriginNotFound(LookupError):
    """The run to resume left nothing in the datastore."""


def read_origin(store: FlowDataStore, origin_run_id: str) -> OriginRun:
    """The origin's Parameter values (as ``init`` reads them: str as is, else JSON;
    those it did not set are left out) and, per step, the ids of the tasks whose
    latest attempt succeeded (Metaflow's ``_task_ok``, as its resume decides)."""
    succeeded: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    found = False
    for ds in store.get_task_datastores(origin_run_id):
        _, step, task_id = ds.pathspec.split("/")
        found = True
        if step == "_parameters":
            if task_id == PARAMETERS_TASK_ID:
                values = _parameter_values(ds)
        elif ds["_task_ok"]:
            succeeded.setdefault(step, []).append(task_id)
    if not found:
        raise OriginNotFound(
            f"run {store.flow_name}/{origin_run_id} has no finished task in the "
            "datastore this worker uses"
        )
    return OriginRun(
        parameters=values,
        succeeded={step: sorted(ids) for step, ids in sorted(succeeded.items())},
    )


def _parameter_values(ds: Any) -> dict[str, str]:
    """The Parameters ``init`` stored (``_graph_info`` lists them, Configs aside,
    which a run takes from its deployment). An IncludeFile is left out: ``init``
    reads it again from its default."""
    values = {}
    for info in ds["_graph_info"]["parameters"]:
        name = info["name"]
        if info["type"] in NOT_PASSED or name not in ds:
            continue
        value = ds[name]
        if value is not None:
            values[name] = value if isinstance(value, str) else json.dumps(value)
    return values
