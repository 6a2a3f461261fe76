"""Generation options: one object from the command line to the cache key.

:class:`Options` is what the user chose (the CLI builds it, ``run`` reuses it);
:class:`Target` is those options applied to one flow file and output directory (the
header's paths and regenerate command). The generation cache keys on the targets,
validation reads ``--with``/``--branch`` from them and render prints them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .contract import DEFAULT_MAX_WORKERS
from .errors import CodegenError


@dataclass(frozen=True)
class Options:
    """Generation-time settings (they also appear in the regenerate command)."""

    # Metaflow top-level options forwarded to every task (--with=..., --branch=...)
    top_level: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    max_workers: int = DEFAULT_MAX_WORKERS
    # Metaflow --config NAME PATH / --config-value NAME JSON, for every run's init
    configs: tuple[tuple[str, Path], ...] = ()
    config_values: tuple[tuple[str, str], ...] = ()
    # --path DIR: more directories for the flow's local imports (like PYTHONPATH)
    paths: tuple[Path, ...] = ()
    # --workflow-timeout S: Temporal's execution timeout of every run (None: none)
    workflow_timeout: int | None = None
    # --queue STEP=QUEUE: (step, task queue) pairs, sorted; those steps' tasks run on
    # their own queue (a worker pool started with ``worker --queue QUEUE``)
    queues: tuple[tuple[str, str], ...] = ()
    # --gpu-queue QUEUE: the queue of every step whose @resources(gpu=N) has N > 0
    # (a --queue of the step wins)
    gpu_queue: str | None = None
    # --queue QUEUE: the queue of every other step (a worker pool, e.g. a generic
    # ``mf-temporal-pool`` serving packaged flows)
    step_queue: str | None = None
    # --code-package: runs carry Metaflow's code package (``FlowRef.packaged``)
    code_package: bool = False
    # the CLI flags that produced the options above (but --config), for the header
    flags: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Target:
    """Where and how one flow file's modules are generated."""

    flow_file: Path
    # the flow file as error messages name it
    display: str
    # flow file relative to the output directory, with forward slashes
    source: str
    # the exact command that regenerates the output
    command: str
    # dotted package of the output directory ("" when unknown)
    package: str
    # top-level options for Metaflow's init only (--config, --config-value)
    init_options: tuple[str, ...]
    options: Options

    def as_json(self) -> Any:
        """The target as JSON values (for the generation cache's key)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


def targets(flow_files: list[Path], outdir: Path, options: Options) -> list[Target]:
    """The target of each flow file (cheap: nothing is parsed)."""
    root = project_root(outdir)
    out_rel = _rel(outdir, root)
    config_flags = [
        a for n, f in options.configs for a in ("--config", n, _rel(f, root))
    ]
    path_flags = [a for p in _import_dirs(options, root) for a in ("--path", p)]
    command = shlex.join(
        [
            "mf-temporal-codegen", *(_rel(f, root) for f in flow_files), "-o", out_rel,
            *options.flags, *path_flags, *config_flags,
        ]
    )  # fmt: skip
    package = (
        ""
        if out_rel.startswith("..") or out_rel == "."
        else out_rel.replace("/", ".") + "."
    )
    return [
        Target(
            flow_file=f,
            display=_rel(f, Path.cwd()) if not f.is_absolute() else str(f),
            source=_rel(f, outdir),
            command=command,
            package=package,
            init_options=_init_options(options, f),
            options=options,
        )
        for f in flow_files
    ]


def project_root(outdir: Path) -> Path:
    """The nearest ancestor of ``outdir`` that holds .git or pyproject.toml."""
    outdir = outdir.resolve()
    for folder in (outdir, *outdir.parents):
        if (folder / ".git").exists() or (folder / "pyproject.toml").exists():
            return folder
    return Path.cwd().resolve()


def _rel(path: Path, start: Path) -> str:
    return PurePosixPath(
        Path(os.path.relpath(path.resolve(), start.resolve()))
    ).as_posix()


def _import_dirs(options: Options, root: Path) -> list[str]:
    """The ``--path`` directories of the regenerate command, relative to ``root``:
    the given ones, then the ``PYTHONPATH`` entries inside the project (so the command
    regenerates the same bytes without that environment variable)."""
    entries = [
        *options.paths,
        *(
            Path(e or ".")
            for e in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if e
        ),
    ]
    dirs: list[str] = []
    for entry in entries:
        folder = entry.resolve()
        if folder.is_dir() and folder.is_relative_to(root.resolve()):
            rel = _rel(folder, root)
            if rel not in dirs:
                dirs.append(rel)
    return dirs


def _init_options(options: Options, flow_file: Path) -> tuple[str, ...]:
    """``--config NAME PATH`` (PATH relative to the flow's directory, where init
    runs) and ``--config-value NAME JSON``, as options of Metaflow's init."""
    init: list[str] = []
    for name, path in options.configs:
        if not path.is_file():
            raise CodegenError(
                None,
                f"--config {name}: no such file: {path}",
                "give the path of the Config's JSON file (relative to the current directory)",
            )
        init += ["--config", name, _rel(path, flow_file.parent)]
    for name, value in options.config_values:
        init += ["--config-value", name, value]
    return tuple(init)
