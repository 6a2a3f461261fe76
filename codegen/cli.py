"""Command line: ``mf-temporal-codegen FLOW.py -o OUT``, ``mf-temporal-codegen run``,
``mf-temporal-codegen replay-check`` and ``mf-temporal-codegen publish`` (events for
``@trigger``, see ``runtime.events``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .contract import DEFAULT_MAX_WORKERS
from .errors import CodegenError
from .options import Options

EXIT_STALE, EXIT_ERROR = 1, 2


def add_generation_options(p: argparse.ArgumentParser) -> None:
    """The options that shape generated code: shared by generating and ``run``."""
    for name in TOP_LEVEL_OPTIONS:
        p.add_argument(
            f"--{name}",
            help=f"Metaflow --{name} for every task (default: the worker's Metaflow config)",
        )
    p.add_argument(
        "--with",
        dest="with_",
        action="append",
        default=[],
        metavar="SPEC",
        help="decorator added to every step (Metaflow --with)",
    )
    p.add_argument(
        "--config",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "PATH"),
        help="Metaflow Config NAME read from PATH when a run starts",
    )
    p.add_argument(
        "--config-value",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "JSON"),
        help="Metaflow Config NAME given as JSON",
    )
    p.add_argument("--tag", action="append", default=[], help="tag every run")
    p.add_argument(
        "--max-workers",
        type=int,
        default=DEFAULT_MAX_WORKERS,
        help=f"tasks of one foreach running at once (default {DEFAULT_MAX_WORKERS})",
    )
    p.add_argument(
        "--workflow-timeout",
        type=int,
        default=None,
        metavar="S",
        help="Temporal's execution timeout of every run in seconds: a run still "
        "going then fails and its running tasks are killed (default: none)",
    )
    p.add_argument(
        "--queue",
        dest="queues",
        action="append",
        default=[],
        metavar="[STEP=]QUEUE",
        help="run STEP's tasks on the task queue QUEUE, served by workers started "
        "with `worker --queue QUEUE` (repeatable); without STEP=, every other "
        "step's tasks",
    )
    p.add_argument(
        "--gpu-queue",
        default=None,
        metavar="QUEUE",
        help="run the tasks of every step with @resources(gpu=N), N > 0, on the task "
        "queue QUEUE (a --queue of the step wins)",
    )
    p.add_argument(
        "--code-package",
        action="store_true",
        help="runs carry Metaflow's code package: the flow's worker builds it from "
        "its checkout and uploads it to the datastore (once per content hash); "
        "tasks run from it on any worker, which needs no checkout",
    )
    p.add_argument("--branch", help="@project branch")
    p.add_argument(
        "--production", action="store_true", help="@project production branch"
    )
    p.add_argument(
        "--path",
        dest="paths",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="also look for the flow's local imports in DIR (like PYTHONPATH; repeatable)",
    )


# Metaflow top-level options forwarded to every task when given.
TOP_LEVEL_OPTIONS = (
    "metadata",
    "datastore",
    "datastore-root",
    "environment",
    "event-logger",
    "monitor",
)


def _generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mf-temporal-codegen",
        description="Generate a typed Temporal workflow module per Metaflow flow. "
        "`mf-temporal-codegen run FLOW.py` generates and runs a flow on an embedded "
        "Temporal dev server; `mf-temporal-codegen replay-check OUTDIR` checks that "
        "regenerated modules still replay the flows' runs; `mf-temporal-codegen "
        "publish EVENT --payload K=V` starts the runs of flows deployed with "
        "@trigger(event=EVENT).",
    )
    p.add_argument("flows", nargs="+", type=Path, metavar="FLOW.py")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="OUTDIR")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="exit 1 with a diff if OUTDIR is stale"
    )
    mode.add_argument(
        "--diff", action="store_true", help="print the diff, write nothing"
    )
    add_generation_options(p)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def options_from_args(args: argparse.Namespace) -> Options:
    """The generator's :class:`~mf_temporal_codegen.options.Options` from parsed
    :func:`add_generation_options` arguments."""
    top, flags = [], []
    for option in TOP_LEVEL_OPTIONS:
        value = getattr(args, option.replace("-", "_"))
        if value:
            flag = f"--{option}={value}"
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
    if args.max_workers != DEFAULT_MAX_WORKERS:
        flags.append(f"--max-workers={args.max_workers}")
    if args.workflow_timeout is not None:
        flags.append(f"--workflow-timeout={args.workflow_timeout}")
    queues, step_queue = _queues(args.queues)
    for step, queue in queues:
        flags.append(f"--queue={step}={queue}")
    if step_queue:
        flags.append(f"--queue={step_queue}")
    if args.gpu_queue:
        flags.append(f"--gpu-queue={args.gpu_queue}")
    if args.code_package:
        flags.append("--code-package")
    return Options(
        tuple(top),
        tuple(sorted(set(args.tag))),
        args.max_workers,
        configs=tuple(sorted((name, Path(path)) for name, path in args.config)),
        config_values=tuple(sorted((name, value) for name, value in args.config_value)),
        paths=tuple(args.paths),
        workflow_timeout=args.workflow_timeout,
        queues=queues,
        gpu_queue=args.gpu_queue or None,
        step_queue=step_queue,
        code_package=args.code_package,
        flags=tuple(flags),
    )


def _queues(given: list[str]) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """``--queue STEP=QUEUE`` values as sorted (step, queue) pairs, and the queue
    of ``--queue QUEUE`` (the last one given wins); :func:`check_generation_options`
    checked their form."""
    pairs: dict[str, str] = {}
    every = None
    for value in given:
        step, eq, queue = value.partition("=")
        if eq:
            pairs[step] = queue
        else:
            every = value
    return tuple(sorted(pairs.items())), every


def _bad_queue(args: argparse.Namespace) -> str | None:
    """The first ``--queue`` value that is neither ``STEP=QUEUE`` nor ``QUEUE``."""
    for value in args.queues:
        step, eq, queue = value.partition("=")
        if (
            value != value.strip()
            or not value
            or (eq and (not step.strip() or not queue.strip()))
        ):
            return value
    return None


def check_generation_options(args: argparse.Namespace) -> str | None:
    """The error message for generation options no flow can use, else None."""
    if args.max_workers < 1:
        return "--max-workers must be at least 1"
    if args.workflow_timeout is not None and args.workflow_timeout < 1:
        return "--workflow-timeout must be at least 1 (seconds)"
    bad = _bad_queue(args)
    if bad is not None:
        return f"--queue {bad!r} is not STEP=QUEUE or QUEUE"
    if args.gpu_queue is not None and not args.gpu_queue.strip():
        return "--gpu-queue needs a task queue name"
    if args.environment in ("conda", "pypi"):
        return (
            f"--environment={args.environment} is not supported: workers cannot "
            "build @pypi/@conda environments yet"
        )
    return None


def _option_hint(args: argparse.Namespace) -> str:
    """The hint for :func:`check_generation_options`' message."""
    if args.max_workers < 1:
        return (
            f"pass --max-workers N with N >= 1 (the default is {DEFAULT_MAX_WORKERS})"
        )
    if args.workflow_timeout is not None and args.workflow_timeout < 1:
        return "pass --workflow-timeout S with S >= 1, or leave it out for no limit"
    if _bad_queue(args) is not None or (
        args.gpu_queue is not None and not args.gpu_queue.strip()
    ):
        return (
            "name a step and a task queue, e.g. --queue train=gpu (repeatable), a "
            "queue for every step, e.g. --queue pool, or --gpu-queue gpu"
        )
    return "install the packages where the worker runs and leave out --environment (or use --environment=local)"


def generate_main(argv: list[str]) -> int:
    args = _generate_parser().parse_args(argv)
    from .cache import Cache
    from .pipeline import generate
    from .write import diff, stale, write_all

    problem = check_generation_options(args)
    if problem:
        print(
            f"mf-temporal-codegen: error: {problem}\n  hint: {_option_hint(args)}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if args.out.exists() and not args.out.is_dir():
        print(
            f"mf-temporal-codegen: error: -o {args.out}: not a directory\n"
            "  hint: name the directory the generated modules go to",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        files = generate(
            args.flows, args.out, options_from_args(args), Cache.from_env()
        )
    except CodegenError as err:
        print(err, file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.check or args.diff:
            text = diff(files)
            sys.stdout.write(text)
            if args.check and stale(files):
                print(
                    f"mf-temporal-codegen: {args.out} is stale; regenerate it",
                    file=sys.stderr,
                )
                return EXIT_STALE
            return 0
        for path in write_all(files):
            print(f"wrote {path}")
    except (OSError, UnicodeDecodeError) as exc:  # the output directory, not the flow
        problem = (
            f"{exc.filename}: {exc.strerror}"
            if isinstance(exc, OSError) and exc.filename
            else str(exc)
        )
        print(
            f"mf-temporal-codegen: error: cannot update {args.out}: {problem}\n"
            f"  hint: check that {args.out} can be created and written (and holds only UTF-8 files)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0


def run_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="mf-temporal-codegen run",
        description="Generate, start an embedded Temporal dev server and a worker, run the flow once.",
    )
    p.add_argument("flow", type=Path, metavar="FLOW.py")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--address", help="use this Temporal server instead of an embedded one"
    )
    p.add_argument(
        "--launcher",
        choices=("default", "fork", "subprocess"),
        default="default",
        help="fork: tasks fork from a pre-warmed interpreter; subprocess: a fresh python "
        "per task (the reference); default: fork where it works, else subprocess",
    )
    add_generation_options(p)
    args = p.parse_args(argv)
    problem = check_generation_options(args)
    if problem:
        print(f"mf-temporal-codegen run: error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    import asyncio

    from .run_command import run_embedded

    try:
        return asyncio.run(
            run_embedded(
                args.flow,
                args.param,
                address=args.address,
                launcher=args.launcher,
                options=options_from_args(args),
            )
        )
    except CodegenError as err:
        print(err, file=sys.stderr)
        return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    console = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "run":
        return run_main(argv[1:])
    if argv and argv[0] == "publish":
        from .runtime.events import main as publish_main

        return publish_main(argv[1:], exit_process=console)
    if argv and argv[0] == "replay-check":
        from .replay_check import main as replay_check_main

        return replay_check_main(argv[1:])
    return generate_main(argv)


if __name__ == "__main__":
    sys.exit(main())
