"""The fork server process: import Metaflow once, then fork one child per task.

Started by :class:`~mf_temporal_codegen.runtime.forkserver.launcher.ForkServerLauncher` as
``python -m mf_temporal_codegen.runtime.forkserver.server DIR FLOW_FILE|"" PADDING`` with
the environment and cwd of the first task it serves (PADDING reserves argv memory that
children overwrite with their own command line, for ``ps``). It imports :data:`PRELOAD`
under a :class:`Probe` that records what the imports observed (environment variables
read or written, the cwd, attributes put on ``__main__``, output), prints that record as
one JSON line on stdout, then serves tasks on the Unix socket ``DIR/sock``.

One connection is one task: the request is a JSON line ``{"argv", "env", "cwd"}`` sent
with the write ends of the task's stdout/stderr pipes (SCM_RIGHTS). The child starts a
new session, reports ``{"pid"}`` itself (so the worker may ``killpg`` it at once), and
runs the flow file as ``__main__``; the server reaps it and reports ``{"status"}`` (a
raw wait status). The server is single-threaded, never runs user code itself, and
exits when its stdin (a pipe from the worker) closes.
"""

from __future__ import annotations

import sys

# Modules a fresh interpreter also has before it puts the flow's dir on sys.path.
STARTUP_MODULES = frozenset(sys.modules)

import ast  # noqa: E402
import atexit  # noqa: E402
import builtins  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import importlib.machinery  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import selectors  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import site  # noqa: E402
import socket  # noqa: E402
import sysconfig  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402

from ..lifetime import die_with_parent  # noqa: E402

# What a `step` or `init` command imports beyond `import metaflow`, minus the modules
# whose import depends on the flow class (`metaflow.cli` and the commands it loads
# lazily: `add_decorator_options` and `add_custom_parameters` read the flow at import).
PRELOAD = (
    "metaflow",
    "metaflow.task",
    "metaflow.runtime",
    "metaflow.system",
    "metaflow.lint",
    "metaflow.cli_components.utils",
)
FLOW_DEPENDENT = re.compile(r"metaflow\.(cli|.*_(cli|cmds?))$")
REQUEST_LIMIT = 1 << 22


class Probe:
    """Records what imports observe of the environment and the cwd, and what they
    add to ``__main__`` (Metaflow puts its namedtuple classes there for pickling)."""

    def __init__(self):
        self.reads: dict[str, str | None] = {}
        self.writes: list[tuple[str, str | None]] = []
        self.iterated = False
        self.cwd_read = False
        self.packages: set[str] = set()  # top-level names imported under the probe
        self.output: dict[int, bytes] = {}  # what the imports wrote to fds 1 and 2
        self.main_attrs: dict[str, object] = {}

    def __enter__(self):
        probe, environ_cls = self, type(os.environ)
        self._saved = environ_cls, os.getcwd, os.getcwdb
        self._main = dict(vars(sys.modules["__main__"]))

        # os.environ's class at run time (os._Environ): a dynamic base mypy cannot take
        class Recording(environ_cls):  # type: ignore[valid-type, misc]
            def __getitem__(self, key):
                value = None
                try:
                    value = super().__getitem__(key)
                finally:
                    if all(key != k for k, _ in probe.writes):
                        probe.reads.setdefault(key, value)
                return value

            def __setitem__(self, key, value):
                probe.writes.append((key, value))
                super().__setitem__(key, value)

            def __delitem__(self, key):
                probe.writes.append((key, None))
                super().__delitem__(key)

            def __iter__(self):
                probe.iterated = True
                return super().__iter__()

            def __len__(self):
                probe.iterated = True
                return super().__len__()

        def recorded(real):
            def getcwd():
                probe.cwd_read = True
                return real()

            return getcwd

        os.environ.__class__ = Recording
        os.getcwd, os.getcwdb = recorded(os.getcwd), recorded(os.getcwdb)
        return self

    def __exit__(self, *exc):
        os.environ.__class__, os.getcwd, os.getcwdb = self._saved
        main = vars(sys.modules["__main__"])
        self.main_attrs = {
            k: v
            for k, v in main.items()
            if k not in self._main or self._main[k] is not v
        }

    def replay_writes(self) -> None:
        """Apply the environment changes the imports made (on top of a task's env)."""
        for key, value in self.writes:
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def flow_imports(flow_file: str) -> list[str]:
    """Installed modules imported at the top level of ``flow_file`` (parsed, not run).

    Modules living next to the flow (or anywhere but stdlib/site-packages) are left
    out: they may change between tasks and a fresh interpreter would see the change.
    """
    with open(flow_file, "rb") as f:
        tree = ast.parse(f.read(), flow_file)
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    roots = {*sysconfig.get_paths().values(), *site.getsitepackages()}
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    prefixes = tuple(os.path.join(os.path.realpath(p), "") for p in roots)

    def installed(name: str) -> bool:
        try:
            spec = importlib.util.find_spec(name.partition(".")[0])
        except (ImportError, ValueError):
            return False
        if spec is None:
            return False
        origin = spec.origin or ""
        if origin in ("built-in", "frozen"):
            return True
        return bool(origin) and os.path.realpath(origin).startswith(prefixes)

    return [
        n for n in dict.fromkeys(names) if not n.startswith("metaflow") and installed(n)
    ]


def thread_count() -> int:
    """OS threads in this process (forking is only safe with exactly one)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("Threads:"))
    except (OSError, StopIteration):
        return threading.active_count()


def thread_free_prefix(names: list[str]) -> list[str]:
    """The leading ``names`` that import (in a throwaway fork) without starting threads."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1), os.dup2(devnull, 2)
        ok = []
        for name in names:
            try:
                importlib.import_module(name)
            except BaseException:
                continue
            if thread_count() > 1:
                break
            ok.append(name)
        os.write(w, json.dumps(ok).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data or b"[]")


@contextlib.contextmanager
def captured_output():
    """Collect what fds 1 and 2 receive meanwhile (children replay it, see Guard)."""
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    files = {fd: scratch_fd(f"preload-{fd}") for fd in (1, 2)}
    output: dict[int, bytes] = {}
    for fd, file in files.items():
        os.dup2(file, fd)
    try:
        yield output
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        for fd, file in files.items():
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
            output[fd] = os.pread(file, os.fstat(file).st_size, 0)
            os.close(file)
        if sys.exc_info()[0] is not None:
            os.write(2, output[2])


def warm_caches() -> None:
    """Fill caches that every task fills the same way, which no user code can tell
    apart: the tokenizer's compiled regular expression, which Metaflow needs in
    every task to read the flow's source (``inspect.getsource`` in its graph)."""
    import io
    import tokenize

    for _ in tokenize.generate_tokens(io.StringIO("def f():\n    pass\n").readline):
        pass


def scratch_fd(name: str) -> int:
    """An anonymous read-write file (memfd where there is one)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create(name)
    import tempfile

    fd, path = tempfile.mkstemp(prefix=name)
    os.unlink(path)
    return fd


def reseed() -> None:
    """Give the task the random state of a fresh process. Python's ``random``
    reseeds itself after a fork and ``os.urandom`` asks the kernel; NumPy's global
    generator (imported here only with ``preload_flow_imports``) does neither."""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        try:
            numpy_random.seed()
        except Exception:  # noqa: BLE001 - a broken numpy fails in the task itself
            pass


def preload(flow_file: str | None) -> Probe:
    """Import Metaflow (and optionally the flow's installed imports) under a probe."""
    extra: list[str] = []
    with captured_output() as output, Probe() as probe:
        for name in PRELOAD:
            importlib.import_module(name)
        if flow_file:
            sys.path.insert(0, os.path.dirname(os.path.realpath(flow_file)))
            try:
                extra = thread_free_prefix(flow_imports(flow_file))
                for name in extra:
                    importlib.import_module(name)
            finally:
                del sys.path[0]
    probe.packages = {name.partition(".")[0] for name in (*PRELOAD, *extra)}
    probe.output = output
    flow_dependent = sorted(filter(FLOW_DEPENDENT.match, sys.modules))
    if flow_dependent:
        raise RuntimeError(
            f"preloading imported flow-dependent modules {flow_dependent}"
        )
    if thread_count() != 1:
        raise RuntimeError("preloading started threads; cannot fork safely")
    warm_caches()
    gc.freeze()  # children never scan (and copy-on-write) the preloaded objects
    return probe


def shadowable(modules) -> list[str]:
    """Top-level names a file next to the flow would have shadowed in a fresh run."""
    return sorted(
        name
        for name in modules
        if "." not in name
        and name not in sys.builtin_module_names
        and importlib.machinery.FrozenImporter.find_spec(name) is None
    )


class Server:
    """Accepts task requests, forks children, reports their pids and exit statuses."""

    def __init__(self, listener: socket.socket, probe: Probe):
        self.listener, self.probe = listener, probe
        self.pid = os.getpid()
        self.children: dict[int, socket.socket] = {}
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)

    def serve(self) -> None:
        """Loop until the worker (our stdin) goes away."""
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(self.listener, selectors.EVENT_READ, self.accept)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self.reap)
        self.selector.register(0, selectors.EVENT_READ, self.check_worker)
        self.running = True
        while self.running:
            for key, _ in self.selector.select():
                key.data()
        # The worker is gone (or closed us): so are its tasks.
        for pid in self.children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

    def check_worker(self) -> None:
        if not os.read(0, 4096):
            self.running = False

    def reap(self) -> None:
        os.read(self.wake_r, 4096)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                send(conn, {"status": status})
                conn.close()

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:  # e.g. out of file descriptors: the worker's connect fails
            return
        fds: list[int] = []
        try:
            conn.settimeout(10)
            data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
            while not data.endswith(b"\n") and len(data) < REQUEST_LIMIT:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("request truncated")
                data += chunk
            request = json.loads(data)
            if len(fds) != 2:
                raise ValueError("expected stdout and stderr pipes")
            sys.stdout.flush(), sys.stderr.flush()
            pid = os.fork()
        except Exception as exc:
            send(conn, {"error": repr(exc)})
            conn.close()
            for fd in fds:
                os.close(fd)
            return
        if pid == 0:
            try:
                self.become_task(conn, fds, request)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(70)
        self.children[pid] = conn
        for fd in fds:
            os.close(fd)

    def become_task(self, conn: socket.socket, fds: list[int], request: dict) -> None:
        """In the child: drop the server's state, become the task, never return."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        die_with_parent(self.pid)
        os.setsid()
        self.selector.close()
        self.listener.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for other in self.children.values():
            other.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((devnull, 0), (fds[0], 1), (fds[1], 2)):
            os.dup2(fd, target)
            os.close(fd)
        try:
            os.chdir(request["cwd"])
        except OSError as exc:
            send(conn, {"errno": exc.errno, "error": exc.strerror})
            os._exit(127)
        send(conn, {"pid": os.getpid()})
        conn.close()
        set_cmdline([sys.executable, *request["argv"]])
        os.environ.clear()
        os.environ.update(request["env"])
        self.probe.replay_writes()
        reseed()
        run_main(request["argv"], Guard(self.probe, request))


def set_cmdline(argv: list[str]) -> None:
    """Show ``argv`` in ``/proc/self/cmdline`` (and ``ps``), as far as it fits."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end
        data = b"\0".join(map(os.fsencode, argv))[: end - start - 1]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(data.ljust(end - start, b"\0"))
    except (OSError, IndexError, ValueError):
        pass  # cosmetic only


class Guard:
    """Keeps a fork honest until user code first imports a preloaded package.

    A flow may change the environment (or cwd) before it imports Metaflow, and a fresh
    interpreter's Metaflow would see that change; ours was imported before. If such a
    change touches anything the preload observed, the child ``execve``s a fresh
    ``python argv...`` with the task's original env and cwd (same pid and session).
    Output the flow already flushed before that point is then written twice. When
    the window closes normally, the preload's own output (e.g. import-time warnings)
    is written where the fresh interpreter's import would have written it, and what
    the imports added to ``__main__`` is added to the flow's ``__main__``.
    """

    def __init__(self, probe: Probe, request: dict):
        self.probe, self.request = probe, request
        self.active = False
        self.real = type(os.environ), builtins.__import__, os.chdir

    def install(self) -> None:
        guard, environ_cls = self, self.real[0]

        # os.environ's class at run time (os._Environ): a dynamic base mypy cannot take
        class Watched(environ_cls):  # type: ignore[valid-type, misc]
            def __setitem__(self, key, value):
                guard.changing(key, value)
                super().__setitem__(key, value)

            def __delitem__(self, key):
                guard.changing(key, None)
                super().__delitem__(key)

        def importing(name, globals=None, locals=None, fromlist=(), level=0):
            if guard.active and level == 0 and name.partition(".")[0] in probe.packages:
                guard.uninstall()
                guard.replay_imports()
            return guard.real[1](name, globals, locals, fromlist, level)

        def chdir(path):
            if guard.active and probe.cwd_read:
                guard.fresh()
            guard.real[2](path)

        probe, self.active = self.probe, True
        os.environ.__class__, builtins.__import__, os.chdir = Watched, importing, chdir

    def uninstall(self) -> None:
        self.active = False
        os.environ.__class__, builtins.__import__, os.chdir = self.real

    def replay_imports(self) -> None:
        vars(sys.modules["__main__"]).update(self.probe.main_attrs)
        output = self.probe.output
        for stream, original, data in (
            (sys.stdout, sys.__stdout__, output[1]),
            (sys.stderr, sys.__stderr__, output[2]),
        ):
            if data:
                # the server starts with both, and a TextIOWrapper's errors is a str
                if original is None or original.errors is None:
                    raise RuntimeError(f"no original stream to decode {stream} output")
                stream.write(data.decode(original.encoding, original.errors))

    def changing(self, key: str, value: str | None) -> None:
        if not self.active:
            return
        if self.probe.iterated or (
            key in self.probe.reads and self.probe.reads[key] != value
        ):
            self.fresh()

    def fresh(self) -> None:
        argv = [sys.executable, *self.request["argv"]]
        self.real[2](self.request["cwd"])
        os.execve(sys.executable, argv, self.request["env"])


def send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the worker stopped listening (e.g. it was cancelled)


def run_main(argv: list[str], guard: Guard) -> None:
    """Do what ``python argv[0] argv[1:]`` does after start-up, then ``os._exit``."""
    path, python = argv[0], sys.executable
    sys.argv = list(argv)
    sys.orig_argv = [python, *argv]
    file = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    if not sys.flags.safe_path:
        sys.path.insert(0, os.path.dirname(os.path.realpath(file)))
    importlib.invalidate_caches()
    try:
        with open(file, "rb") as f:
            source = f.read()
    except OSError as exc:
        sys.stderr.write(
            f"{python}: can't open file {file!r}: [Errno {exc.errno}] {exc.strerror}\n"
        )
        finish(2)
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=file,
        __cached__=None,
        __builtins__=builtins,
        __annotations__={},
        __loader__=importlib.machinery.SourceFileLoader("__main__", file),
    )
    server_main = sys.modules["__main__"]
    for name, module in list(sys.modules.items()):
        if module is server_main:  # "__main__" and e.g. multiprocessing's "__mp_main__"
            sys.modules[name] = main
    guard.install()
    code, by_signal = 0, None
    try:
        exec(compile(source, file, "exec"), main.__dict__)
    except SystemExit as exc:
        code = exit_code(exc)
    except BaseException as exc:
        # Like the interpreter: traceback without this frame, then exit 1 (or SIGINT).
        assert exc.__traceback__ is not None  # a caught one has (this frame at least)
        exc.__traceback__ = exc.__traceback__.tb_next
        sys.excepthook(type(exc), exc, exc.__traceback__)
        code = 1
        if isinstance(exc, KeyboardInterrupt):
            by_signal = signal.SIGINT
    guard.uninstall()
    finish(code, by_signal)


def exit_code(exc: SystemExit) -> int:
    """The exit status the interpreter derives from an uncaught ``SystemExit``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    try:
        sys.stderr.write(f"{exc.code}\n")
    except Exception:
        pass
    return 1


def finish(code: int, by_signal: int | None = None) -> None:
    """Interpreter shutdown as far as user code can see it, then ``os._exit``."""
    try:
        # join non-daemon threads, like Py_FinalizeEx (private: not in typeshed)
        threading._shutdown()  # type: ignore[attr-defined]
    except BaseException:
        traceback.print_exc()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120 if code == 0 else code
    if by_signal is not None:
        signal.signal(by_signal, signal.SIG_DFL)
        os.kill(os.getpid(), by_signal)
    os._exit(code & 0xFF)


def main() -> None:
    directory, flow_file = sys.argv[1], sys.argv[2] or None
    if not sys.flags.safe_path:
        del sys.path[0]  # `-m` put the launch cwd there; a task gets its flow's dir
    try:
        probe = preload(flow_file)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.path.join(directory, "sock"))
        listener.listen(256)
        hello = {
            "reads": probe.reads,
            "iterated": probe.iterated,
            "cwd_read": probe.cwd_read,
            "modules": shadowable(sys.modules.keys() - STARTUP_MODULES),
        }
        os.write(1, json.dumps(hello).encode() + b"\n")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        Server(listener, probe).serve()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
