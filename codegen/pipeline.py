"""parse -> model -> plan -> render -> format: flow files in, module sources out.

The heavy stages (libcst, jinja2, black) are imported only when a module is actually
generated, so a generation cache hit (``cache.py``) never loads them.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable

from .contract import DEFAULT_MAX_WORKERS
from .imports import SearchPath, search_path

if TYPE_CHECKING:
    from .cache import Cache


@dataclass(frozen=True)
class Options:
    """Generation-time settings (they also appear in the regenerate command)."""

    top_level: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    max_workers: int = DEFAULT_MAX_WORKERS
    # Metaflow --config NAME PATH / --config-value NAME JSON, for every run's init
    configs: tuple[tuple[str, Path], ...] = ()
    config_values: tuple[tuple[str, str], ...] = ()
    # --path DIR: more directories for the flow's local imports (like PYTHONPATH)
    paths: tuple[Path, ...] = ()
    # the CLI flags that produced the options above (but --config), for the header
    flags: tuple[str, ...] = field(default=(), compare=False)


def project_root(outdir: Path) -> Path:
    """The nearest ancestor of ``outdir`` that holds .git or pyproject.toml."""
    outdir = outdir.resolve()
    for folder in (outdir, *outdir.parents):
        if (folder / ".git").exists() or (folder / "pyproject.toml").exists():
            return folder
    return Path.cwd().resolve()


def _rel(path: Path, start: Path) -> str:
    return PurePosixPath(Path(os.path.relpath(path.resolve(), start.resolve()))).as_posix()


def _import_dirs(options: Options, root: Path) -> list[str]:
    """The ``--path`` directories of the regenerate command, relative to ``root``:
    the given ones, then the ``PYTHONPATH`` entries inside the project (so the command
    regenerates the same bytes without that environment variable)."""
    entries = [*options.paths, *(Path(e or ".") for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e)]
    dirs: list[str] = []
    for entry in entries:
        folder = entry.resolve()
        if folder.is_dir() and folder.is_relative_to(root.resolve()):
            rel = _rel(folder, root)
            if rel not in dirs:
                dirs.append(rel)
    return dirs


def _jobs(flow_files: list[Path], outdir: Path, options: Options) -> list[dict[str, Any]]:
    """Per flow file: its display name and the ``render.Target`` fields (cheap, no parsing)."""
    root = project_root(outdir)
    out_rel = _rel(outdir, root)
    config_flags = [a for n, f in options.configs for a in ("--config", n, _rel(f, root))]
    path_flags = [a for p in _import_dirs(options, root) for a in ("--path", p)]
    command = shlex.join(
        [
            "mf-temporal-codegen", *(_rel(f, root) for f in flow_files), "-o", out_rel,
            *options.flags, *path_flags, *config_flags,
        ]
    )  # fmt: skip
    package = "" if out_rel.startswith("..") or out_rel == "." else out_rel.replace("/", ".") + "."
    return [
        {
            "display": _rel(f, Path.cwd()) if not f.is_absolute() else str(f),
            "target": {
                "source": _rel(f, outdir),
                "command": command,
                "package": package,
                "top_level": list(options.top_level),
                "tags": list(options.tags),
                "max_workers": options.max_workers,
                "init_options": list(_init_options(options, f)),
            },
        }
        for f in flow_files
    ]


def _sources(
    flow_files: list[Path],
    jobs: list[dict[str, Any]],
    track: Callable[[Path], Path] = Path,
    search: SearchPath | None = None,
) -> dict[str, str]:
    """Formatted source per generated file name; the parser opens flows via ``track``
    and looks for their imports in ``search``. Every error in every flow file is
    collected and raised together (``CodegenErrors``); nothing is formatted then."""
    from . import plan as planner
    from .errors import CodegenError, Collector
    from .fmt import format_source
    from .graph import analyze
    from .parse import read_flows
    from .render import Target, render

    errors = Collector()
    rendered: dict[str, str] = {}
    for flow_file, job in zip(flow_files, jobs):
        fields = job["target"]
        target = Target(
            **{
                **fields,
                "top_level": tuple(fields["top_level"]),
                "tags": tuple(fields["tags"]),
                "init_options": tuple(fields["init_options"]),
            }
        )
        flows, problems = read_flows(track(flow_file), job["display"], search)
        errors.errors.extend(problems)
        for flow in flows:
            with errors.guard():
                plan = planner.build(analyze(flow))
                for name, text in render(plan, target).items():
                    if name in rendered:
                        raise CodegenError(flow.pos, f"two flows generate {name}", "rename one of the flow classes")
                    rendered[name] = text
    errors.check()
    return {name: format_source(name, text) for name, text in rendered.items()}


def generate(
    flow_files: list[Path], outdir: Path, options: Options = Options(), cache: Cache | None = None
) -> dict[Path, str]:
    """Formatted sources of every generated module, keyed by output path."""
    jobs = _jobs(flow_files, outdir, options)
    # where the flows' imports are looked for besides their own directories
    search = search_path(options.paths)
    if cache is None:
        sources = _sources(flow_files, jobs, search=search)
    else:
        inputs = {
            "flows": [str(f) for f in flow_files],
            "outdir": str(outdir),
            "jobs": jobs,
            "import_path": search.as_json(),
        }
        sources = cache.run(inputs, lambda track: _sources(flow_files, jobs, track, search))
    return dict(sorted((outdir / name, text) for name, text in sources.items()))


def _init_options(options: Options, flow_file: Path) -> tuple[str, ...]:
    """``--config NAME PATH`` (PATH relative to the flow's directory, where init
    runs) and ``--config-value NAME JSON``, as options of Metaflow's init."""
    init: list[str] = []
    for name, path in options.configs:
        if not path.is_file():
            from .errors import CodegenError

            raise CodegenError(
                None,
                f"--config {name}: no such file: {path}",
                "give the path of the Config's JSON file (relative to the current directory)",
            )
        init += ["--config", name, _rel(path, flow_file.parent)]
    for name, value in options.config_values:
        init += ["--config-value", name, value]
    return tuple(init)


def generate_to_dir(flow_file: Path, outdir: Path, options: Options = Options()) -> list[Path]:
    """Generate and write the modules of ``flow_file``; the workflow module paths."""
    from .write import write_all

    files = generate([flow_file], outdir, options)
    write_all(files)
    return [p for p in files if p.name.endswith("_workflow.py")]
