"""Run one ``@compensate`` method as a Metaflow task of the hidden step
``_compensate_<step>``, with the task id of the task it undoes.

The ``metaflow_compensate`` activity starts it as::

    python -m mf_temporal_codegen.runtime.compensation_task FLOW.py <top-level options> \
        temporal-compensate --run-id R --step S --task-id T --handler H \
        --retry-count A --fallback RUN/STEP/TASK [--tag TAG ...]

The flow file runs as ``__main__`` under Metaflow's own command line with one more
command registered, so configs, flow decorators (``@project``), the datastore and the
metadata service are set up exactly as for Metaflow's ``step`` command. The task is
recorded like a linear step's: ``self`` reads the undone task's artifacts (those of
its latest finished attempt; of ``--fallback``, the task it started from, when it
never finished one), what the method sets is stored, and the attempt is marked ok or
failed, so the Client API shows it with its logs, artifacts and exception.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from metaflow import current
from metaflow._vendor import click
from metaflow.datastore.exceptions import DataException
from metaflow.exception import MetaflowExceptionWrapper
from metaflow.metadata_provider import MetaDatum
from metaflow.task import MetaflowTask
from metaflow.util import get_username, resolve_identity

from ..compensate import STEP_PREFIX, CompensationContext
from ..contract import task_metadata
from .flow_facts import run_flow_with_commands

COMMAND = "temporal-compensate"


def _command():
    @click.command(name=COMMAND, hidden=True, help="Run a @compensate method.")
    @click.option("--run-id", required=True)
    @click.option("--step", "step_name", required=True)
    @click.option("--task-id", required=True)
    @click.option("--handler", required=True)
    @click.option("--retry-count", type=int, default=0)
    @click.option("--fallback", required=True)
    @click.option("--tag", "tags", multiple=True)
    @click.pass_obj
    def compensate(
        obj, run_id, step_name, task_id, handler, retry_count, fallback, tags
    ):
        _run(obj, run_id, step_name, task_id, handler, retry_count, fallback, tags)

    return compensate


def _forward(flow_datastore, run_id: str, step: str, task_id: str, fallback: str):
    """(datastore ``self`` reads, status of the undone task)."""
    done = flow_datastore.get_task_datastores(
        pathspecs=[f"{run_id}/{step}/{task_id}"], include_prior=True
    )
    started = flow_datastore.get_task_datastores(
        pathspecs=[f"{run_id}/{step}/{task_id}"], allow_not_done=True
    )
    latest = max(done, key=lambda ds: ds.attempt) if done else None
    if latest is not None and started and started[0].attempt == latest.attempt:
        ok = "_task_ok" in latest and latest["_task_ok"]
        return latest, "succeeded" if ok else "failed"
    if latest is not None:
        return latest, "unfinished"
    run, step_name, task = fallback.split("/")
    try:
        return flow_datastore.get_task_datastore(run, step_name, task), "unfinished"
    except DataException:
        return None, "unfinished"


def attempt_status(attempt: int, ok: bool):
    """Metaflow's ``attempt_ok`` metadata: how an attempt of a task ended."""
    return MetaDatum(
        "attempt_ok", str(ok), "internal_attempt_status", [f"attempt_id:{attempt}"]
    )


def _run(obj, run_id, step, task_id, handler, retry_count, fallback, tags) -> None:
    flow, metadata = obj.flow, obj.metadata
    name = STEP_PREFIX + step
    undone = f"{flow.name}/{run_id}/{step}/{task_id}"
    tags_of_attempt = [f"attempt_id:{retry_count}"]
    metadata.add_sticky_tags(tags=tags)
    metadata.register_run_id(run_id)
    metadata.register_task_id(run_id, name, task_id, retry_count)
    metadata.register_metadata(
        run_id,
        name,
        task_id,
        [
            MetaDatum("attempt", str(retry_count), "attempt", tags_of_attempt),
            MetaDatum("ds-type", obj.flow_datastore.TYPE, "ds-type", tags_of_attempt),
            MetaDatum(
                "ds-root",
                obj.flow_datastore.datastore_root,
                "ds-root",
                tags_of_attempt,
            ),
            MetaDatum("compensates", undone, "compensates", tags_of_attempt),
            # the workflow running it (as the temporal_internal decorator records)
            *(
                MetaDatum(field, value, field, tags_of_attempt)
                for field, value in task_metadata(os.environ).items()
            ),
        ],
    )
    output = obj.flow_datastore.get_task_datastore(
        run_id, name, task_id, attempt=retry_count, mode="w"
    )
    output.init_task()
    source, status = _forward(obj.flow_datastore, run_id, step, task_id, fallback)
    task = MetaflowTask(
        flow,
        obj.flow_datastore,
        metadata,
        obj.environment,
        obj.echo,
        obj.event_logger,
        obj.monitor,
        None,
    )
    parameter_names = []
    if source is not None:
        flow._set_datastore(source)
        parameter_names = task._init_parameters(source, passdown=False)
    current._set_env(
        flow=flow,
        run_id=run_id,
        step_name=name,
        task_id=task_id,
        retry_count=retry_count,
        origin_run_id=None,
        namespace=resolve_identity(),
        username=get_username(),
        metadata_str=metadata.metadata_str(),
        is_running=True,
        tags=metadata.sticky_tags,
    )
    current._update_env(
        {
            "parameter_names": parameter_names,
            "compensation": CompensationContext(
                step=step,
                task_id=task_id,
                pathspec=undone,
                status=status,
            ),
        }
    )
    output.save_metadata({"task_begin": {"retry_count": retry_count}})
    flow._current_step = name
    flow._success = False
    flow._task_ok = None
    flow._exception = None
    started = time.time()
    try:
        getattr(flow, handler)()
        flow._task_ok = flow._success = True
    except Exception as exc:
        flow._task_ok = False
        flow._exception = MetaflowExceptionWrapper(exc)
        print(f"compensation {handler} of {step}/{task_id} failed:", file=sys.stderr)
        traceback.print_exc()
        raise SystemExit(1) from None
    finally:
        try:
            output.persist(flow)
        finally:
            metadata.register_metadata(
                run_id,
                name,
                task_id,
                [attempt_status(retry_count, bool(flow._task_ok))],
            )
        output.save_metadata({"task_end": {"seconds": time.time() - started}})
        output.done()


def main(argv: list[str] | None = None) -> None:
    run_flow_with_commands([_command()], sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
