"""parse -> graph -> validate -> plan -> render -> format: flow files in, module sources out.

The heavy stages (libcst, jinja2, black) are imported only when a module is actually
generated, so a generation cache hit (``cache.py``) never loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .imports import SearchPath, search_path
from .options import Options, Target, targets

if TYPE_CHECKING:
    from .cache import Cache


def _sources(
    jobs: list[Target],
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
    from .render import render
    from .validate import validate

    errors = Collector()
    rendered: dict[str, str] = {}
    for target in jobs:
        flows, problems = read_flows(track(target.flow_file), target.display, search)
        errors.errors.extend(problems)
        for flow in flows:
            with errors.guard():
                graph = analyze(flow)
                checked = validate(graph, target.options)
                for name, text in render(planner.build(graph), checked, target).items():
                    if name in rendered:
                        raise CodegenError(
                            flow.pos,
                            f"two flows generate {name}",
                            "rename one of the flow classes",
                        )
                    rendered[name] = text
    errors.check()
    return {name: format_source(name, text) for name, text in rendered.items()}


def generate(
    flow_files: list[Path],
    outdir: Path,
    options: Options = Options(),
    cache: Cache | None = None,
) -> dict[Path, str]:
    """Formatted sources of every generated module, keyed by output path."""
    jobs = targets(flow_files, outdir, options)
    # where the flows' imports are looked for besides their own directories
    search = search_path(options.paths)
    if cache is None:
        sources = _sources(jobs, search=search)
    else:
        inputs = {
            "outdir": str(outdir),
            "targets": [t.as_json() for t in jobs],
            "import_path": search.as_json(),
        }
        sources = cache.run(inputs, lambda track: _sources(jobs, track, search))
    return dict(sorted((outdir / name, text) for name, text in sources.items()))


def generate_to_dir(
    flow_file: Path, outdir: Path, options: Options = Options()
) -> list[Path]:
    """Generate and write the modules of ``flow_file``; the workflow module paths."""
    from .write import write_all

    files = generate([flow_file], outdir, options)
    write_all(files)
    return [p for p in files if p.name.endswith("_workflow.py")]
