"""Run Metaflow's own core test suite (``test/core``) through mf-temporal-codegen workers.

Metaflow's ``test/core/run_tests.py`` writes one flow per (graph, test) combination and
checks each run with its checkers (``CliCheck``, ``MetadataCheck``). Its ``scheduler``
executor (the one the argo-workflows and step-functions contexts use) runs::

    python -B test_flow.py <top_options> <scheduler> create
    python -B test_flow.py <top_options> <scheduler> trigger --run-id-file run-id

then waits for ``Flow(name)[run_id].finished`` and runs the checkers against that run
id. This script drives Metaflow's own ``run_tests.run_test`` with a context of its own
(``scheduler: "temporal"``) and stands in for those two commands, nothing else:

* ``temporal create``: ``python -m mf_temporal_codegen test_flow.py -o out`` with the
  context's top-level options, then a worker (``python -m out.<flow>_worker``) on a task
  queue of its own, on one dev server shared by all cases. Like ``argo-workflows
  create`` it also imports the flow once, so the flow's ``HEADER`` runs (some write
  files or set ``METAFLOW_RUN_<PARAM>``).
* ``temporal trigger``: ``python -m out.<flow>_worker trigger`` with ``--param`` for
  every ``METAFLOW_RUN_<PARAM>`` value that ``python test_flow.py run`` would read from
  the environment, plus the context's ``--tag``/``--max-workers``/``--max-num-splits``;
  it writes ``run-id`` from ``pathspec: Flow/run_id`` (or, for a failed run, from the
  workflow's first run id).

Everything else (writing the flow, the checkers, the should-fail logic) is run_tests.py
as it is, except that its status poll (``Flow(name)[run_id].finished``) is answered
with the workflow's outcome: Metaflow never marks a failed run finished, nor a run whose
end step's exception ``@catch`` handled successful, so SHOULD_FAIL tests and
CatchRetryTest cannot pass that poll under any scheduler (``--stock-poll`` keeps it).
The context is Metaflow's ``python3-all-local`` one (local metadata and
datastore) with the scheduler executor; it is written to ``<out>/contexts.json``.
Cases the suite does not run under a scheduler are counted as not applicable, with the
reason: ``SKIP_GRAPHS``/``ONLY_GRAPHS``/no node for a required step (run_tests says
"not a valid combination"), the ``@parallel`` graph (schedulers set
``disable_parallel``) and the ``disabled_tests`` of the ``python3-argo-workflows``
and ``python3-all-local`` contexts. Resume tests, which the scheduler executor skips,
go through run_tests' ``cli`` executor instead, with ``run`` standing in for create +
trigger and ``resume [STEP]`` for the worker's ``resume [STEP] --origin-run-id``. Cases run one at a time, in a fixed order (graphs by name, tests by
``PRIORITY`` then name).

Run it locally (from the repository root, in its virtualenv, Metaflow 2.19.x)::

    git clone https://github.com/Netflix/metaflow /tmp/metaflow
    git -C /tmp/metaflow checkout d2dd7f953574369d5b4715822b12377d44ba1cf8  # 2.19.38+1
    python tests/metaflow_core/run_core.py --core /tmp/metaflow/test/core
    python tests/metaflow_core/run_core.py --core ... --graphs single-linear-step \
        --tests BasicArtifactTest --launcher fork       # a subset, fork launcher
    python tests/metaflow_core/run_core.py --core ... --rerun /tmp/mfcore-results/results.json

Output (default ``/tmp/mfcore-results``): ``logs/<graph>__<test>.log`` (run_tests'
own log of the case plus the worker's output), ``results.json``, and the tables
``graph  passed/applicable`` and ``test  passed/applicable``. Exits 1 when a case fails.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
from collections import defaultdict
from pathlib import Path

SCHEDULER = "temporal"
READY = "Ctrl-C to stop"  # the worker's start-up line
PASSTHROUGH = ("--quiet", "--no-pylint")  # every generated task gets these anyway
TOP_OPTIONS = (
    "--metadata",
    "--datastore",
    "--datastore-root",
    "--environment",
    "--event-logger",
    "--monitor",
    "--with",
)  # same names in the codegen CLI
# resume tests of the unbounded-foreach tests the scheduler contexts disable
UNBOUNDED_RESUME = {
    "BasicUnboundedForeachResumeTest": "BasicUnboundedForeachTest",
    "ResumeUBFJoinTest": "BasicUnboundedForeachTest",
}
RUN_OPTIONS = ("--tag", "--max-workers", "--max-num-splits")  # same names in trigger
PROBE = (  # import the flow as `test_flow.py <scheduler> create` would; print METAFLOW_RUN_*
    "import json, os, runpy; runpy.run_path('test_flow.py', run_name='test_flow'); "
    "print('\\nRUN_ENV=' + json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith('METAFLOW_RUN_')}))"
)


def die_with_parent() -> None:
    """Popen preexec_fn: SIGTERM this child when the adapter dies, even by SIGKILL."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None, grace: float = 15) -> None:
    """End a process we started in its own session, and its process group."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            pass


def options(opts: list[str], allowed: tuple[str, ...]) -> list[str]:
    """``--name=value`` context options as ``--name value`` arguments of our CLIs."""
    out = []
    for opt in opts:
        name, _, value = opt.partition("=")
        if opt in PASSTHROUGH:
            continue
        if name not in allowed:
            raise ValueError(
                f"context option {opt!r} has no mf-temporal-codegen equivalent"
            )
        out += [name, value]
    return out


class Scheduler:
    """Stands in for ``test_flow.py temporal create|trigger`` inside run_tests.run_test."""

    def __init__(
        self,
        address: str,
        launcher: str,
        timeout: float,
        run_options: list[str],
        workflow_status: bool = True,
    ):
        self.address, self.launcher, self.timeout = address, launcher, timeout
        self.workflow_status = workflow_status
        self.run_options = run_options
        self.nonce = uuid.uuid4().hex[:8]  # ids unique on a shared server
        self.worker: subprocess.Popen | None = None
        self.case = ""
        self.params: list[str] = []
        self.worker_log: Path | None = None
        self.restore = None  # metaflow.Flow while answer_poll stands in for it
        self.top_count = 0  # how many top-level options the context gives

    def start_case(self, case: str, params: list[str], worker_log: Path) -> None:
        self.case, self.params, self.worker_log = case, params, worker_log
        self.module = self.run_env = self.workflow_id = None

    # run_tests.subprocess.run
    def run(self, cmd, **kw):
        if cmd[2:3] == ["test_flow.py"] and cmd[-2:] == [SCHEDULER, "create"]:
            return self.create(cmd, kw["env"])
        if cmd[2:3] == ["test_flow.py"] and cmd[-4:-2] == [SCHEDULER, "trigger"]:
            return self.trigger(cmd, kw["env"], run_id_file=cmd[-1])
        # resume cases go through run_tests' cli executor: `test_flow.py <top> run
        # ...` becomes create + trigger, `... resume [STEP] ...` the worker's resume
        mode = cmd[3 + self.top_count : 4 + self.top_count]
        if cmd[2:3] == ["test_flow.py"] and mode == ["run"]:
            top = cmd[: 3 + self.top_count]
            created = self.create([*top, SCHEDULER, "create"], kw["env"])
            if created.returncode:
                return created
            return self.trigger(cmd, kw["env"], run_id_file="run-id")
        if cmd[2:3] == ["test_flow.py"] and mode == ["resume"]:
            step = cmd[4 + self.top_count]
            resume = ["resume"] + ([] if step.startswith("--") else [step])
            origin = Path("run-id").read_text().strip()
            return self.trigger(
                cmd,
                kw["env"],
                run_id_file="run-id",
                command=[*resume, "--origin-run-id", origin],
            )
        return subprocess.run(cmd, **kw)

    def create(self, cmd, env):
        py, top = cmd[0], cmd[3:-2]
        out, err = [], []

        def done(code, msg=""):
            return subprocess.CompletedProcess(
                cmd, code, "".join(out).encode(), ("".join(err) + msg).encode()
            )

        try:
            gen_opts = options(top, TOP_OPTIONS)
        except ValueError as exc:
            return done(2, f"error: {exc}\n")
        Path(".metaflow").mkdir(exist_ok=True)  # local datastore of this case dir only
        probe = subprocess.run(
            [py, "-c", PROBE], env=env, capture_output=True, text=True
        )
        if probe.returncode:
            err.append(probe.stderr)
            return done(probe.returncode, "error: importing test_flow.py failed\n")
        self.run_env = json.loads(probe.stdout.rsplit("RUN_ENV=", 1)[1])
        gen = subprocess.run(
            [py, "-m", "mf_temporal_codegen", "test_flow.py", "-o", "out", *gen_opts],
            env=env,
            capture_output=True,
            text=True,
        )
        out.append(gen.stdout)
        err.append(gen.stderr)
        if gen.returncode:
            return done(gen.returncode)
        workers = sorted(Path("out").glob("*_worker.py"))
        if len(workers) != 1:
            return done(1, f"error: expected one out/*_worker.py, found {workers}\n")
        self.module = f"out.{workers[0].stem}"
        self.task_queue = f"core-{self.nonce}-{self.case}"
        log = open(self.worker_log, "wb")
        self.worker = subprocess.Popen(
            [
                py,
                "-m",
                self.module,
                "worker",
                "--address",
                self.address,
                "--task-queue",
                self.task_queue,
                "--launcher",
                self.launcher,
                "--no-schedule",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log.close()
        deadline = time.time() + 120
        while READY not in self.worker_log.read_text(errors="replace"):
            if self.worker.poll() is not None or time.time() > deadline:
                stop(self.worker)
                err.append(self.worker_log.read_text(errors="replace"))
                return done(1, "error: the worker did not start\n")
            time.sleep(0.2)
        return done(0)

    def trigger(self, cmd, env, run_id_file, command=("trigger",)):
        py = cmd[0]
        self.workflow_id = f"{self.task_queue}-{uuid.uuid4().hex[:8]}"
        args = [
            py,
            "-m",
            self.module,
            *command,
            "--address",
            self.address,
            "--task-queue",
            self.task_queue,
            "--workflow-id",
            self.workflow_id,
        ]
        for name in self.params:  # what `run` reads through click's auto_envvar_prefix
            key = "METAFLOW_RUN_" + name.upper()
            value = self.run_env.get(key, env.get(key))
            if value is not None and command[0] == "trigger":
                args += ["--param", f"{name}={value}"]
        try:
            args += options(self.run_options, RUN_OPTIONS)
        except ValueError as exc:
            return subprocess.CompletedProcess(cmd, 2, b"", f"error: {exc}\n".encode())
        try:
            proc = subprocess.run(
                args, env=env, capture_output=True, timeout=self.timeout
            )
        except subprocess.TimeoutExpired as exc:
            self.terminate(env)
            proc = subprocess.CompletedProcess(
                args,
                1,
                exc.stdout or b"",
                (exc.stderr or b"")
                + b"error: trigger timed out after %ds\n" % self.timeout,
            )
        match = re.search(rb"^pathspec: [^/\s]+/(\S+)$", proc.stdout, re.M)
        run_id = match.group(1).decode() if match else self.first_run_id(env)
        if run_id:
            Path(run_id_file).write_text(run_id)
        if self.workflow_status and run_id and b"timed out" not in proc.stderr:
            self.answer_poll(run_id, ok=proc.returncode == 0)
        # run_tests polls Flow(name)[run_id] in this process: forget the previous case's
        # local datastore root, which Metaflow caches on the class
        from metaflow.plugins.datastores.local_storage import LocalStorage

        LocalStorage.datastore_root = None
        return subprocess.CompletedProcess(
            cmd, proc.returncode, proc.stdout, proc.stderr
        )

    def answer_poll(self, run_id: str, ok: bool) -> None:
        """Answer run_tests' poll ``Flow(name)[run_id].finished/.successful`` with the
        workflow's outcome. Polling Metaflow cannot see a failed run finish (a failed
        end task has ``_task_ok`` False) and calls a run whose end step's exception
        ``@catch`` handled unsuccessful, so SHOULD_FAIL tests and CatchRetryTest could
        never reach the checkers under any scheduler (argo-workflows included)."""
        import metaflow

        status = type("Run", (), {"finished": True, "successful": ok})()
        self.restore = self.restore or metaflow.Flow
        metaflow.Flow = lambda name, _namespace_check=True: {run_id: status}

    def temporal(self, env, *args):
        return subprocess.run(
            [
                str(Path(sys.executable).with_name("temporal")),
                "workflow",
                *args,
                "--address",
                self.address,
                "-w",
                self.workflow_id,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def first_run_id(self, env) -> str | None:
        """A failed trigger prints no pathspec: the run id is temporal-<first run id>."""
        with contextlib.suppress(Exception):
            info = json.loads(self.temporal(env, "describe", "-o", "json").stdout)
            return "temporal-" + info["workflowExecutionInfo"]["firstRunId"]
        return None

    def terminate(self, env) -> None:
        with contextlib.suppress(Exception):
            self.temporal(env, "terminate", "--reason", "run_core.py: case timed out")

    def end_case(self) -> None:
        stop(self.worker)
        self.worker = None
        if self.restore:
            import metaflow

            metaflow.Flow, self.restore = self.restore, None


def not_applicable(formatter, graph, test, context, disabled_by) -> str | None:
    """Why run_tests would not run this case under a scheduler context, or None."""
    name, gname = type(test).__name__, graph["name"]
    if gname in formatter.skip_graphs:
        return "not generated: SKIP_GRAPHS"
    if formatter.only_graphs and gname not in formatter.only_graphs:
        return "not generated: ONLY_GRAPHS"
    if not formatter.valid:
        return "not generated: a required step has no node in this graph"
    if context["disable_parallel"] and any(
        "num_parallel" in n for n in graph["graph"].values()
    ):
        return "@parallel graph (scheduler contexts set disable_parallel)"
    if name in disabled_by:
        return "disabled_tests of " + disabled_by[name]
    plain = UNBOUNDED_RESUME.get(name)
    if plain in disabled_by:
        return f"resume of {plain} (unbounded foreach): disabled_tests of " + (
            disabled_by[plain]
        )
    return None


def first_error(text: str) -> str:
    """The run_tests verdict and the first error line of the processes' stderr."""
    verdicts = re.findall(r"### test .*?: (.*?) ###", text)
    verdict = next((v for v in verdicts if "fail" in v or "timed out" in v), "failed")
    stderr = text.split("STDERR follows:", 1)[-1].splitlines()
    for i, line in enumerate(stderr):
        if line.startswith("Traceback"):
            rest = [s for s in stderr[i + 1 :] if s and not s.startswith(" ")]
            if rest:
                return f"{verdict}: {rest[0].strip()}"
        if re.search(r"error|Error|ERROR|failed|Exception|Expected", line):
            return f"{verdict}: {line.strip()}"
    if verdict == "flow failed":  # run_tests' own poll: the trigger itself succeeded
        return f"{verdict}: the workflow succeeded but Run(...).successful is False"
    return verdict


def dev_server(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("temporal")),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ui-port",
            str(free_port()),
            "--log-level",
            "error",
        ],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), 1),
        ):
            time.sleep(1)  # gRPC up; let the default namespace register
            return proc, f"127.0.0.1:{port}"
        time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"the Temporal dev server did not start; see {log}")


def table(title: str, rows: dict[str, dict[str, int]]) -> str:
    width = max([len(title), 5, *map(len, rows)])
    lines = [f"{title:<{width}}  passed/applicable  not applicable"]
    total = defaultdict(int)
    for key in sorted(rows):
        r = rows[key]
        for k, v in r.items():
            total[k] += v
        lines.append(
            f"{key:<{width}}  {r['passed']:>6}/{r['applicable']:<10}  {r['na']:>5}"
        )
    lines.append(
        f"{'TOTAL':<{width}}  {total['passed']:>6}/{total['applicable']:<10}  "
        f"{total['na']:>5}"
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--core", required=True, help="Metaflow checkout's test/core directory"
    )
    ap.add_argument(
        "--out", default="/tmp/mfcore-results", help="logs and results.json"
    )
    ap.add_argument(
        "--graphs", default="", help="comma-separated graph names (default all)"
    )
    ap.add_argument(
        "--tests", default="", help="comma-separated test classes (default all)"
    )
    ap.add_argument(
        "--rerun", help="results.json of an earlier run: run its failures only"
    )
    ap.add_argument("--launcher", default="subprocess", choices=["subprocess", "fork"])
    ap.add_argument(
        "--address", help="use this Temporal server instead of a dev server"
    )
    ap.add_argument(
        "--timeout", type=float, default=300, help="seconds per run (trigger)"
    )
    ap.add_argument("--keep", action="store_true", help="keep each case's directory")
    ap.add_argument(
        "--stock-poll",
        action="store_true",
        help="let run_tests poll Metaflow for the run's status (see answer_poll)",
    )
    args = ap.parse_args()

    core, out = Path(args.core).resolve(), Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    os.environ["USER"] = os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name
    suite = json.loads((core / "contexts.json").read_text())
    by_name = {c["name"]: c for c in suite["contexts"]}
    local, argo = by_name["python3-all-local"], by_name["python3-argo-workflows"]
    # run_tests polls the run's status in this process: Metaflow reads the user once
    os.environ["METAFLOW_USER"] = local["env"]["METAFLOW_USER"]
    os.chdir(core)  # run_test copies metaflow_test/ and tests/<files> from the cwd
    sys.path.insert(0, str(core))
    import run_tests  # Metaflow's harness (imports metaflow with test/core on the path)
    import metaflow
    from metaflow_test.formatter import FlowFormatter

    disabled_by = {t: "python3-all-local" for t in local["disabled_tests"]}
    disabled_by.update({t: "python3-argo-workflows" for t in argo["disabled_tests"]})
    context = dict(
        local,
        name="python3-temporal",
        scheduler=SCHEDULER,
        executors=["scheduler"],
        disable_parallel=True,
        python=sys.executable,
        scheduler_timeout=60,
        disabled_tests=sorted(disabled_by),
    )
    checks = {k: dict(v, python=sys.executable) for k, v in suite["checks"].items()}
    (out / "contexts.json").write_text(
        json.dumps(
            {"contexts": [context], "checks": checks}, indent=2, ensure_ascii=False
        )
        + "\n"
    )

    wanted = lambda s: {x.lower() for x in s.split(",") if x}  # noqa: E731
    only_graphs, only_tests = wanted(args.graphs), wanted(args.tests)
    rerun = None
    if args.rerun:
        rerun = {
            (c["graph"], c["test"])
            for c in json.loads(Path(args.rerun).read_text())["cases"]
            if c["status"] == "fail"
        }
    graphs = sorted(run_tests.iter_graphs(), key=lambda g: g["name"])
    tests = sorted(run_tests.iter_tests(), key=lambda t: (t.PRIORITY, type(t).__name__))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up in `finally`
    server, address = (
        (None, args.address) if args.address else dev_server(out / "server.log")
    )
    sched = Scheduler(
        address,
        args.launcher,
        args.timeout,
        context["run_options"],
        workflow_status=not args.stock_poll,
    )
    sched.top_count = len(context["top_options"])
    run_tests.subprocess = type(
        "subprocess",
        (),
        {  # run_tests' view of subprocess
            "__getattr__": lambda self, n: getattr(subprocess, n),
            "run": lambda self, cmd, **kw: sched.run(cmd, **kw),
        },
    )()
    print(
        f"metaflow {metaflow.__version__}, server {address}, launcher {args.launcher}, "
        f"context {out / 'contexts.json'}",
        flush=True,
    )

    cases, started = [], time.time()
    stdout = sys.stdout

    def save(final: bool) -> None:
        (out / "results.json").write_text(
            json.dumps(
                {
                    "metaflow": metaflow.__version__,
                    "launcher": args.launcher,
                    "complete": final,
                    "seconds": round(time.time() - started),
                    "cases": cases,
                },
                indent=1,
            )
            + "\n"
        )

    try:
        for graph in graphs:
            if only_graphs and graph["name"].lower() not in only_graphs:
                continue
            for test in tests:
                tname = type(test).__name__
                if only_tests and tname.lower() not in only_tests:
                    continue
                if rerun is not None and (graph["name"], tname) not in rerun:
                    continue
                formatter = FlowFormatter(graph, test)
                case = {"graph": graph["name"], "test": tname}
                reason = not_applicable(formatter, graph, test, context, disabled_by)
                if reason:
                    cases.append(dict(case, status="n/a", reason=reason))
                    continue
                slug = f"{graph['name']}__{tname}"
                log, t0 = out / "logs" / f"{slug}.log", time.time()
                sched.start_case(
                    slug.replace("_", "-").lower(),
                    [*test.PARAMETERS, *test.INCLUDE_FILES],
                    out / "logs" / f"{slug}.worker.log",
                )
                with (
                    open(log, "w", encoding="utf-8", buffering=1) as fh,
                    contextlib.redirect_stdout(fh),
                ):
                    try:
                        # the scheduler executor skips resume tests; the cli one
                        # runs them (run and resume stand in for trigger, above)
                        executor = "cli" if formatter.should_resume else "scheduler"
                        ret, _ = run_tests.run_test(
                            formatter, context, args.keep, checks, {}, executor
                        )
                    except Exception:
                        traceback.print_exc(file=fh)
                        print("STDERR follows:\n" + traceback.format_exc())
                        ret = 1
                    finally:
                        sched.end_case()
                        os.chdir(core)
                text = log.read_text(encoding="utf-8", errors="replace")
                status = "fail" if ret else "pass"
                cases.append(
                    dict(
                        case,
                        status=status,
                        seconds=round(time.time() - t0, 1),
                        error=first_error(text) if ret else None,
                    )
                )
                save(final=False)
                print(
                    f"{status:4}  {time.time() - t0:6.1f}s  {graph['name']:32} {tname}"
                    + (f"\n      {cases[-1]['error']}" if ret else ""),
                    file=stdout,
                    flush=True,
                )
    finally:
        sched.end_case()
        stop(server)

    elapsed = time.time() - started
    per_graph, per_test = (defaultdict(lambda: defaultdict(int)) for _ in range(2))
    for c in cases:
        for key, rows in ((c["graph"], per_graph), (c["test"], per_test)):
            rows[key]["applicable"] += c["status"] != "n/a"
            rows[key]["passed"] += c["status"] == "pass"
            rows[key]["na"] += c["status"] == "n/a"
    reasons = defaultdict(int)
    for c in cases:
        if c["status"] == "n/a":
            reasons[c["reason"]] += 1
    failures = [c for c in cases if c["status"] == "fail"]
    save(final=True)
    print("\n" + table("graph", per_graph) + "\n\n" + table("test", per_test) + "\n")
    print(
        "not applicable:\n"
        + "\n".join(f"  {n:4}  {r}" for r, n in sorted(reasons.items()))
    )
    print(f"\n{len(failures)} failed:" if failures else "\nno failures")
    for c in failures:
        print(f"  {c['graph']:32} {c['test']:32} {c['error']}")
    print(
        f"\n{elapsed:.0f} s; logs in {out / 'logs'}, results in {out / 'results.json'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
