"""``temporal_internal``: the step decorator the step activity adds to every task
(``--with=temporal_internal``), so that Metaflow's task metadata points back at the
Temporal workflow that ran the task (its id and run id, namespace, task queue,
activity and, when the worker knows the UI, its URL), as Argo's
``argo_workflows_internal`` records ``argo-workflow-name``::

    Task("Flow/temporal-.../train/train").metadata_dict["temporal-workflow-id"]

Metaflow finds it through this package's ``metaflow_extensions``
(``STEP_DECORATORS_DESC``). It lives outside ``mf_temporal_codegen.runtime`` so that
importing Metaflow (in every task) does not import Temporal's SDK with it.
"""

from __future__ import annotations

import os

from metaflow.decorators import StepDecorator
from metaflow.metadata_provider import MetaDatum

from .contract import TASK_DECORATOR, task_metadata


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
        entries = [
            MetaDatum(
                field=name, value=value, type=name, tags=[f"attempt_id:{retry_count}"]
            )
            for name, value in task_metadata(os.environ).items()
        ]
        if entries:
            metadata.register_metadata(run_id, step_name, task_id, entries)
