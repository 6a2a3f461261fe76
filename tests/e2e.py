"""Helpers for end-to-end tests: run a flow locally and through its generated
workflow on the dev server, and read both runs back through the Client API."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from helpers import generate_into, import_generated

from mf_temporal_codegen.render import module_names
from mf_temporal_codegen.parse import load_flows
from mf_temporal_codegen.runtime.worker import running_worker


def flow_argument(flow_file: Path, cwd: Path) -> str:
    """The flow file as a user in ``cwd`` names it: relative inside ``cwd``, else absolute."""
    flow_file, cwd = Path(flow_file).resolve(), Path(cwd).resolve()
    return (
        str(flow_file.relative_to(cwd))
        if flow_file.is_relative_to(cwd)
        else str(flow_file)
    )


def run_locally(
    flow_file: Path, *args: str, cwd: Path | None = None, env: dict | None = None
) -> str:
    """``python path/to/flow.py run`` started in ``cwd`` (default: the current
    directory, where a worker started now runs its tasks too); the run pathspec."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    id_file = Path(tempfile.mkdtemp()) / "run-id"
    try:
        done = subprocess.run(
            [
                sys.executable,
                flow_argument(flow_file, cwd),
                "--no-pylint",
                "--metadata=local",
                "--datastore=local",
                "run",
                "--max-workers",
                "4",
                "--run-id-file",
                str(id_file),
                *args,
            ],
            cwd=cwd,
            env=dict(os.environ) if env is None else env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        flow = load_flows(flow_file)[0].name
        return f"{flow}/{id_file.read_text().strip()}"
    finally:
        id_file.unlink(missing_ok=True)


def load_module(flow_file: Path, out: Path, **options):
    generate_into(flow_file, out, **options)
    workflow_module, _ = module_names(load_flows(flow_file)[0])
    return import_generated(out, workflow_module)


def run_on_temporal(
    temporal_env,
    module,
    params=None,
    *,
    launcher="subprocess",
    options=None,
    cancel_after: float | None = None,
    on_event=None,
    workdir: Path | None = None,
):
    """Run the generated workflow on the dev server; returns (result or exception, handle).
    Tasks run in ``workdir`` (default: the current directory, as ``run_locally``)."""
    queue = f"q-{uuid.uuid4().hex[:10]}"
    params = module.PARAMS() if params is None else params

    async def go():
        import asyncio

        # running_worker closes a launcher it made (e.g. the fork server) afterwards
        worker = running_worker(
            temporal_env.client,
            module,
            task_queue=queue,
            launcher=launcher,
            on_event=on_event,
            fail_fast=True,
            workdir=workdir,
        )
        async with worker:
            handle = await temporal_env.client.start_workflow(
                module.WORKFLOW.run,
                args=[params, options],
                id=f"{module.FLOW.name}-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
            if cancel_after is not None:
                await asyncio.sleep(cancel_after)
                await handle.cancel()
            try:
                return await handle.result(), handle
            except Exception as exc:  # the caller asserts on it
                return exc, handle

    return temporal_env.run(go(), timeout=900)


def artifacts_by_step(pathspec: str, skip=("failure",)) -> dict[str, list]:
    """Step -> sorted list of each task's user artifacts (comparable values)."""
    from metaflow import Run, namespace

    namespace(None)
    steps = {}
    for step in Run(pathspec):
        tasks = []
        for task in step:
            values = {}
            for artifact in task:
                if artifact.id.startswith("_") or artifact.id in skip:
                    continue
                values[artifact.id] = artifact.data
            tasks.append(dict(sorted(values.items())))
        steps[step.id] = sorted(tasks, key=repr)
    return steps
