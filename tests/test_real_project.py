"""A real project end to end: ``tests/projects/mlproject`` (src layout, a base flow in
another package, a YAML Config read by the project's own parser, Parameters whose
defaults are Config expressions, module constants and ``os.getenv``, ``@project`` named
by a Config, ``@environment(vars=ENV)``, ``@retry(times=config_expr(...))``, a
FlowMutator adding ``@retry`` everywhere, a user step decorator, an IncludeFile, a
cross-validation foreach joined with ``merge_artifacts``, ``@card``) run as its users
run it, from the project root:

    PYTHONPATH=src python src/pipelines/training.py --metadata=local --datastore=local run
    PYTHONPATH=src mf-temporal-codegen src/pipelines/training.py -o out
    PYTHONPATH=src python -m out.training_worker --address ...
    PYTHONPATH=src python -m out.training_worker trigger --address ...

and the two runs compared through the Client API: every artifact of every task, the
attempts, the cards, the @project branch and tags.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from metaflow.plugins.datastores.local_storage import LocalStorage
from e2e import artifacts_by_step
from helpers import ROOT
from worker_process import run_module, worker_process

pytestmark = pytest.mark.e2e

FIXTURE = ROOT / "tests" / "projects" / "mlproject"
FLOW = "src/pipelines/training.py"
# As the project's users run it: imports from src/, an owner from the environment.
ENV = {"PYTHONPATH": "src", "MLP_OWNER": "alice"}
# Steps that fail until their last attempt (the config's ``retries``): featurize
# is retried through the FlowMutator's @retry, evaluate through its own
# @retry(times=config_expr("project.retries")).
FLAKY = {
    "featurize": "feature store not warmed up yet",
    "evaluate": "model registry timed out",
}
CARDS = ("start", "end")
# What the project's parse_yaml makes of its config files (the trailing / survives).
CONFIGS = {
    "config/local.yml": {
        "project": "mlproject",
        "retries": 1,
        "folds": 3,
        "backend": {
            "module": "mlp.linear",
            "model": "least_squares",
            "storage": "s3://bucket/prefix/",
        },
        "features": ["x1", "x2"],
        "labels_file": "data/labels.txt",
        "tags": ["nightly", "team: ml"],
    },
    "config/prod.yml": {
        "project": "mlproject",
        "retries": 2,
        "folds": 4,
        "backend": {
            "module": "mlp.ridge",
            "model": "least_squares",
            "storage": "s3://models-prod/mlproject/",
        },
        "features": ["x1", "x2"],
        "labels_file": "data/labels.txt",
        "tags": ["release"],
    },
}


def isolate_metaflow(root: Path, monkeypatch) -> None:
    """``mf_env`` with the datastore where a user's lands: ``ROOT/.metaflow`` of the
    directory runs start from. The local card store is found from the working
    directory, the Client looks for it next to the datastore root: both are
    ``ROOT/.metaflow/mf.cards`` only when these agree."""
    (root / LocalStorage.DATASTORE_DIR).mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("USERNAME", "tester")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(root))
    monkeypatch.setenv("METAFLOW_DEFAULT_METADATA", "local")
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "local")
    monkeypatch.delenv("METAFLOW_CARD_LOCALROOT", raising=False)
    monkeypatch.setattr(LocalStorage, "SYSROOT_VAR", str(root))
    monkeypatch.setattr(
        LocalStorage, "datastore_root", str(root / LocalStorage.DATASTORE_DIR)
    )


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A copy of the fixture project (nothing a run left behind), its own datastore."""
    root = tmp_path / "mlproject"
    shutil.copytree(
        FIXTURE,
        root,
        ignore=shutil.ignore_patterns("__pycache__", ".metaflow", "out", "out-*"),
    )
    isolate_metaflow(root, monkeypatch)
    return root


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **ENV, **extra}
    return {k: v for k, v in env.items() if v is not None}


def run_natively(root: Path, *top_level: str) -> str:
    """``PYTHONPATH=src python src/pipelines/training.py ... run`` from the project root."""
    id_file = Path(tempfile.mkdtemp()) / "run-id"
    done = subprocess.run(
        [
            sys.executable,
            FLOW,
            "--metadata=local",
            "--datastore=local",
            *top_level,
            "run",
            "--run-id-file",
            str(id_file),
        ],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return f"Training/{id_file.read_text().strip()}"


def codegen(
    root: Path, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """The ``mf-temporal-codegen`` command, run from the project root."""
    script = Path(sys.executable).with_name("mf-temporal-codegen")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "mf_temporal_codegen"]
    )
    return subprocess.run(
        [*command, *args],
        cwd=root,
        env=env if env is not None else _env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def generate(root: Path, *options: str) -> None:
    # MLP_OWNER is set where runs start, not where the code is generated: the
    # os.getenv default is Metaflow's to evaluate when each run starts.
    done = codegen(root, FLOW, "-o", "out", *options, env=_env(MLP_OWNER=None))
    assert done.returncode == 0, done.stdout + done.stderr


def files_of(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def run_on_temporal(
    root: Path, temporal_env, queue: str, name: str, launcher: str | None = None
) -> str:
    """The generated worker and trigger, started from the project root."""
    address = ("--address", temporal_env.address)
    options = ("--launcher", launcher) if launcher else ()
    with worker_process(
        root, "out.training_worker", *address, *options, env=ENV
    ) as worker:
        out = worker.wait_for("worker for", timeout=120)
        assert f"worker for {name} " in out, out
        assert f"task queue {queue}," in out, out
        if launcher:
            assert f"launcher {launcher})" in out, out
        done = run_module(
            root, "out.training_worker", "trigger", *address, env=ENV, timeout=240
        )
    assert done.returncode == 0, done.stdout + done.stderr + worker.output()
    found = re.search(r"^pathspec: (\S+)$", done.stdout, re.M)
    assert found, done.stdout
    return found[1]


def attempts(pathspec: str) -> dict[str, list[int]]:
    from metaflow import Run

    return {
        step.id: sorted(task.current_attempt for task in step) for step in Run(pathspec)
    }


def check_same_run(
    root: Path,
    ours: str,
    theirs: str,
    *,
    branch: str,
    config_file: str = "config/local.yml",
) -> None:
    """``ours`` (Temporal) is the run ``theirs`` (native) is, task by task."""
    from metaflow import Run, Task, namespace
    from metaflow.cards import get_cards

    namespace(None)
    assert Run(ours).successful

    # every artifact of every task
    mine, native = artifacts_by_step(ours), artifacts_by_step(theirs)
    assert sorted(mine) == sorted(native)
    for step in native:
        assert len(mine[step]) == len(native[step]), step
        assert mine[step] == native[step], step
    # the run's parameters task (Run iterates without it): Parameters, IncludeFile, Config
    parameters = {
        pathspec: {
            a.id: a.data
            for a in Run(pathspec)["_parameters"].task
            if not a.id.startswith("_")
        }
        for pathspec in (ours, theirs)
    }
    assert parameters[ours] == parameters[theirs]
    assert parameters[ours]["owner"] == "alice"

    # what the flow computed from the run-start values and the environment
    start = Run(ours)["start"].task
    name = f"mlproject.{branch}.Training"
    config = CONFIGS[config_file]
    assert start["settings"].data == {
        "model_module": config["backend"]["module"],
        "storage_root": config["backend"]["storage"],
        "learning_rate": 0.05,
        "owner": "alice",
        "config": config,
    }
    assert start["train_data"].data == (root / "data" / "train.csv").read_text()
    assert start["labels"].data == ["low", "medium", "high"]
    assert start["stamp"].data == "Training.start"
    assert start["is_production"].data is branch.startswith("prod")
    assert start["branch"].data == branch
    assert start["project_flow_name"].data == name
    evaluate = Run(ours)["evaluate"].task
    assert evaluate["env_seen"].data == {
        "MLP_REGION": "eu-west-1",
        "MLP_STAGE": "evaluate",
        "OMP_NUM_THREADS": "1",
    }
    published = f"{config['backend']['storage']}{config['backend']['module']}/{name}"
    assert evaluate["published_to"].data == published
    assert len(list(Run(ours)["fold"])) == config["folds"]

    # attempts: the mutator's @retry and the config-driven @retry spent every retry
    expected = {step: [0] * len(tasks) for step, tasks in native.items()}
    expected.update({step: [config["retries"]] for step in FLAKY})
    assert attempts(theirs) == expected
    assert attempts(ours) == expected
    for step, message in FLAKY.items():
        for attempt in range(config["retries"]):
            failed = Task(Run(ours)[step].task.pathspec, attempt=attempt)
            assert f"{message} (attempt {attempt})" in failed.stderr, (
                step,
                attempt,
                failed.stderr,
            )

    # @project tags
    for pathspec in (ours, theirs):
        assert {"project:mlproject", f"project_branch:{branch}"} <= set(
            Run(pathspec).system_tags
        )

    # cards
    for pathspec in (ours, theirs):
        for step in CARDS:
            cards = get_cards(Run(pathspec)[step].task)
            assert [card.type for card in cards] == ["default"], (pathspec, step)
            assert "Training" in cards[0].get()


def test_generate_with_pythonpath_or_path_same_bytes(project):
    """``PYTHONPATH=src`` and ``--path src`` find the same base class and write the
    same files; ``--check`` finds them up to date."""
    generate(project)
    with_pythonpath = files_of(project / "out")
    assert {"training_workflow.py", "training_worker.py"} <= set(with_pythonpath)
    # regenerating is a no-op, also with --check
    done = codegen(project, FLOW, "-o", "out", "--check", env=_env(MLP_OWNER=None))
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(project / "out")
    env = _env(PYTHONPATH=None, MLP_OWNER=None, MF_TEMPORAL_CODEGEN_NO_CACHE="1")
    done = codegen(project, FLOW, "-o", "out", "--path", "src", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    with_path = files_of(project / "out")
    assert sorted(with_path) == sorted(with_pythonpath)
    for name, text in with_pythonpath.items():
        diff = difflib.unified_diff(
            text.decode().splitlines(),
            with_path[name].decode().splitlines(),
            f"PYTHONPATH=src: {name}",
            f"--path src: {name}",
            lineterm="",
        )
        assert with_path[name] == text, "\n".join(diff)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("launcher", ["subprocess", "fork"])
def test_same_run_as_metaflow(project, temporal_env, launcher):
    theirs = run_natively(project)
    generate(project)
    ours = run_on_temporal(
        project,
        temporal_env,
        "metaflow-mlproject.user.tester.Training",
        "mlproject.user.tester.Training",
        launcher,
    )
    check_same_run(project, ours, theirs, branch="user.tester")


@pytest.mark.timeout(300)
def test_production_run(project, temporal_env):
    theirs = run_natively(project, "--production")
    generate(project, "--production")
    ours = run_on_temporal(
        project,
        temporal_env,
        "metaflow-mlproject.prod.Training",
        "mlproject.prod.Training",
    )
    check_same_run(project, ours, theirs, branch="prod")
    from metaflow import Run

    assert Run(ours)["end"].task["is_production"].data is True


@pytest.mark.timeout(300)
def test_production_with_its_config(project, temporal_env):
    """A production deployment with the production config: ``--config project
    config/prod.yml`` natively and when generating (other retries, folds, backend)."""
    config = ("--config", "project", "config/prod.yml")
    theirs = run_natively(project, *config, "--production")
    generate(project, "--production", *config)
    ours = run_on_temporal(
        project,
        temporal_env,
        "metaflow-mlproject.prod.Training",
        "mlproject.prod.Training",
    )
    check_same_run(project, ours, theirs, branch="prod", config_file="config/prod.yml")
