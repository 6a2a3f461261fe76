"""On-disk generation cache: an unchanged flow regenerates without libcst, jinja2 or black.

An entry stores the generated sources together with everything they were computed
from, and a hit re-checks all of it, so it can only return what a fresh run would:

- the generator: its version and the bytes of its own modules and templates;
- the environment: the Python version and every installed distribution (name, version,
  install time), so upgrading black, libcst or jinja2 invalidates it;
- the inputs: flow paths, output dir, working dir, the header command and options;
- the file system as the parser saw it: each file it read (sha256 of the bytes), each
  path it probed (exists/is_file/is_dir) and each path it resolved. The parser reaches
  files only through the ``Path`` it is given (``track``), so these are recorded as it
  runs; a run that queried the file system any other way through it is not stored.

Only successful runs are stored (an error propagates before ``store``). Entries are
JSON, one per invocation shape, written atomically; unreadable ones count as misses.
Location: ``$MF_TEMPORAL_CODEGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/mf-temporal-codegen``
(default ``~/.cache``); ``MF_TEMPORAL_CODEGEN_NO_CACHE=1`` turns caching off.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Self

FORMAT = 1
NAME = "mf-temporal-codegen"


def folder() -> Path | None:
    """The cache directory, or None when caching is turned off."""
    if os.environ.get("MF_TEMPORAL_CODEGEN_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = os.environ.get("MF_TEMPORAL_CODEGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec says to ignore relative values
        return Path(xdg) / NAME
    try:
        return Path.home() / ".cache" / NAME
    except RuntimeError:  # no home directory
        return None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _generator_files() -> list[Path]:
    """The generator's own modules and templates."""
    templates = Path(str(resources.files("mf_temporal_codegen.templates")))
    found = []
    for where, suffix in ((Path(__file__).parent, ".py"), (templates, ".j2")):
        found += sorted(
            where / e.name for e in os.scandir(where) if e.name.endswith(suffix)
        )
    return found


def _generator() -> str:
    """sha256 over the names and bytes of the generator's files."""
    h = hashlib.sha256()
    for path in _generator_files():
        h.update(
            f"{path.parent.name}/{path.name}\0{_digest(path.read_bytes())}\0".encode()
        )
    return h.hexdigest()


def _distributions() -> list[str]:
    """Every installed distribution on sys.path: dist-info name (name-version) and mtime."""
    found = []
    for entry in sys.path[1:]:  # [0] is the script's directory, not an install location
        try:
            with os.scandir(entry) as it:
                for e in it:
                    if e.name.endswith((".dist-info", ".egg-info")):
                        found.append(f"{entry}/{e.name}@{e.stat().st_mtime_ns}")
        except OSError:
            continue
    return sorted(found)


def environment() -> dict[str, Any]:
    """What the output depends on besides its inputs and the files the parser reads."""
    from . import __version__

    return {
        "version": __version__,
        "generator": _generator(),
        "python": sys.version,
        "distributions": _distributions(),
    }


class _Recorder:
    """Collects the parser's file system queries made through tracked paths."""

    def __init__(self) -> None:
        self.checks: dict[tuple[str, str], Any] = {}
        self.complete = True
        self.path_type = type("TrackedPath", (_TrackedPath,), {"_recorder": self})

    def track(self, path: Path) -> Path:
        return self.path_type(path)

    def note(self, kind: str, path: Path, value: Any) -> None:
        if self.checks.setdefault((kind, str(path)), value) != value:
            self.complete = False  # the file system changed during the run


def _read(path: Path) -> str | None:
    try:
        return _digest(path.read_bytes())
    except OSError:
        return None


# The current answer to each kind of recorded query (what a fresh run would see).
QUERIES: dict[str, Callable[[Path], Any]] = {
    "read": _read,
    "resolve": lambda p: str(p.resolve()),
    "exists": Path.exists,
    "is_file": Path.is_file,
    "is_dir": Path.is_dir,
}


if TYPE_CHECKING:
    _ConcretePath = Path
else:  # PosixPath or WindowsPath: Path itself cannot be subclassed before 3.12
    _ConcretePath = type(Path())


class _TrackedPath(_ConcretePath):
    """A Path whose file system queries are recorded; derived paths stay tracked."""

    _recorder: _Recorder

    def resolve(self, strict: bool = False) -> Self:
        resolved = Path(self).resolve(strict)
        if not strict:
            self._recorder.note("resolve", self, str(resolved))
        else:
            self._recorder.complete = False
        return type(self)(resolved)

    def exists(self, *args: Any, **kwargs: Any) -> bool:
        return self._probe("exists", args, kwargs)

    def is_file(self, *args: Any, **kwargs: Any) -> bool:
        return self._probe("is_file", args, kwargs)

    def is_dir(self, *args: Any, **kwargs: Any) -> bool:
        return self._probe("is_dir", args, kwargs)

    def _probe(self, kind: str, args: tuple, kwargs: dict) -> bool:
        value = getattr(Path(self), kind)(*args, **kwargs)
        if args or kwargs:
            self._recorder.complete = False
        else:
            self._recorder.note(kind, self, value)
        return value

    def open(  # type: ignore[override]  # one signature for Path.open's overloads
        self,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> IO[Any]:
        if mode not in ("r", "rt", "rb"):
            self._recorder.complete = False
            return Path(self).open(mode, buffering, encoding, errors, newline)
        data = Path(self).read_bytes()
        self._recorder.note("read", self, _digest(data))
        if "b" in mode:
            return io.BytesIO(data)
        # decoded exactly as open() decodes the file: same codec, errors and newlines
        return io.TextIOWrapper(io.BytesIO(data), encoding, errors, newline)

    def read_bytes(self) -> bytes:
        with self.open("rb") as f:
            return f.read()

    def read_text(
        self,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> str:
        with self.open(
            "r", encoding=io.text_encoding(encoding), errors=errors, newline=newline
        ) as f:
            return f.read()


def _untracked(name: str) -> Callable[..., Any]:
    def method(self: _TrackedPath, *args: Any, **kwargs: Any) -> Any:
        self._recorder.complete = False
        return getattr(Path(self), name)(*args, **kwargs)

    method.__name__ = name
    return method


# Every other file system access makes the run uncacheable (it is still correct).
for _name in (
    "stat", "lstat", "iterdir", "glob", "rglob", "walk", "expanduser", "owner", "group",
    "readlink", "samefile", "is_symlink", "is_mount", "is_socket", "is_fifo",
    "is_block_device", "is_char_device", "is_junction", "touch", "mkdir", "chmod",
    "lchmod", "unlink", "rmdir", "rename", "replace", "symlink_to", "hardlink_to",
    "write_bytes", "write_text",
):  # fmt: skip
    if hasattr(Path, _name):
        setattr(_TrackedPath, _name, _untracked(_name))


def _file_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and name.endswith(".py")
        and os.path.basename(name) == name
    )


class Cache:
    """Generated sources stored under ``root``, one JSON entry per invocation shape."""

    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def from_env(cls) -> Cache | None:
        root = folder()
        return None if root is None else cls(root)

    def run(
        self,
        inputs: dict[str, Any],
        produce: Callable[[Callable[[Path], Path]], dict[str, str]],
    ) -> dict[str, str]:
        """``produce(track)``'s result for ``inputs``, from the cache when still valid."""
        inputs = {**inputs, "cwd": os.getcwd()}
        env = environment()
        entry_file = self._entry_file(inputs)
        hit = self._lookup(entry_file, inputs, env)
        if hit is not None:
            return hit
        recorder = _Recorder()
        files = produce(recorder.track)
        if recorder.complete and environment() == env:
            checks = sorted(
                [kind, path, value] for (kind, path), value in recorder.checks.items()
            )
            entry = {
                "format": FORMAT,
                "environment": env,
                "inputs": inputs,
                "checks": checks,
            }
            self._store(entry_file, {**entry, "files": sorted(files.items())})
        return files

    def _entry_file(self, inputs: dict[str, Any]) -> Path:
        key = json.dumps([FORMAT, sys.prefix, inputs], sort_keys=True)
        return self.root / "generated" / f"{_digest(key.encode())[:32]}.json"

    @staticmethod
    def _lookup(
        entry_file: Path, inputs: dict[str, Any], env: dict[str, Any]
    ) -> dict[str, str] | None:
        try:
            entry = json.loads(entry_file.read_bytes())
            if (
                entry["format"] != FORMAT
                or entry["environment"] != env
                or entry["inputs"] != json.loads(json.dumps(inputs))
                or any(
                    QUERIES[kind](Path(path)) != value
                    for kind, path, value in entry["checks"]
                )
            ):
                return None
            files = {name: text for name, text in entry["files"]}
            if all(isinstance(t, str) and _file_name(n) for n, t in files.items()):
                return files
        except Exception:  # missing, corrupt, or a check that fails to run: a miss
            pass
        return None

    @staticmethod
    def _store(entry_file: Path, entry: dict[str, Any]) -> None:
        """Write ``entry`` atomically (temp file + rename); the cache is best effort."""
        import tempfile

        try:
            entry_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=entry_file.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(json.dumps(entry, sort_keys=True).encode())
                os.replace(tmp, entry_file)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass


def template_cache(jinja2: Any) -> Any:
    """A jinja2 bytecode cache in the cache directory (None when caching is off)."""
    root = folder()
    if root is None:
        return None
    where = (
        root
        / f"jinja2-{jinja2.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
    )

    class TemplateCache(jinja2.FileSystemBytecodeCache):
        """Best effort: an unreadable or unwritable cache only costs a compile."""

        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            try:
                os.makedirs(self.directory, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError:
                pass

    return TemplateCache(str(where))
