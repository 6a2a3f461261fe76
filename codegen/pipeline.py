"""parse -> model -> plan -> render -> format: flow files in, module sources out."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import plan as planner
from .fmt import format_source
from .graph import analyze
from .parse import load_flows
from .render import Target, render


@dataclass(frozen=True)
class Options:
    """Generation-time settings (they also appear in the regenerate command)."""

    top_level: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    max_workers: int = 16
    # Metaflow --config NAME PATH / --config-value NAME JSON, for every run's init
    configs: tuple[tuple[str, Path], ...] = ()
    config_values: tuple[tuple[str, str], ...] = ()
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


def generate(flow_files: list[Path], outdir: Path, options: Options = Options()) -> dict[Path, str]:
    """Formatted sources of every generated module, keyed by output path."""
    root = project_root(outdir)
    out_rel = _rel(outdir, root)
    config_flags = [a for n, f in options.configs for a in ("--config", n, _rel(f, root))]
    command = shlex.join(
        ["mf-temporal-codegen", *(_rel(f, root) for f in flow_files), "-o", out_rel, *options.flags, *config_flags]
    )
    package = "" if out_rel.startswith("..") or out_rel == "." else out_rel.replace("/", ".") + "."
    results: dict[Path, str] = {}
    for flow_file in flow_files:
        display = _rel(flow_file, Path.cwd()) if not flow_file.is_absolute() else str(flow_file)
        target = Target(
            source=_rel(flow_file, outdir),
            command=command,
            package=package,
            top_level=options.top_level,
            tags=options.tags,
            max_workers=options.max_workers,
            init_options=_init_options(options, flow_file),
        )
        for flow in load_flows(flow_file, display):
            plan = planner.build(analyze(flow))
            for name, text in render(plan, target).items():
                path = outdir / name
                if path in results:
                    from .errors import CodegenError

                    raise CodegenError(flow.pos, f"two flows generate {name}", "rename one of the flow classes")
                results[path] = format_source(name, text)
    return dict(sorted(results.items()))


def _init_options(options: Options, flow_file: Path) -> tuple[str, ...]:
    """``--config NAME PATH`` (PATH relative to the flow's directory, where init
    runs) and ``--config-value NAME JSON``, as options of Metaflow's init."""
    init: list[str] = []
    for name, path in options.configs:
        if not path.is_file():
            from .errors import CodegenError

            raise CodegenError(None, f"--config {name}: no such file: {path}")
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
