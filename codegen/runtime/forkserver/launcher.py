"""Fork-server launcher: each task forks from an interpreter that already imported Metaflow.

A fresh ``python flow.py ...`` spends ~0.3 s CPU importing Metaflow. ``ForkServerLauncher``
keeps a server process (:mod:`.server`) per *import context* that imported
Metaflow once and forks a child per task; the child runs the flow file as ``__main__``
like ``python flow.py`` would (argv, env, cwd, ``sys.path[0]``, ``__main__`` attributes,
exit codes and signals, its own session, its command line in ``ps``), with stdout and
stderr on pipes owned by the worker, so ``Launcher.run`` works unchanged.

No configuration leaks between tasks: the server records which environment variables
its imports read (and whether they read the cwd), and a task only goes to a server
whose start-up environment agrees on all of those, on the interpreter's own start-up
variables (``PYTHON*``, locale, ``TZ``) and on the Metaflow config files read at import
(``$METAFLOW_HOME/config*.json``, the cwd's ``.metaflow/config.json``); otherwise a new
server is started for that context. So tasks with different
``METAFLOW_DATASTORE_SYSROOT_LOCAL`` never share a server, while per-task variables
(``METAFLOW_INIT_*``, ``@environment`` vars, ``USERNAME``) do not matter. A task runs in
a fresh interpreter instead when a file next to the flow would shadow a pre-imported
module, and re-``exec``s one when the flow changes a recorded variable before it imports
Metaflow.

Known differences from a fresh interpreter: children share the server's string hash
seed (set ``PYTHONHASHSEED`` to make both deterministic), and packages installed or
upgraded while a server runs are seen only by servers started afterwards.
"""

from __future__ import annotations

import asyncio
import importlib.machinery
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..launcher import Launcher, SubprocessLauncher

SERVER_MODULE = "mf_temporal_codegen.runtime.forkserver.server"
START_TIMEOUT_SECONDS = 60.0
# asyncio's default stream limit, as SubprocessLauncher's pipes have.
STREAM_LIMIT = 2**16
# Variables the interpreter itself reads (at C level) when it starts.
STARTUP_VARS = ("PYTHON", "LC_", "LANG", "TZ")
# Bytes of argv the server reserves so that children can show their own command line.
ARGV_ROOM = 4096
# Whether this platform can run the fork server (the default launcher where it can).
AVAILABLE = hasattr(os, "fork") and hasattr(socket, "send_fds")


class ForkServerError(RuntimeError):
    """The fork server could not start, refused a task, or died while a task ran."""


@dataclass(frozen=True)
class _Context:
    """Everything about a task that decides which server may fork it."""

    env: dict[str, str]
    cwd: str
    flow: str | None
    config: tuple


class ForkServerLauncher(Launcher):
    """Runs tasks as forks of a pre-warmed interpreter; same contract as subprocesses.

    ``preload_flow_imports`` also pre-imports the installed (stdlib/site-packages)
    modules the flow file imports at top level, one server per flow file. Off by default:
    libraries with import-time state that must differ per process (e.g. a seeded RNG)
    would share it between tasks.
    """

    name = "fork"

    def __init__(
        self,
        python: str = sys.executable,
        *,
        preload_flow_imports: bool = False,
        max_servers: int = 4,
    ):
        self.python = python
        self.preload_flow_imports = preload_flow_imports
        self.max_servers = max_servers
        self._servers: list[_Server] = []
        self._lock = threading.Lock()  # guards _servers
        self._start_lock = threading.Lock()  # one server start at a time
        self._fallback = SubprocessLauncher(python)

    async def start(
        self, env: Mapping[str, str], cwd: Path, flow_file: str | None = None
    ) -> None:
        """Start (or find) the server for this context now; raises ForkServerError."""
        context = self._context(env, cwd, flow_file or "flow.py")
        if self._find(context) is None:
            await asyncio.to_thread(self._find_or_start, context)

    async def spawn(self, argv, env, cwd):
        if not os.path.isdir(cwd):  # let subprocess raise its usual error
            return await self._fallback.spawn(argv, env, cwd)
        context = self._context(env, cwd, argv[0])
        for _ in range(2):
            server = self._find(context)
            if server is None:
                server = await asyncio.to_thread(self._find_or_start, context)
            if server.shadowed(Path(cwd, argv[0]), context.env):
                return await self._fallback.spawn(argv, env, cwd)
            try:
                return await server.spawn(argv, context.env, context.cwd)
            except _ServerGone:
                await asyncio.to_thread(self._retire, server)
        raise ForkServerError("the fork server keeps going away")

    def close(self) -> None:
        """Stop every server (running tasks are left alone)."""
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()

    def _context(self, env: Mapping[str, str], cwd: Path, flow_file: str) -> _Context:
        env = dict(env)
        flow = os.path.join(cwd, flow_file) if self.preload_flow_imports else None
        return _Context(env, os.fspath(cwd), flow, _config_signature(env, cwd))

    def _find(self, context: _Context) -> _Server | None:
        with self._lock:
            for server in self._servers:
                if server.serves(context):
                    server.last_used = time.monotonic()
                    return server
        return None

    def _find_or_start(self, context: _Context) -> _Server:
        """Blocking: reuse a matching server or start one, evicting idle old ones."""
        with self._start_lock:
            server = self._find(context)
            if server is not None:
                return server
            server = _Server(self.python, context)
            with self._lock:
                self._servers.append(server)
                dead = [s for s in self._servers if not s.alive()]
                idle = sorted(
                    (s for s in self._servers if s.alive() and not s.active),
                    key=lambda s: s.last_used,
                )
                dead += idle[
                    : max(0, len(self._servers) - len(dead) - self.max_servers)
                ]
                self._servers = [s for s in self._servers if s not in dead]
            for old in dead:
                old.stop()
            return server

    def _retire(self, server: _Server) -> None:
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)
        server.stop()


class _ServerGone(Exception):
    """Connecting to a server failed: it exited."""


class _Server:
    """One server process and what its imports depend on."""

    def __init__(self, python: str, context: _Context):
        self.context = context
        self.active = 0
        self.last_used = time.monotonic()
        self._shadow_cache: dict[str, tuple[int, bool]] = {}
        self.dir = tempfile.mkdtemp(prefix="mf-forkserver-")
        self.path = os.path.join(self.dir, "sock")
        self.log = tempfile.TemporaryFile()
        args = [
            python,
            "-m",
            SERVER_MODULE,
            self.dir,
            context.flow or "",
            " " * ARGV_ROOM,
        ]
        try:
            self.proc = subprocess.Popen(
                args,
                env=context.env,
                cwd=context.cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log,
                start_new_session=True,
            )
            hello = self._handshake()
        except BaseException as exc:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            if isinstance(exc, OSError):
                raise ForkServerError(f"cannot start the fork server: {exc}") from exc
            raise
        self.reads: dict[str, str | None] = hello["reads"]
        self.iterated: bool = hello["iterated"]
        self.cwd_read: bool = hello["cwd_read"]
        self.modules = frozenset(hello["modules"])
        self.startup_env = _startup_env(context.env)

    def _handshake(self) -> dict:
        stdout = self.proc.stdout
        assert stdout is not None  # started with stdout=PIPE
        ready, _, _ = select.select([stdout], [], [], START_TIMEOUT_SECONDS)
        line = stdout.readline() if ready else b""
        stdout.close()
        try:
            return json.loads(line)
        except ValueError:
            pass
        self.proc.kill()
        self.proc.wait()
        self.log.seek(0)
        detail = self.log.read().decode(errors="replace").strip()[-2000:]
        raise ForkServerError(f"the fork server did not start:\n{detail}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def serves(self, context: _Context) -> bool:
        """Whether a fork of this server is indistinguishable from a fresh interpreter."""
        own, env = self.context, context.env
        return (
            self.alive()
            and context.flow == own.flow
            and context.config == own.config
            and (not self.cwd_read or context.cwd == own.cwd)
            and (not _cwd_relative_path(env) or context.cwd == own.cwd)
            and _startup_env(env) == self.startup_env
            and (
                env == own.env
                if self.iterated
                else all(env.get(k) == v for k, v in self.reads.items())
            )
        )

    def shadowed(self, flow_file: Path, env: Mapping[str, str]) -> bool:
        """Whether the flow's dir holds a module named like one the server imported."""
        if env.get("PYTHONSAFEPATH"):
            return False
        directory = os.path.dirname(os.path.realpath(flow_file))
        try:
            stamp = os.stat(directory).st_mtime_ns
        except OSError:
            return False
        cached = self._shadow_cache.get(directory)
        if cached is None or cached[0] != stamp:
            names = _module_names(directory)
            shadows = names & (self.modules | {"metaflow_extensions"})
            cached = self._shadow_cache[directory] = (stamp, bool(shadows))
        return cached[1]

    async def spawn(self, argv: Sequence[str], env: dict, cwd: str) -> _ForkedProcess:
        """Send one task; return once its child runs in its own session."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        owned, writer, reply = [out_r, err_r], None, {}
        request = {"argv": [os.fspath(a) for a in argv], "env": env, "cwd": cwd}
        data = json.dumps(request).encode() + b"\n"
        try:
            try:
                await loop.sock_connect(sock, self.path)
                sock.setblocking(True)
                sock.sendall(data[socket.send_fds(sock, [data], [out_w, err_w]) :])
            except OSError as exc:
                raise _ServerGone from exc
            finally:
                os.close(out_w)
                os.close(err_w)
            sock.setblocking(False)
            reader, writer = await asyncio.open_unix_connection(sock=sock)
            reply = await _first_reply(reader)
            stdout = await _stream(owned.pop(0))
            stderr = await _stream(owned.pop(0))
        except BaseException:
            if writer is None:
                sock.close()
            else:
                writer.close()
            for fd in owned:
                os.close(fd)
            if "pid" in reply:
                _kill(reply["pid"])
            raise
        self.active += 1
        return _ForkedProcess(reply["pid"], stdout, stderr, reader, writer, self._done)

    def _done(self) -> None:
        self.active -= 1
        self.last_used = time.monotonic()

    def stop(self) -> None:
        """Close the server's stdin (it exits and removes its dir); kill it if stuck."""
        assert self.proc.stdin is not None  # started with stdin=PIPE
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.log.close()


async def _first_reply(reader: asyncio.StreamReader) -> dict:
    """The child's pid (or why there is none); a cancelled wait kills the child."""
    read = asyncio.ensure_future(reader.readline())
    try:
        line = await asyncio.shield(read)
    except asyncio.CancelledError:
        reply = json.loads(await read or "{}")
        if "pid" in reply:
            _kill(reply["pid"])
        raise
    if not line:  # nobody holds the other end: no child was forked
        raise _ServerGone
    reply = json.loads(line)
    if "pid" in reply:
        return reply
    if "errno" in reply:  # chdir failed, as subprocess's would
        raise OSError(reply["errno"], reply["error"])
    raise ForkServerError(f"the fork server refused the task: {reply}")


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def _stream(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", 0))
    return reader


class _ForkedProcess:
    """The subset of ``asyncio.subprocess.Process`` that ``Launcher.run`` uses."""

    def __init__(self, pid, stdout, stderr, reader, writer, done):
        self.pid, self.stdout, self.stderr = pid, stdout, stderr
        self.returncode: int | None = None
        self._exit = asyncio.ensure_future(self._watch(reader, writer, done))

    async def _watch(self, reader, writer, done) -> int:
        try:
            line = await reader.readline()
        except ConnectionError:
            line = b""
        finally:
            writer.close()
            done()
        if not line:
            raise ForkServerError(f"the fork server exited while task {self.pid} ran")
        self.returncode = os.waitstatus_to_exitcode(json.loads(line)["status"])
        return self.returncode

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)


def _cwd_relative_path(env: Mapping[str, str]) -> bool:
    """Whether ``PYTHONPATH`` has entries the interpreter resolves against its cwd
    at start-up (relative ones, or empty ones meaning the cwd)."""
    value = env.get("PYTHONPATH")
    return value is not None and any(
        not os.path.isabs(p) for p in value.split(os.pathsep)
    )


def _startup_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_VARS)}


def _config_signature(env: Mapping[str, str], cwd: Path) -> tuple:
    """Identity of the config files ``metaflow_config`` reads at import.

    Mirrors ``metaflow_config_funcs``: ``$METAFLOW_HOME/config[_$METAFLOW_PROFILE].json``
    and ``config.json`` in the first ``.metaflow`` dir found walking up from the cwd.
    """
    home = env.get("METAFLOW_HOME", "~/.metaflowconfig")
    if home.startswith("~") and env.get("HOME"):
        home = env["HOME"] + home[1:]
    profile = env.get("METAFLOW_PROFILE")
    name = f"config_{profile}.json" if profile else "config.json"
    main = os.path.join(os.path.expanduser(home), name)
    here = Path(os.path.realpath(cwd))
    local = next((d for d in (here, *here.parents) if (d / ".metaflow").is_dir()), None)
    local_file = local and os.fspath(local / ".metaflow" / "config.json")
    local_stat = local_file and _stat(local_file)
    return main, _stat(main), local_stat and (local_file, local_stat)


def _stat(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _module_names(directory: str) -> set[str]:
    """Names ``import`` would find in ``directory``: modules, regular packages, and
    ``metaflow_extensions`` (a namespace package Metaflow searches sys.path for)."""
    suffixes = importlib.machinery.all_suffixes()
    names = set()
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if os.path.isfile(os.path.join(path, "__init__.py")) or (
            entry == "metaflow_extensions" and os.path.isdir(path)
        ):
            names.add(entry)
        names.update(entry[: -len(s)] for s in suffixes if entry.endswith(s))
    return names
