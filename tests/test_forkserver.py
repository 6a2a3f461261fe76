"""ForkServerLauncher against SubprocessLauncher on real Metaflow commands and scripts.

Every test runs real processes: the fork server, its children, fresh interpreters.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from metaflow import Task, namespace
from metaflow.mflog.mflog import parse

from mf_temporal_codegen.runtime.forkserver import ForkServerError, ForkServerLauncher
from mf_temporal_codegen.runtime.launcher import SubprocessLauncher

FLOW = Path(__file__).parent / "flows" / "fork_probe_flow.py"
TOP = [
    "--quiet",
    "--no-pylint",
    "--metadata=local",
    "--datastore=local",
    "--environment=local",
    "--event-logger=nullSidecarLogger",
    "--monitor=nullSidecarMonitor",
]


@pytest.fixture(scope="module")
def fork():
    launcher = ForkServerLauncher()
    yield launcher
    launcher.close()


@pytest.fixture(autouse=True)
def _all_namespaces():
    namespace(None)


class Runner:
    """Runs commands through a launcher and reads back their mflog files."""

    def __init__(self, launcher, tmp: Path, env: dict, cwd: Path = FLOW.parent):
        self.launcher, self.tmp, self.env, self.cwd = launcher, tmp, env, cwd
        self.count = 0

    async def run(self, argv, **env) -> tuple[int, list[str], list[str]]:
        self.count += 1
        out = self.tmp / f"{self.launcher.name}-{self.count}.out"
        err = out.with_suffix(".err")
        code = await self.launcher.run(
            [str(a) for a in argv],
            env={**self.env, **env},
            cwd=self.cwd,
            stdout_log=out,
            stderr_log=err,
        )
        return code, _messages(out), _messages(err)

    async def init(self, run_id: str, flow=FLOW, **env):
        code, _, err = await self.run(
            [flow, *TOP, "init", "--run-id", run_id, "--task-id", "t-params"], **env
        )
        assert code == 0, err

    def start(self, run_id: str, task_id: str = "t", flow=FLOW, **env):
        return self.run(
            [
                flow,
                *TOP,
                "step",
                "start",
                "--run-id",
                run_id,
                "--task-id",
                task_id,
                "--input-paths",
                f"{run_id}/_parameters/t-params",
                "--retry-count",
                "0",
                "--max-user-code-retries",
                "0",
            ],
            **env,
        )


def _messages(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [parse(line).msg.decode() for line in log.read_bytes().splitlines()]


def _runners(fork, tmp: Path, cwd: Path = FLOW.parent) -> list[Runner]:
    """A fresh-interpreter runner and a fork-server runner, same env and cwd."""
    env = dict(os.environ)
    return [Runner(SubprocessLauncher(), tmp, env, cwd), Runner(fork, tmp, env, cwd)]


def test_step_matches_subprocess(mf_env, tmp_path, fork):
    async def main():
        results = {}
        for runner in _runners(fork, tmp_path):
            run_id = f"{runner.launcher.name}-run"
            await runner.init(run_id)
            code, out, err = await runner.start(run_id, FORK_PROBE_VALUE=run_id)
            results[runner.launcher.name] = code, out, err, run_id
        return results

    results = asyncio.run(main())
    seen = {}
    for name, (code, out, err, run_id) in results.items():
        task = Task(f"ForkProbeFlow/{run_id}/start/t")
        assert code == 0 and task.successful
        assert out[1:] == ["probe stdout line 1", "probe stdout line 2"]
        assert err == ["probe stderr line"]
        data = task.data
        assert data.probe_env == run_id
        assert data.session_leader and data.pid != os.getpid()
        assert out[0] == f"probe pid {data.pid}"
        seen[name] = {
            "cwd": data.cwd,
            "argv": [a.replace(run_id, "R") for a in data.argv],
            "path0": data.path0,
            "main_file": data.main_file,
        }
    assert seen["fork"] == seen["subprocess"]
    assert seen["fork"]["path0"] == str(FLOW.parent.resolve())


def test_every_task_is_as_fresh_as_a_new_process(mf_env, tmp_path, fork):
    """Both launchers run the probe twice from the same directory (the second task
    in the same server): random state, a local module's state, and whatever the
    first task changed in its process (env, cwd, sys.path) are fresh in each."""

    async def main():
        seen = {}
        for runner in _runners(fork, tmp_path, cwd=FLOW.parent.parent):
            run_id = f"{runner.launcher.name}-fresh"
            await runner.init(run_id, flow="flows/fork_probe_flow.py")
            for task_id in ("a", "b"):
                code, _, err = await runner.start(
                    run_id, task_id, flow="flows/fork_probe_flow.py"
                )
                assert code == 0, err
            seen[runner.launcher.name] = [
                Task(f"ForkProbeFlow/{run_id}/start/{t}").data for t in ("a", "b")
            ]
        return seen

    seen = asyncio.run(main())
    for name, (first, second) in seen.items():
        for data in (first, second):
            assert data.leaked == (None, False), name
            assert data.helper_calls == 1, name
            assert data.cwd == str(FLOW.parent.parent), name
        assert first.random_value != second.random_value, name
        assert first.uuid != second.uuid, name
        assert first.drawn_at_import != second.drawn_at_import, name
        if first.numpy_value is not None:
            assert first.numpy_value != second.numpy_value, name
    fresh, forked = seen["subprocess"][0], seen["fork"][0]
    for attr in ("path", "cwd", "main_file", "helper_file"):
        assert getattr(forked, attr) == getattr(fresh, attr), attr
    assert [a.replace("fork-fresh", "R") for a in forked.argv] == [
        a.replace("subprocess-fresh", "R") for a in fresh.argv
    ]
    assert fresh.argv[0] == "flows/fork_probe_flow.py"


def test_env_decides_datastore_root(tmp_path, fork, monkeypatch):
    """Tasks with different METAFLOW_DATASTORE_SYSROOT_LOCAL land in different roots."""
    monkeypatch.setenv("USERNAME", "tester")
    roots = [tmp_path / "root-a", tmp_path / "root-b"]

    async def main():
        for root in roots:
            runner = Runner(
                fork,
                tmp_path,
                {**os.environ, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root)},
            )
            await runner.init(root.name)
            code, _, err = await runner.start(root.name)
            assert code == 0, err

    asyncio.run(main())
    for root, other in (roots, roots[::-1]):
        runs = root / ".metaflow" / "ForkProbeFlow"
        assert (runs / root.name / "start" / "t" / "0.DONE.lock").exists()
        assert not (other / ".metaflow" / "ForkProbeFlow" / root.name).exists()


def test_failing_steps_exit_like_subprocess(mf_env, tmp_path, fork):
    async def main():
        codes = {}
        for runner in _runners(fork, tmp_path):
            for mode in ("fail", "exit3"):
                run_id = f"{runner.launcher.name}-{mode}"
                await runner.init(run_id, METAFLOW_INIT_MODE=mode)
                code, _, err = await runner.start(run_id)
                codes[runner.launcher.name, mode] = code, any(
                    "probe failure" in line for line in err
                )
        return codes

    codes = asyncio.run(main())
    assert codes["fork", "fail"] == codes["subprocess", "fail"] == (1, True)
    assert codes["fork", "exit3"] == codes["subprocess", "exit3"]
    assert codes["fork", "exit3"][0] != 0


SCRIPTS = {
    "ok": "print('a'); print('b', file=sys.stderr); print('no newline', end='')",
    "exception": "def f():\n    raise ValueError('boom')\nf()",
    "exit-none": "sys.exit()",
    "exit-int": "sys.exit(7)",
    "exit-str": "sys.exit('bye')",
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "sigkill": "os.kill(os.getpid(), signal.SIGKILL)",
    "atexit-and-thread": textwrap.dedent("""\
        import atexit, threading, time
        atexit.register(lambda: print('atexit ran'))
        threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()
        """),
    "env-before-metaflow": textwrap.dedent("""\
        os.environ["METAFLOW_DEFAULT_DATASTORE"] = "changed-before-import"
        from metaflow.metaflow_config import DEFAULT_DATASTORE
        print(DEFAULT_DATASTORE)
        """),
    "env-after-metaflow": textwrap.dedent("""\
        from metaflow.metaflow_config import DEFAULT_DATASTORE
        os.environ["METAFLOW_DEFAULT_DATASTORE"] = "changed-after-import"
        print(DEFAULT_DATASTORE, os.environ["METAFLOW_DEFAULT_DATASTORE"])
        """),
    "import-output": "print('before')\nimport metaflow\nprint('after')",
    # lines longer than the pipes' stream limit (Metaflow reads lines of any length)
    "long-line": "print('x' * 200_000); print('y' * 70_000, file=sys.stderr); print('after')",
    "main-module": textwrap.dedent("""\
        import __main__, multiprocessing
        print(__name__, __main__.__file__ == __file__, __spec__, __package__)
        print(sys.modules['__mp_main__'] is sys.modules['__main__'], sorted(dir()))
        print(sys.argv, sys.path[0] == os.path.dirname(__file__), os.getcwd())
        """),
}

# Metaflow prints debug lines (some in set order: fix the hash seed), and Python a
# DeprecationWarning, while importing.
SCRIPT_ENV = {
    "import-output": {
        "METAFLOW_DEBUG_EXT": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONWARNINGS": "always::DeprecationWarning",
    }
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_semantics_match_subprocess(name, tmp_path, fork):
    """Exit codes, output and ``__main__`` of plain scripts are those of ``python x.py``."""
    (tmp_path / "sub").mkdir()
    script = tmp_path / "sub" / "script.py"
    script.write_text("import os, signal, sys\n" + SCRIPTS[name] + "\n")

    async def main():
        runners = _runners(fork, tmp_path, cwd=tmp_path)
        env = SCRIPT_ENV.get(name, {})
        return [await r.run(["sub/script.py", "x", "--y"], **env) for r in runners]

    fresh, forked = asyncio.run(main())
    assert forked == fresh
    expected = {
        "ok": 0,
        "exception": 1,
        "exit-none": 0,
        "exit-int": 7,
        "exit-str": 1,
        "keyboard-interrupt": -signal.SIGINT,
        "sigkill": -signal.SIGKILL,
    }
    assert fresh[0] == expected.get(name, 0)
    if name == "import-output":
        assert len(fresh[2]) > 10 and fresh[1] == ["before", "after"]
    if name == "long-line":
        assert fresh[1:] == (["x" * 200_000, "after"], ["y" * 70_000])


def test_relative_pythonpath_resolves_against_each_tasks_cwd(tmp_path, fork):
    """``PYTHONPATH=lib`` means ``<cwd>/lib``: tasks in different directories never
    share a server that resolved it against another one."""
    for name in ("a", "b"):
        (tmp_path / name / "lib").mkdir(parents=True)
        (tmp_path / name / "lib" / "probe_mod.py").write_text(f"VALUE = {name!r}\n")
    script = tmp_path / "script.py"
    script.write_text("import probe_mod, sys\nprint(probe_mod.VALUE, sys.path[1])\n")

    async def main():
        results = []
        for name in ("a", "b"):
            for runner in _runners(fork, tmp_path / name, cwd=tmp_path / name):
                runner.env["PYTHONPATH"] = "lib"
                results.append(await runner.run([str(script)]))
        return results

    fresh_a, forked_a, fresh_b, forked_b = asyncio.run(main())
    assert forked_a == fresh_a == (0, [f"a {tmp_path / 'a' / 'lib'}"], [])
    assert forked_b == fresh_b == (0, [f"b {tmp_path / 'b' / 'lib'}"], [])


def test_missing_script_and_cwd(tmp_path, fork):
    async def main():
        results = []
        for runner in _runners(fork, tmp_path, cwd=tmp_path):
            results.append(await runner.run(["missing.py"]))
            runner.cwd = tmp_path / "nope"
            with pytest.raises(FileNotFoundError):
                await runner.run(["missing.py"])
        return results

    fresh, forked = asyncio.run(main())
    assert forked == fresh and fresh[0] == 2


def test_cancel_kills_task_and_server_survives(mf_env, tmp_path, fork):
    runner = Runner(fork, tmp_path, {**os.environ, "PYTHONUNBUFFERED": "1"})

    async def main():
        await runner.init("sleepy", METAFLOW_INIT_MODE="sleep")
        log = tmp_path / f"fork-{runner.count + 1}.out"
        task = asyncio.create_task(runner.start("sleepy"))
        deadline = time.monotonic() + 30
        while not any(m.startswith("probe pid") for m in _messages(log)):
            assert time.monotonic() < deadline, "task never started"
            await asyncio.sleep(0.05)
        pid = int(_messages(log)[0].split()[-1])
        servers = [s.proc.pid for s in fork._servers]
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - started
        await runner.init("after")
        code, out, _ = await runner.start("after")
        return pid, elapsed, servers, code, out

    pid, elapsed, servers, code, out = asyncio.run(main())
    assert elapsed < 3
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert code == 0 and "probe stdout line 1" in out
    assert [s.proc.pid for s in fork._servers] == servers


def test_concurrent_tasks(mf_env, tmp_path, fork):
    runner = Runner(fork, tmp_path, dict(os.environ))

    async def main():
        await runner.init("wide")
        return await asyncio.gather(
            *(runner.start("wide", f"t{i}", FORK_PROBE_VALUE=str(i)) for i in range(20))
        )

    results = asyncio.run(main())
    assert [code for code, _, _ in results] == [0] * 20
    tasks = [Task(f"ForkProbeFlow/wide/start/t{i}") for i in range(20)]
    assert [t.data.probe_env for t in tasks] == [str(i) for i in range(20)]
    assert len({t.data.pid for t in tasks}) == 20


def test_shadowing_module_runs_in_fresh_interpreter(mf_env, tmp_path, fork):
    """A flow dir holding e.g. ``shlex.py`` gets what ``python flow.py`` gives: that file."""
    flow_dir = tmp_path / "flowdir"
    flow_dir.mkdir()
    shutil.copy(FLOW, flow_dir)
    shutil.copy(FLOW.with_name("fork_probe_helper.py"), flow_dir)
    (flow_dir / "shlex.py").write_text(textwrap.dedent("""\
        import os, sys
        print("shadow module imported", flush=True)
        here = os.path.dirname(os.path.realpath(__file__))
        del sys.modules[__name__]
        sys.path.remove(here)
        try:
            import shlex as real
        finally:
            sys.path.insert(0, here)
        sys.modules[__name__] = real
        """))

    async def main():
        outs = {}
        for runner in _runners(fork, tmp_path, cwd=flow_dir):
            run_id = f"{runner.launcher.name}-shadow"
            await runner.init(run_id, flow="fork_probe_flow.py")
            code, out, err = await runner.start(run_id, flow="fork_probe_flow.py")
            assert code == 0, err
            outs[runner.launcher.name] = out[0]
        return outs

    assert asyncio.run(main()) == {
        "subprocess": "shadow module imported",
        "fork": "shadow module imported",
    }


def test_server_that_cannot_start_raises(tmp_path):
    launcher = ForkServerLauncher()
    env = {
        **os.environ,
        "METAFLOW_PROFILE": "no-such-profile",
        "METAFLOW_HOME": str(tmp_path),
    }
    with pytest.raises(ForkServerError, match="no-such-profile"):
        asyncio.run(launcher.start(env, tmp_path))
    with pytest.raises(ForkServerError, match="cannot start"):
        asyncio.run(
            ForkServerLauncher(python=sys.executable + "-missing").start(
                dict(os.environ), tmp_path
            )
        )
    launcher.close()


def test_server_exits_with_its_worker(tmp_path):
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""\
            import asyncio, os, time
            from mf_temporal_codegen.runtime.forkserver import ForkServerLauncher
            launcher = ForkServerLauncher()
            asyncio.run(launcher.start(dict(os.environ), {str(tmp_path)!r}))
            server = launcher._servers[0]
            print(server.proc.pid, server.dir, flush=True)
            time.sleep(60)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid, directory = worker.stdout.readline().split()
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 10
    while _alive(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(int(pid))
    assert not os.path.exists(directory)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (an orphan is reaped by init, so a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return re.sub(r".*\) ", "", f.read()).split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_preloaded_flow_imports_stay_fresh(tmp_path):
    """Installed modules a flow imports are preloaded; modules next to it never are."""
    (tmp_path / "helper.py").write_text("VALUE = 'v1'\n")
    (tmp_path / "script.py").write_text(
        "import colorsys\nimport helper\nprint(colorsys.rgb_to_hsv(1, 0, 0), helper.VALUE)\n"
    )
    fork = ForkServerLauncher(preload_flow_imports=True)

    async def main():
        runners = [
            Runner(SubprocessLauncher(), tmp_path, dict(os.environ), tmp_path),
            Runner(fork, tmp_path, dict(os.environ), tmp_path),
        ]
        first = [await r.run(["script.py"]) for r in runners]
        (tmp_path / "helper.py").write_text("VALUE = 'v2'\n")
        second = [await r.run(["script.py"]) for r in runners]
        return first, second

    try:
        (fresh1, forked1), (fresh2, forked2) = asyncio.run(main())
        [server] = fork._servers
        assert "colorsys" in server.modules and "helper" not in server.modules
    finally:
        fork.close()
    assert forked1 == fresh1 == (0, ["(0.0, 1.0, 1) v1"], [])
    assert forked2 == fresh2 == (0, ["(0.0, 1.0, 1) v2"], [])


def test_default_launcher_is_the_fork_server_where_it_works():
    from mf_temporal_codegen.runtime import forkserver
    from mf_temporal_codegen.runtime.worker import _parser, make_launcher

    launcher = make_launcher()
    try:
        assert launcher.name == ("fork" if forkserver.AVAILABLE else "subprocess")
    finally:
        launcher.close()
    assert make_launcher("subprocess").name == "subprocess"

    module = type("Module", (), {"FLOW": type("Flow", (), {"name": "F"})})
    args = _parser(module).parse_args(["worker"])
    assert args.launcher == "default"
