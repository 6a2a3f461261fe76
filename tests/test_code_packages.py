"""Code packages on simulated hosts sharing only the Temporal server, S3 (moto) and
the metadata directory: a flow generated with ``--code-package --queue pool`` is
deployed from a checkout; a generic pool (``mf-temporal-pool``) on a host with no
checkout runs every task from its run's package; two versions of the flow run side
by side on that one pool without mixing; ``Run.code`` is each run's package."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import ROOT, generate_into, import_generated
from pool import READY, host_env
from s3 import keys

from mf_temporal_codegen.runtime.packages import PackageCache, PackageError
from mf_temporal_codegen.runtime.payloads import CodePackage

FLOW_DIR = ROOT / "tests" / "flows" / "packaged"
WORKER = "out.package_flow_worker"
QUEUE = "pool"

READ = textwrap.dedent("""\
    import json, os, sys
    from metaflow import Run, namespace

    namespace(None)
    found = {}
    for pathspec in sys.argv[1:]:
        run = Run(pathspec)
        tasks = {}
        for step in run:
            for task in step:
                tasks[f"{step.id}/{task.id}"] = {
                    "version": task["version"].data,
                    "host": task["host"].data,
                    "cwd": task["cwd"].data,
                    "package": json.loads(task.metadata_dict["code-package"]),
                }
        code = run.code
        unpacked = code.extract()
        with open(os.path.join(unpacked.name, "shapes.py")) as f:
            shapes = f.read()
        found[pathspec] = {
            "ok": run.successful,
            "areas": run["join"].task["areas"].data,
            "seen": run["join"].task["seen"].data,
            "tasks": tasks,
            "code_path": code.path,
            "flowspec_has_class": b"class PackageFlow" in code.flowspec,
            "shapes": shapes,
        }
    print(json.dumps(found, sort_keys=True, default=repr))
    """)


class _Store:
    """A datastore stand-in that holds one blob under a key (the tests below
    check what the cache does with what it downloads)."""

    flow_name = "PackageFlow"

    def __init__(self, blob: bytes):
        self.blob, self.loads = blob, 0

    def load_data(self, keys):
        self.loads += 1
        return [(keys[0], self.blob)]


def _package_of(work: Path) -> tuple[CodePackage, bytes]:
    """A real Metaflow package of the test flow in checkout ``work`` (generated
    there unless it is), built as the worker builds it."""
    from mf_temporal_codegen.runtime.activities import MetaflowActivities

    if not work.exists():
        shutil.copytree(FLOW_DIR, work)
        generate_into(work / "package_flow.py", work / "out", code_package=True)
    ref = import_generated(work / "out", "package_flow_workflow").FLOW
    activities = MetaflowActivities(work / "out", workdir=work)
    package = asyncio.run(activities.build_package(ref))
    [(_, blob)] = activities_store(activities, ref).load_data([package.sha])
    return package, blob


def activities_store(activities, ref):
    from mf_temporal_codegen.runtime.activities import flow_datastore, resolved_options

    return flow_datastore(
        ref.name, resolved_options(ref.top_level, activities.env, activities.workdir)
    )


def test_the_same_code_is_the_same_package_and_is_unpacked_once(tmp_path, mf_env):
    package, blob = _package_of(tmp_path / "repo")
    shutil.copytree(tmp_path / "repo", tmp_path / "elsewhere")
    # another checkout of the same code: the same package, stored once
    assert _package_of(tmp_path / "elsewhere")[0] == package
    assert hashlib.sha1(blob).hexdigest() == package.sha
    store = _Store(blob)
    cache = PackageCache(tmp_path / "cache")

    async def twice():
        return await asyncio.gather(
            cache.unpacked(package, store), cache.unpacked(package, store)
        )

    first, second = asyncio.run(twice())
    assert first == second == tmp_path / "cache" / package.sha and store.loads == 1
    assert (first / "package_flow.py").is_file() and (first / "shapes.py").is_file()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [package.sha]
    asyncio.run(cache.unpacked(package, store))
    assert store.loads == 1  # kept by hash


def test_a_package_whose_bytes_do_not_match_its_hash_is_refused(tmp_path, mf_env):
    package, blob = _package_of(tmp_path / "repo")
    cache = PackageCache(tmp_path / "cache")
    with pytest.raises(PackageError) as err:
        asyncio.run(cache.unpacked(package, _Store(blob[:-1] + b"x")))
    assert f"not {package.sha}" in err.value.message and err.value.non_retryable
    assert not (tmp_path / "cache" / package.sha).exists()  # nothing half-unpacked


def test_a_local_package_runs_beside_its_datastore_with_the_workers_pythonpath(
    tmp_path, mf_env
):
    """A task of a packaged run on the local datastore runs in the package unpacked
    beside that datastore (a task there finds its .metaflow: local cards land where
    the Client reads them), not in the host's cache; relative PYTHONPATH entries of
    the worker stay relative to the worker's directory."""
    from mf_temporal_codegen.runtime.activities import MetaflowActivities

    package, _ = _package_of(tmp_path / "repo")
    ref = import_generated(tmp_path / "repo" / "out", "package_flow_workflow").FLOW
    host = tmp_path / "host"
    host.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["lib", "/opt/abs", ""])}
    activities = MetaflowActivities(
        None, env=env, workdir=host, package_cache=tmp_path / "cache"
    )
    task = asyncio.run(
        activities._task(
            dataclasses.replace(ref, package=package), "r1", "start", "0", {}, 0
        )
    )
    assert task.workdir == mf_env / ".mf-temporal-packages" / package.sha
    assert (
        task.flow_file == task.workdir / "package_flow.py" and task.flow_file.is_file()
    )
    assert not (tmp_path / "cache").exists()
    assert task.env["PYTHONPATH"].split(os.pathsep) == [
        str(host / "lib"),
        "/opt/abs",
        str(host) + os.sep,
    ]


def test_queue_without_a_step_routes_every_other_step(tmp_path):
    files = generate_into(
        FLOW_DIR / "package_flow.py",
        tmp_path / "out",
        code_package=True,
        step_queue="pool",
        queues=(("join", "special"),),
    )
    source = next(v for k, v in files.items() if k.name == "package_flow_workflow.py")
    assert "packaged=True" in source
    assert 'START = rt.StepSpec("start", foreach=True, task_queue="pool")' in source
    assert 'WORK = rt.StepSpec("work", task_queue="pool")' in source
    assert 'JOIN = rt.StepSpec("join", task_queue="special")' in source
    assert 'END = rt.StepSpec("end", task_queue="pool")' in source


def _start(cmd, cwd, env, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_for(proc: subprocess.Popen, log: Path, text: str, timeout=120) -> str:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)
    return log.read_text(errors="replace")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _package_sha(log_text: str) -> str:
    return log_text.split("code package ", 1)[1].split()[0]


@pytest.mark.e2e
def test_a_pool_with_no_checkout_runs_two_versions_from_their_packages(
    tmp_path, s3_endpoint, temporal_env
):
    checkout = tmp_path / "deploy" / "repo"
    shutil.copytree(FLOW_DIR, checkout)
    generate_into(
        checkout / "package_flow.py",
        checkout / "out",
        code_package=True,
        step_queue=QUEUE,
    )
    module = (checkout / "out" / "package_flow_worker.py").read_text()
    shared = tmp_path / "shared-metadata"
    shared.mkdir()
    deploy_env = host_env(tmp_path, "deploy", s3_endpoint, shared)
    pool_env = host_env(tmp_path, "pool", s3_endpoint, shared)
    pool_dir = tmp_path / "pool" / "work"  # nothing of the flow's there
    pool_dir.mkdir(parents=True)
    address = ["--address", temporal_env.address]
    gate = tmp_path / "gate"
    procs = []
    try:
        pool = _start(
            ["mf-temporal-pool", "--queue", QUEUE, *address],
            pool_dir,
            pool_env,
            tmp_path / "pool.log",
        )
        procs.append(pool)
        _wait_for(pool, tmp_path / "pool.log", READY)

        def deploy(version: str) -> tuple[subprocess.Popen, str]:
            """The flow's worker on the checkout as it is; its package's hash."""
            log = tmp_path / f"{version}.log"
            cmd = [sys.executable, "-m", WORKER, "worker", *address]
            procs.append(_start(cmd, checkout, deploy_env, log))
            return procs[-1], _package_sha(_wait_for(procs[-1], log, READY))

        v1, sha1 = deploy("v1")
        first = _start(
            [sys.executable, "-m", WORKER, "trigger", *address]
            + ["--param", f"gate={gate}"],
            checkout,
            deploy_env,
            tmp_path / "first.log",
        )
        procs.append(first)
        deadline = time.monotonic() + 180
        while not all(Path(f"{gate}.{i}").exists() for i in (1, 2, 3)):
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "pool.log").read_text()
            time.sleep(0.3)

        # v2 of the checkout's code (the generated module is unchanged: same graph)
        shapes = checkout / "shapes.py"
        shapes.write_text(shapes.read_text().replace('"v1"', '"v2"'))
        _stop(v1)
        _, sha2 = deploy("v2")
        assert sha2 != sha1
        second = subprocess.run(
            [sys.executable, "-m", WORKER, "trigger", *address],
            cwd=checkout,
            env=deploy_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 0, second.stdout + second.stderr
        gate.touch()  # the v1 run goes on, on the v2 worker and the same pool
        assert first.wait(300) == 0, (tmp_path / "first.log").read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                _stop(proc)
    runs = [
        text.split("pathspec: ", 1)[1].split()[0]
        for text in ((tmp_path / "first.log").read_text(), second.stdout)
    ]
    assert (checkout / "out" / "package_flow_worker.py").read_text() == module

    client_dir = tmp_path / "client" / "work"
    client_dir.mkdir(parents=True)
    read = subprocess.run(
        [sys.executable, "-c", READ, *runs],
        cwd=client_dir,
        env=host_env(tmp_path, "client", s3_endpoint, shared),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode == 0, read.stderr
    found = json.loads(read.stdout)
    for pathspec, version, sha in zip(runs, ("v1", "v2"), (sha1, sha2)):
        run = found[pathspec]
        assert run["ok"] and run["areas"] == [1, 4, 9]
        assert run["seen"] == [version], run
        assert run["flowspec_has_class"] and f'VERSION = "{version}"' in run["shapes"]
        assert run["code_path"].endswith(sha), run["code_path"]
        for name, task in run["tasks"].items():
            assert task["version"] == version, (pathspec, name)
            # every step's task ran on the pool, in its package, unpacked there
            assert task["host"] == "pool", (pathspec, name, task["host"])
            assert task["cwd"].endswith(f"/packages/{sha}"), task["cwd"]
            assert task["package"]["sha"] == sha and task["package"]["ds_type"] == "s3"
    # the package is stored once per hash, next to the runs' data
    stored = keys(s3_endpoint, "metaflow/PackageFlow/data/")
    assert any(k.endswith(sha1) for k in stored) and any(
        k.endswith(sha2) for k in stored
    )
    # the pool's host holds nothing but its package cache (no checkout, no .metaflow)
    assert not list((tmp_path / "pool").rglob(".metaflow"))
    assert not list(pool_dir.iterdir())


@pytest.mark.e2e
def test_create_saves_the_package_its_worker_runs_from(
    tmp_path, mf_env, temporal_env, monkeypatch
):
    """``temporal create --worker`` (packaging is create's default, as Argo's):
    create saves the package and records it; the worker it starts builds the same
    (the same hash: nothing is stored twice); the run's tasks run from it and
    record it (``Run.code``); their local cards land where the Client finds them."""
    from metaflow import Run
    from metaflow.cards import get_cards
    from metaflow.exception import MetaflowNotFound

    from mf_temporal_codegen.plugin import records

    work = tmp_path / "repo"
    shutil.copytree(FLOW_DIR, work)
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.address)
    monkeypatch.setenv("METAFLOW_HOME", str(tmp_path / "mfhome"))
    monkeypatch.setenv("MF_TEMPORAL_PACKAGE_CACHE", str(tmp_path / "cache"))
    run = [sys.executable, "package_flow.py", "--no-pylint"]

    def mf(*args: str) -> str:
        done = subprocess.run(
            [*run, *args], cwd=work, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    out = mf("--with", "card", "temporal", "create", "--worker")
    try:
        record = temporal_env.run(records.load(temporal_env.client, "PackageFlow"))
        sha = record.package.sha
        assert f"Code package {sha} saved to" in out, out
        assert (
            "packaged=True"
            in (work / "temporal_workflows" / "package_flow_workflow.py").read_text()
        )
        mf("temporal", "trigger", "--run-id-file", str(work / "run-id"))
        run_id = (work / "run-id").read_text()
        deadline = time.monotonic() + 180
        while True:
            try:
                if Run(f"PackageFlow/{run_id}")["end"].task.finished:
                    break
            except (MetaflowNotFound, KeyError):
                pass
            assert time.monotonic() < deadline
            time.sleep(1)
        found = Run(f"PackageFlow/{run_id}")
        assert found.successful and found.code.path.endswith(sha)
        # on a local datastore the package is unpacked beside it (not in the
        # host's cache): a task there finds the datastore's .metaflow, so its
        # cards are where the Client reads them
        unpacked = mf_env / ".mf-temporal-packages" / sha
        assert found["end"].task["cwd"].data == str(unpacked)
        assert not (tmp_path / "cache").exists()
        cards = get_cards(found["end"].task)
        assert len(cards) == 1 and "PackageFlow" in cards[0].get()
        # one package object: create's and the worker's builds are the same bytes
        blobs = [
            p
            for p in (mf_env / ".metaflow" / "PackageFlow" / "data").rglob("*")
            if p.is_file() and p.name == sha
        ]
        assert len(blobs) == 1, blobs
        log = Path(record.worker.log).read_text()
        assert f"code package {sha} " in log, log
    finally:
        mf("temporal", "delete")
