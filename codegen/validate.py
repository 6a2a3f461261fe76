"""The validation stage (graph -> validate -> plan): Metaflow's rules on the flow and
the generation options, and the typed facts they decide.

Each step's orchestration facts (retries, ``@catch``, ``@timeout``, ``@environment``,
from its decorators or ``--with``) are fixed here when the source spells them out,
or listed as :class:`Evaluated` when only Metaflow can compute them (a ``Deferred``
argument, a ``StepMutator``, a ``FlowMutator``). The ``@project`` branch follows from
the decorator and ``--branch``/``--production``. Every error of every step is
reported; what comes after (plan, render) cannot fail on the user's flow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import model as m
from .contract import CATCH_ERROR_RETRIES, MAX_ATTEMPTS, RETRY_MINUTES, RETRY_TIMES
from .errors import CodegenError, Collector, Pos
from .flow_decorators import check_name
from .graph import Graph
from .options import Options

# --with name:key=value,... given at generation time, by decorator name
Withs = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Evaluated:
    """A step fact Metaflow evaluates when each run starts, as the source writes it."""

    # e.g. '@retry(times=config_expr("train.retries"))' or '@my_mutator'
    written: str
    pos: Pos
    # what it means, when the decorator is not the fact itself
    note: str = ""


@dataclass(frozen=True)
class StepOptions:
    """What the generated ``StepSpec`` states about one step."""

    foreach: bool = False
    switch: bool = False
    # facts fixed when generating (0 / None: none); ignored when from_metaflow
    retries: int = 0
    error_retries: int = 0
    retry_delay_seconds: int = 0
    timeout_seconds: int | None = None
    env: dict[str, str] | None = None
    # the step's facts that only Metaflow knows, one comment line each
    evaluated: tuple[Evaluated, ...] = ()
    # every fact is taken from Metaflow when each run starts (evaluated, or a FlowMutator)
    from_metaflow: bool = False
    # the step's @compensate method
    compensation: str | None = None
    # the task queue its tasks run on (--queue, --gpu-queue); None: the flow's
    task_queue: str | None = None


@dataclass(frozen=True)
class Branch:
    """A flow's project branch at generation time (Metaflow's ``format_name``)."""

    # Deferred: Metaflow evaluates the name when the worker starts
    project: str | m.Deferred
    # "test.x", "prod", "prod.x"; None for the user branch, resolved by the worker
    branch: str | None

    def flow_name(self, flow: str) -> str | None:
        """Metaflow's project flow name, ``<project>.<branch>.<Flow>``; None when the
        worker resolves it (a user branch, or a name only Metaflow can compute)."""
        if self.branch is None or isinstance(self.project, m.Deferred):
            return None
        return f"{self.project}.{self.branch}.{flow}"


@dataclass(frozen=True)
class Checked:
    """A flow the rules accept: its branch and, by step name, its step options."""

    branch: Branch | None
    steps: dict[str, StepOptions]


def validate(graph: Graph, options: Options) -> Checked:
    """Check ``graph``'s flow against Metaflow's rules under ``options``; raises
    :class:`~.errors.CodegenErrors` with every error found."""
    flow = graph.flow
    errors = Collector()
    withs = _with_specs(options.top_level)
    steps: dict[str, StepOptions] = {}
    for name in graph.order:
        with errors.guard():
            step = graph[name].step
            queue = _task_queue(step, options, withs)
            steps[name] = replace(_step_options(step, flow, withs), task_queue=queue)
    with errors.guard():
        _check_queues(flow, options)
    project: Branch | None = None
    with errors.guard():
        project = branch(flow, options.top_level)
    errors.check()
    return Checked(project, steps)


def _with_specs(top_level: tuple[str, ...]) -> Withs:
    """Decorators given with ``--with name:key=value,...`` at generation time."""
    specs = {}
    for option in top_level:
        if option.startswith("--with="):
            name, _, attrs = option[len("--with=") :].partition(":")
            pairs = (a.partition("=") for a in attrs.split(",") if a)
            specs[name] = {k.strip(): v.strip() for k, _, v in pairs}
    return specs


def _number(deco: m.Decorator, key: str, default: float) -> float | m.Deferred:
    """A number argument of a Metaflow decorator; Deferred when only Metaflow knows it."""
    value = deco.arg(key, default)
    if isinstance(value, m.Deferred):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CodegenError(
            deco.pos_of(key),
            f"@{deco.name}({key}=...) must be a number, got `{value!r}`",
            "Metaflow rejects it too; give a number (or a config_expr)",
        ) from None


def _decorator_or_with(step: m.Step, name: str, withs: Withs) -> m.Decorator | None:
    """The step's own Metaflow decorator ``name``, else the one ``--with`` adds."""
    deco = step.decorator(name)
    if deco is not None and deco.origin == "metaflow":
        return deco
    if name in withs:
        return m.Decorator(
            name, "metaflow", tuple(sorted(withs[name].items())), step.pos
        )
    return None


def _evaluated(deco: m.Decorator, key: str, pos: Pos) -> Evaluated:
    """``@name(key=<source>)`` at ``pos``: an argument Metaflow evaluates."""
    value = deco.arg(key)
    code = (
        value.code
        if isinstance(value, m.Deferred)
        else deco.code_of(key) or repr(value)
    )
    return Evaluated(f"@{deco.name}({key}={code})", pos)


def _check_queues(flow: m.Flow, options: Options) -> None:
    """Every ``--queue STEP=QUEUE`` names a step of ``flow``."""
    names = {s.name for s in flow.steps}
    for step, queue in options.queues:
        if step not in names:
            raise CodegenError(
                flow.pos,
                f"--queue {step}={queue}: flow {flow.name} has no step {step}",
                "name one of its steps: " + ", ".join(sorted(names)),
            )


def _task_queue(step: m.Step, options: Options, withs: Withs) -> str | None:
    """The task queue ``step``'s tasks run on: its ``--queue``, else ``--gpu-queue``
    when its ``@resources(gpu=N)`` (or ``--with resources:gpu=N``) has N > 0, else
    the ``--queue QUEUE`` of every step, else None (the flow's queue)."""
    given = dict(options.queues).get(step.name)
    if given is not None or options.gpu_queue is None:
        return given or options.step_queue
    resources = _decorator_or_with(step, "resources", withs)
    if resources is None or resources.arg("gpu") is None:
        return options.step_queue
    gpu = _number(resources, "gpu", 0)
    if isinstance(gpu, m.Deferred):
        raise CodegenError(
            resources.pos_of("gpu"),
            f"--gpu-queue {options.gpu_queue}: step {step.name}'s @resources(gpu="
            f"{gpu.code}) is computed, so the generator cannot tell whether it "
            "asks for GPUs",
            f"write the number in the source (a literal or a module constant), or "
            f"route the step explicitly with --queue {step.name}={options.gpu_queue}",
        )
    return options.gpu_queue if gpu > 0 else options.step_queue


def _step_options(step: m.Step, flow: m.Flow, withs: Withs) -> StepOptions:
    evaluated: list[Evaluated] = []
    retries, error_retries, delay = _retries(step, withs, evaluated)
    timeout = _timeout(step, withs, evaluated)
    env = _environment(step, evaluated)
    own = [d for d in step.decorators if d.mutator]
    if own:
        names = ", ".join(f"@{d.name}" for d in own)
        evaluated.append(
            Evaluated(names, own[0].pos, " may change its decorators (a StepMutator)")
        )
    compensation = flow.compensation(step.name)
    return StepOptions(
        foreach=step.kind == m.FOREACH,
        switch=step.kind == m.SWITCH,
        retries=retries,
        error_retries=error_retries,
        retry_delay_seconds=delay,
        timeout_seconds=timeout,
        env=env,
        evaluated=tuple(evaluated),
        # a FlowMutator may change any step's facts: the module says so once, at the top
        from_metaflow=bool(evaluated or flow.mutators),
        compensation=None if compensation is None else compensation.handler,
    )


def _retries(
    step: m.Step, withs: Withs, evaluated: list[Evaluated]
) -> tuple[int, int, int]:
    """(retries, ``@catch`` error retries, seconds between them) of ``step``; zeros
    when Metaflow evaluates them (added to ``evaluated``)."""
    retry = _decorator_or_with(step, "retry", withs)
    error_retries = (
        CATCH_ERROR_RETRIES if _decorator_or_with(step, "catch", withs) else 0
    )
    if retry is None:
        return 0, error_retries, int(RETRY_MINUTES * 60) if error_retries else 0
    retries = _number(retry, "times", RETRY_TIMES)
    minutes = _number(retry, "minutes_between_retries", RETRY_MINUTES)
    for key, value in (("times", retries), ("minutes_between_retries", minutes)):
        if isinstance(value, m.Deferred):
            evaluated.append(_evaluated(retry, key, value.pos))
    if not isinstance(retries, m.Deferred) and retries + 2 > MAX_ATTEMPTS:
        raise CodegenError(
            retry.pos,
            f"@retry(times={int(retries)}) asks for more attempts than Metaflow allows",
            f"the maximum number of retries is @retry(times={MAX_ATTEMPTS - 2}) "
            f"(Metaflow's MAX_ATTEMPTS is {MAX_ATTEMPTS})",
        )
    if isinstance(retries, m.Deferred) or isinstance(minutes, m.Deferred):
        return 0, 0, 0
    delay = int(minutes * 60) if retries or error_retries else 0
    return int(retries), error_retries, delay


def _timeout(step: m.Step, withs: Withs, evaluated: list[Evaluated]) -> int | None:
    """``@timeout``'s seconds (None without one); its parts Metaflow evaluates are
    added to ``evaluated``."""
    timeout = _decorator_or_with(step, "timeout", withs)
    if timeout is None:
        return None
    seconds = 0
    for unit, factor in (("seconds", 1), ("minutes", 60), ("hours", 3600)):
        value = _number(timeout, unit, 0)
        if isinstance(value, m.Deferred):
            evaluated.append(_evaluated(timeout, unit, value.pos))
        else:
            seconds += int(value) * factor
    return seconds


def _environment(step: m.Step, evaluated: list[Evaluated]) -> dict[str, str] | None:
    """``@environment(vars=...)`` when known (None without one); else it is added to
    ``evaluated``."""
    environment = step.decorator("environment")
    if environment is None or environment.origin != "metaflow":
        return None
    env = environment.arg("vars", {}) or {}
    if not isinstance(env, dict) or any(
        isinstance(v, m.Deferred) for v in env.values()
    ):
        evaluated.append(_evaluated(environment, "vars", environment.pos_of("vars")))
        return None
    return {str(k): str(v) for k, v in env.items()}


def branch(flow: m.Flow, top_level: tuple[str, ...]) -> Branch | None:
    """The branch of ``flow`` given the forwarded ``--branch``/``--production`` options."""
    cli_branch = next(
        (o.split("=", 1)[1] for o in reversed(top_level) if o.startswith("--branch=")),
        None,
    )
    cli_production = "--production" in top_level
    p = flow.project
    if p is None:
        if cli_branch is not None or cli_production:
            flag = "--production" if cli_production else "--branch"
            raise CodegenError(
                flow.pos,
                f"{flag} is given but flow {flow.name} has no @project",
                "add @project(name=...) to the flow or drop the option (Metaflow has "
                f"no {flag} option without @project)",
            )
        return None
    # Metaflow: an option given both ways must agree (ProjectDecorator.flow_init).
    for key, cli, attr, default in (
        ("branch", cli_branch, p.branch, None),
        ("production", cli_production, p.production, False),
    ):
        if attr is not None and cli != default and attr != cli:
            raise CodegenError(
                p.pos,
                f"{key} is given both as --{key} and as @project({key}=)",
                "Metaflow refuses different values; drop one of them",
            )
    given = p.branch if p.branch is not None else cli_branch
    production = p.production if p.production is not None else cli_production
    if given is not None:
        if p.branch is None:
            check_name(p.pos, given, "The --branch value")
        prefix = "prod" if production else "test"
        return Branch(p.name, f"{prefix}.{given}")
    return Branch(p.name, "prod" if production else None)
