"""Command line: ``mf-temporal-codegen FLOW.py -o OUT`` and ``mf-temporal-codegen run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import CodegenError

EXIT_STALE, EXIT_ERROR = 1, 2


def _generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mf-temporal-codegen",
        description="Generate a typed Temporal workflow module per Metaflow flow. "
        "`mf-temporal-codegen run FLOW.py` generates and runs a flow on an embedded "
        "Temporal dev server.",
    )
    p.add_argument("flows", nargs="+", type=Path, metavar="FLOW.py")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="OUTDIR")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff if OUTDIR is stale")
    mode.add_argument("--diff", action="store_true", help="print the diff, write nothing")
    for name in ("metadata", "datastore", "datastore-root", "environment", "event-logger", "monitor"):
        p.add_argument(f"--{name}", help=f"Metaflow --{name} for every task")
    p.add_argument("--with", dest="with_", action="append", default=[], metavar="SPEC", help="decorator added to every step (Metaflow --with)")
    p.add_argument("--config", nargs=2, action="append", default=[], metavar=("NAME", "PATH"), help="Metaflow Config NAME read from PATH when a run starts")
    p.add_argument("--config-value", nargs=2, action="append", default=[], metavar=("NAME", "JSON"), help="Metaflow Config NAME given as JSON")
    p.add_argument("--tag", action="append", default=[], help="tag every run")
    p.add_argument("--max-workers", type=int, default=16, help="tasks of one foreach running at once (default 16)")
    p.add_argument("--branch", help="@project branch")
    p.add_argument("--production", action="store_true", help="@project production branch")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _options(args: argparse.Namespace):
    from .pipeline import Options

    top, flags = [], []
    for name in ("metadata", "datastore", "datastore_root", "environment", "event_logger", "monitor"):
        value = getattr(args, name)
        if value:
            flag = f"--{name.replace('_', '-')}={value}"
            top.append(flag)
            flags.append(flag)
    for spec in sorted(args.with_):
        top.append(f"--with={spec}")
        flags.append(f"--with={spec}")
    if args.branch:
        top.append(f"--branch={args.branch}")
        flags.append(f"--branch={args.branch}")
    if args.production:
        top.append("--production")
        flags.append("--production")
    for name, value in sorted(args.config_value):
        flags += ["--config-value", name, value]
    for tag in sorted(set(args.tag)):
        flags.append(f"--tag={tag}")
    if args.max_workers != 16:
        flags.append(f"--max-workers={args.max_workers}")
    return Options(
        tuple(top),
        tuple(sorted(set(args.tag))),
        args.max_workers,
        configs=tuple(sorted((name, Path(path)) for name, path in args.config)),
        config_values=tuple(sorted((name, value) for name, value in args.config_value)),
        flags=tuple(flags),
    )


def generate_main(argv: list[str]) -> int:
    args = _generate_parser().parse_args(argv)
    from .cache import Cache
    from .pipeline import generate
    from .write import diff, stale, write_all

    if args.max_workers < 1:
        print("mf-temporal-codegen: error: --max-workers must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    if args.environment in ("conda", "pypi"):
        print(
            f"mf-temporal-codegen: error: --environment={args.environment} is not "
            "supported: workers cannot build @pypi/@conda environments yet",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        files = generate(args.flows, args.out, _options(args), Cache.from_env())
    except CodegenError as err:
        print(err, file=sys.stderr)
        return EXIT_ERROR
    if args.check or args.diff:
        text = diff(files)
        sys.stdout.write(text)
        if args.check and stale(files):
            print(f"mf-temporal-codegen: {args.out} is stale; regenerate it", file=sys.stderr)
            return EXIT_STALE
        return 0
    for path in write_all(files):
        print(f"wrote {path}")
    return 0


def run_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="mf-temporal-codegen run",
        description="Generate, start an embedded Temporal dev server and a worker, run the flow once.",
    )
    p.add_argument("flow", type=Path, metavar="FLOW.py")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--address", help="use this Temporal server instead of an embedded one")
    p.add_argument("--launcher", choices=("subprocess", "fork"), default="subprocess")
    args = p.parse_args(argv)
    import asyncio

    from .runtime.embedded import run_embedded

    try:
        return asyncio.run(
            run_embedded(args.flow, args.param, address=args.address, launcher=args.launcher)
        )
    except CodegenError as err:
        print(err, file=sys.stderr)
        return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "run":
        return run_main(argv[1:])
    return generate_main(argv)


if __name__ == "__main__":
    sys.exit(main())
