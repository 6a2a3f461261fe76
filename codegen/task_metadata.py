"""``temporal_internal``: the step decorator the step activity adds to every task
(``--with=temporal_internal``), so that Metaflow's task metadata points back at the
Temporal workflow that ran the task (its id and run id, namespace, task queue,
activity and, when the worker knows the UI, its URL), as Argo's
``argo_workflows_internal`` records ``argo-workflow-name``::

    Task("Flow/temporal-.../train/train").metadata_dict["temporal-workflow-id"]

In a run an event started (``@trigger``, ``@trigger_on_finish``) it also makes
``current.trigger`` Metaflow's ``Trigger`` of that event and records it on the start
task (``execution-triggers``, which ``Run(...).trigger`` reads), from the event the
step activity hands every task (``TRIGGER_ENV``), exactly as Argo's
``argo_workflows_internal`` does with its ``METAFLOW_ARGO_EVENT_PAYLOAD_*`` variables.

Metaflow finds it through this package's ``metaflow_extensions``
(``STEP_DECORATORS_DESC``). It lives outside ``mf_temporal_codegen.runtime`` so that
importing Metaflow (in every task) does not import Temporal's SDK with it.
"""

from __future__ import annotations

import json
import os

from metaflow.decorators import StepDecorator
from metaflow.metadata_provider import MetaDatum

from .contract import TASK_DECORATOR, TRIGGER_ENV, task_metadata


class TemporalInternalDecorator(StepDecorator):
    """Records the task's Temporal workflow in its metadata (see the module)."""

    name = TASK_DECORATOR

    def task_pre_step(
        self,
        step_name,
        task_datastore,
        metadata,
        run_id,
        task_id,
        flow,
        graph,
        retry_count,
        max_user_code_retries,
        ubf_context,
        inputs,
    ):
        values = task_metadata(os.environ)
        triggers = triggers_of(os.environ.get(TRIGGER_ENV))
        if triggers:
            from metaflow import current
            from metaflow.events import Trigger

            current._update_env({"trigger": Trigger([dict(t) for t in triggers])})
            if step_name == graph.start_step:
                values["execution-triggers"] = json.dumps(triggers)
        entries = [
            MetaDatum(
                field=name, value=value, type=name, tags=[f"attempt_id:{retry_count}"]
            )
            for name, value in values.items()
        ]
        if entries:
            metadata.register_metadata(run_id, step_name, task_id, entries)


def triggers_of(value: str | None) -> list[dict]:
    """Metaflow's trigger records (``timestamp``, ``id``, ``name``, ``type``) of the
    events in a ``TRIGGER_ENV`` value, as Argo reads them from event payloads."""
    if not value:
        return []
    try:
        events = json.loads(value)
    except ValueError:
        return []
    found = []
    for event in events if isinstance(events, list) else []:
        payload = event.get("payload") if isinstance(event, dict) else None
        if not isinstance(payload, dict):
            continue
        found.append(
            {
                "timestamp": payload.get("timestamp"),
                "id": payload.get("id"),
                "name": payload.get("name"),
                "type": event.get("type"),
            }
        )
    return found
