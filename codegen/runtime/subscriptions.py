"""Event subscriptions on the Temporal server, and the runs events start.

**Storage.** A deployment whose flow has ``@trigger`` or ``@trigger_on_finish`` has one
subscription record on the server: the memo of a workflow execution that never runs
(workflow type :data:`SUBSCRIPTION_WORKFLOW_TYPE`, id
``mf-temporal-codegen/subscription/<deployment>``, on a task queue no worker polls,
with the ``MetaflowDeployment`` search attribute), open until ``temporal delete``
closes it, as ``plugin.records`` keeps deployments. One record per deployment, not
per event: a deployment waits for exactly one event (a run that waits for several,
which Metaflow on Argo starts once all of them arrived, is refused), so replacing it
is one atomic start (``TERMINATE_EXISTING``) and deleting it one terminate by id.
It lives apart from the deployment record because the runtime registers it too:
the generated worker at start (as it keeps the ``@schedule``), without
``temporal create``, and the runtime never imports the plugin. The record holds
what starting a run takes without the generated module (workflow type, task queue,
the workflow input's fields and types, Metaflow's parameter mapping), so any
machine that reaches the server can publish.

**Publishing** (:func:`publish`; ``mf-temporal-codegen publish``, ``TemporalEvent``):
the open subscription records are listed (a visibility query: a record saved a
moment ago may take a second to show) and each one waiting for the event gets a run,
by workflow type and task queue as ``temporal trigger`` starts one, with the
deployment's search attributes (``list-runs`` shows it), Parameters from the payload
as Metaflow maps them, and ``RunOptions.trigger`` (``current.trigger`` in every
task). Its workflow id is ``<deployment>/event/<event id>`` with Temporal's
``REJECT_DUPLICATE`` reuse policy: one run per event per deployment, however often
the event is published again or the publishing is retried (while the namespace
retains the first run).

**Announcing** (:class:`FinishAnnouncer`, the local activity of
``triggers.announce_finish``): a run that succeeded publishes
``metaflow.<its deployment>.end`` with the payload Metaflow's Argo integration
sends (its id is the end task's pathspec), so ``@trigger_on_finish`` deployments on
the same project branch start once per upstream run.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
import types
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus as Status
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from . import visibility
from .deployment import Deployment
from .triggers import (
    ANNOUNCE_ACTIVITY,
    EVENT,
    RUN,
    FinishRequest,
    FlowTrigger,
    TriggerInfo,
    Triggers,
    finish_event,
)

SUBSCRIPTION_WORKFLOW_TYPE = "mf-temporal-codegen.subscription"
SUBSCRIPTION_TASK_QUEUE = "mf-temporal-codegen.subscriptions"
SUBSCRIPTION_ID_PREFIX = "mf-temporal-codegen/subscription/"
MEMO_KEY = "subscription"
# bump when a field changes meaning; records of another schema are not used
SCHEMA = 1
# A payload travels in every task's request (so in the run's history: 1,000 tasks
# of a foreach chunk carry it 1,000 times) and environment, as on Argo: keep it
# small. Metaflow's own events carry a few short fields.
MAX_PAYLOAD_BYTES = 8 * 1024
# what sync() did
CREATED, UPDATED, UNCHANGED, REMOVED, NONE = (
    "created",
    "updated",
    "unchanged",
    "removed",
    "none",
)


class TriggerError(ValueError):
    """A trigger this runtime cannot subscribe to (the message says why)."""


class PayloadError(ValueError):
    """An event whose payload cannot start a run of one deployment."""


@dataclass(frozen=True)
class SubscribedParam:
    """A field of the workflow's input: its Python kind (``str``, ``int``, ``float``,
    ``bool``, ``json``) and whether the input requires it (no default)."""

    field: str
    kind: str
    required: bool = False


@dataclass(frozen=True)
class Subscription:
    """One deployment waiting for one event."""

    deployment: str
    flow_name: str
    # the event's name and Metaflow's trigger type (EVENT or RUN)
    event: str
    type: str
    workflow_type: str
    task_queue: str
    # whether the workflow's run takes RunOptions (the trigger, extra parameters)
    takes_options: bool
    # Metaflow Parameter name -> payload field (Metaflow's mapping)
    parameters: dict[str, str] = field(default_factory=dict)
    # the workflow input's fields
    params: tuple[SubscribedParam, ...] = ()
    project: str | None = None
    branch: str | None = None
    tags: tuple[str, ...] = ()
    workflow_timeout: int | None = None
    # @trigger_on_finish: the upstream flow
    upstream: str | None = None
    schema: int = SCHEMA

    @property
    def record_id(self) -> str:
        return record_id(self.deployment)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Subscription | None:
        """The subscription of a memo; None for one of another schema."""
        if data.get("schema") != SCHEMA:
            return None
        values = dict(data)
        values["params"] = tuple(SubscribedParam(**p) for p in data.get("params", ()))
        values["tags"] = tuple(data.get("tags", ()))
        values["parameters"] = dict(data.get("parameters", {}))
        try:
            return cls(**values)
        except TypeError:
            return None


def record_id(deployment: str) -> str:
    return SUBSCRIPTION_ID_PREFIX + deployment


# ---------------------------------------------------------------------------
# What a module and Metaflow say


def problems(described: list[dict[str, Any]]) -> list[str]:
    """Why the triggers Metaflow ``described`` cannot be subscribed to here."""
    if len(described) <= 1:
        return []
    names = ", ".join(t["name"] for t in described)
    return [
        f"the flow waits for {len(described)} events ({names}): Metaflow on Argo "
        "starts a run once every one of them arrived, which this runtime does not "
        "do yet; wait for one event (one @trigger event, or one "
        "@trigger_on_finish flow)"
    ]


def module_problems(
    module: ModuleType, described: list[dict[str, Any]], fix: str
) -> list[str]:
    """What the module's ``TRIGGERS`` says that Metaflow contradicts (a computed
    value it left to Metaflow is not compared), and :func:`problems`."""
    found = problems(described)
    ours: Triggers | None = getattr(module, "TRIGGERS", None)
    wanted: list[tuple[str | None, str, dict[str, str], FlowTrigger | None]] = []
    if ours is not None:
        wanted += [(e.name, EVENT, e.parameters, None) for e in ours.events]
        wanted += [(f.flow, RUN, {}, f) for f in ours.flows]
    if not wanted and described:
        found.append(
            f"triggers: the generated module has none, Metaflow says "
            f"{[t['name'] for t in described]}; {fix}"
        )
    elif wanted and not described:
        found.append(f"triggers: the generated module has some, Metaflow none; {fix}")
    for (name, kind, mapping, flow), theirs in zip(wanted, described):
        if name is None:
            continue  # Metaflow's to evaluate
        got = theirs["flow"] if theirs["type"] == RUN else theirs["name"]
        differs = (kind, name) != (theirs["type"], got)
        # (Metaflow's default mapping also covers Parameters a FlowMutator adds)
        differs = differs or any(
            theirs["parameters"].get(k) != v for k, v in mapping.items()
        )
        if isinstance(flow, FlowTrigger):
            differs = differs or any(
                ours_ is not None and ours_ != theirs.get(key)
                for key, ours_ in (("project", flow.project), ("branch", flow.branch))
            )
        if differs:
            found.append(
                f"triggers: the generated module waits for {kind} {name} "
                f"{mapping or ''}, Metaflow says {theirs['type']} {got} "
                f"{theirs['parameters'] or ''}; {fix}"
            )
    return found


def wanted(
    module: ModuleType,
    described: list[dict[str, Any]],
    deployment: Deployment,
    task_queue: str,
) -> Subscription | None:
    """The subscription of a generated module's deployment, from the triggers
    Metaflow ``described`` (``trigger_facts``); None without triggers."""
    found = problems(described)
    if found:
        raise TriggerError(found[0])
    if not described:
        return None
    trigger = described[0]
    run = module.WORKFLOW.run
    takes_options = len(inspect.signature(run).parameters) > 2
    seconds = getattr(module, "WORKFLOW_TIMEOUT", None)
    return Subscription(
        deployment=deployment.name,
        flow_name=module.FLOW.name,
        event=trigger["name"],
        type=trigger["type"],
        workflow_type=workflow_type(module.WORKFLOW),
        task_queue=task_queue,
        takes_options=takes_options,
        parameters=dict(sorted(trigger.get("parameters", {}).items())),
        params=input_fields(module.PARAMS),
        project=deployment.project,
        branch=deployment.branch,
        tags=tuple(sorted(set(module.FLOW.tags))),
        workflow_timeout=seconds or None,
        upstream=trigger.get("flow"),
    )


def workflow_type(cls: type) -> str:
    # (the SDK has no public accessor for a class's @workflow.defn name)
    name = workflow._Definition.must_from_class(cls).name
    assert name is not None
    return name


def input_fields(params: type) -> tuple[SubscribedParam, ...]:
    """The fields of a generated ``PARAMS`` dataclass, typed."""
    hints = typing.get_type_hints(params)
    return tuple(
        SubscribedParam(
            f.name,
            _kind(hints.get(f.name, Any)),
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(params)
    )


def _kind(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0] if len(options) == 1 else Any
    return {str: "str", int: "int", float: "float", bool: "bool"}.get(hint, "json")


def end_step(module: ModuleType) -> str:
    """The flow's end step, from the module's ``GRAPH`` (``name kind -> ...``)."""
    for line in getattr(module, "GRAPH", ()):
        name, kind = line.split()[:2]
        if kind == "end":
            return name
    return "end"


# ---------------------------------------------------------------------------
# On the server


async def save(client: Client, subscription: Subscription) -> None:
    """Store ``subscription``, replacing the deployment's earlier one."""
    what = (
        f"a run of {subscription.upstream} that succeeds"
        if subscription.type == RUN
        else f"the event {subscription.event}"
    )
    await client.start_workflow(
        SUBSCRIPTION_WORKFLOW_TYPE,
        id=subscription.record_id,
        task_queue=SUBSCRIPTION_TASK_QUEUE,
        memo={MEMO_KEY: subscription.to_json()},
        id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(visibility.DEPLOYMENT, subscription.deployment)]
        ),
        static_summary=(
            f"{subscription.deployment} waits for {subscription.event} "
            "(a subscription, not a run)"
        ),
        static_details=(
            f"Each {what} (`{subscription.event}`) starts a run of "
            f"{subscription.flow_name} (workflow type `{subscription.workflow_type}`, "
            f"task queue `{subscription.task_queue}`), once per event id. Registered "
            f"at {datetime.now(timezone.utc).isoformat(timespec='seconds')}."
        ),
    )


async def load(client: Client, deployment: str) -> Subscription | None:
    """The subscription of ``deployment``, None if it has none."""
    try:
        described = await client.get_workflow_handle(record_id(deployment)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.status != Status.RUNNING:
        return None
    memo = await described.memo()
    return Subscription.from_json(memo.get(MEMO_KEY) or {})


async def remove(client: Client, deployment: str) -> bool:
    """Close the subscription of ``deployment``; False if it had none."""
    try:
        await client.get_workflow_handle(record_id(deployment)).terminate(
            reason="subscription removed"
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def sync(
    client: Client, subscription: Subscription | None, deployment: str
) -> str:
    """Make ``deployment``'s subscription on the server ``subscription`` (None: none,
    as Argo deletes the sensor of a flow deployed without triggers); what was done."""
    current = await load(client, deployment)
    if subscription is None:
        if current is None:
            return NONE
        await remove(client, deployment)
        return REMOVED
    if current == subscription:
        return UNCHANGED
    await save(client, subscription)
    return CREATED if current is None else UPDATED


async def sync_module(
    client: Client,
    module: ModuleType,
    described: Mapping[str, Any],
    deployment: Deployment,
    task_queue: str,
) -> str:
    """:func:`sync` the subscription of a generated module's deployment with the
    triggers Metaflow ``described`` (``temporal-describe``)."""
    subscription = wanted(module, described.get("triggers", []), deployment, task_queue)
    return await sync(client, subscription, deployment.name)


async def listed(client: Client) -> list[Subscription]:
    """Every open subscription, by deployment."""
    query = (
        f"WorkflowType = '{SUBSCRIPTION_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    )
    found = []
    async for execution in client.list_workflows(query):
        memo = await execution.memo()
        subscription = Subscription.from_json(memo.get(MEMO_KEY) or {})
        if subscription is not None:
            found.append(subscription)
    return sorted(found, key=lambda s: s.deployment)


async def subscribers(client: Client, event: str) -> list[Subscription]:
    """The deployments waiting for ``event``."""
    return [s for s in await listed(client) if s.event == event]


# ---------------------------------------------------------------------------
# Publishing


@dataclass(frozen=True)
class Started:
    """What publishing an event did for one deployment waiting for it."""

    deployment: str
    flow_name: str
    workflow_id: str
    # Metaflow's run id (``temporal-<first execution run id>``), when known
    run_id: str | None = None
    # an earlier publication of this event id started it: nothing new started
    duplicate: bool = False
    # why no run started (the payload does not fit the flow's Parameters)
    error: str | None = None

    @property
    def pathspec(self) -> str | None:
        return f"{self.flow_name}/{self.run_id}" if self.run_id else None

    def __str__(self) -> str:
        if self.error:
            return f"{self.deployment}: not started: {self.error}"
        what = "already started by this event" if self.duplicate else "started"
        return f"{self.deployment}: {self.pathspec or self.workflow_id} {what}"


def event_payload(
    name: str, payload: Mapping[str, Any] | None = None, event_id: str | None = None
) -> dict[str, Any]:
    """The payload of an event, as Metaflow's ``ArgoEvent.publish`` assembles it: its
    name, id (``event_id``, else a fresh uuid), timestamp and date, then the
    given fields (which may set any of them)."""
    now = time.time()
    body = {
        "name": name,
        "id": str(uuid.uuid4()),
        "timestamp": int(now),
        "utc_date": datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d"),
        "generated-by-metaflow": True,
        **(payload or {}),
    }
    if event_id is not None:
        body["id"] = event_id
    body["id"] = str(body["id"])
    try:
        size = len(json.dumps(body))
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"the payload of {name} is not JSON: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            f"the payload of {name} has {size} bytes, more than {MAX_PAYLOAD_BYTES}: "
            "every task of a triggered run gets it; send references (paths, ids)"
        )
    return body


async def publish(
    client: Client,
    name: str,
    payload: Mapping[str, Any] | None = None,
    *,
    event_id: str | None = None,
) -> list[Started]:
    """Publish the event ``name``: start one run of every deployment waiting for it
    (none again for an event id published before). See the module."""
    body = event_payload(name, payload, event_id)
    started = []
    for subscription in await subscribers(client, name):
        try:
            started.append(await start(client, subscription, body))
        except PayloadError as exc:
            started.append(
                Started(
                    subscription.deployment,
                    subscription.flow_name,
                    run_workflow_id(subscription, body["id"]),
                    error=str(exc),
                )
            )
    return started


def run_workflow_id(subscription: Subscription, event_id: str) -> str:
    return f"{subscription.deployment}/event/{event_id}"


def arguments(
    subscription: Subscription, payload: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The workflow input and the extra parameters (by Metaflow name, as ``init``
    reads them) an event's payload gives a run: the payload fields the mapping
    names, typed as the input's fields; those absent keep their defaults."""
    fields = {p.field: p for p in subscription.params}
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, key in sorted(subscription.parameters.items()):
        if key not in payload:
            continue
        slot = name.replace("-", "_")
        if slot in fields:
            values[slot] = _typed(fields[slot].kind, payload[key], name, key)
        elif subscription.takes_options:
            value = payload[key]
            extra[name] = value if isinstance(value, str) else json.dumps(value)
    missing = [
        p.field for p in subscription.params if p.required and p.field not in values
    ]
    if missing:
        raise PayloadError(
            f"the payload has no value for the required Parameter(s) "
            f"{', '.join(missing)} of {subscription.flow_name} (mapping: "
            f"{subscription.parameters or 'none'})"
        )
    return values, extra


TRUE = frozenset({"true", "t", "1", "yes", "y", "on"})
FALSE = frozenset({"false", "f", "0", "no", "n", "off"})


def _typed(kind: str, value: Any, name: str, key: str) -> Any:
    """A payload value as the input field of kind ``kind`` takes it (a string from
    the command line as Metaflow's command line would read it)."""
    try:
        if kind == "str":
            return value if isinstance(value, str) else json.dumps(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in TRUE | FALSE:
                return text in TRUE
            raise ValueError(f"{value!r} is not a boolean")
        if kind == "int":
            if isinstance(value, bool) or isinstance(value, float):
                raise ValueError(f"{value!r} is not an integer")
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not a number")
            return float(value)
        return json.loads(value) if isinstance(value, str) else value
    except (TypeError, ValueError) as exc:
        raise PayloadError(
            f"payload field {key} for Parameter {name} ({kind}): {exc}"
        ) from None


async def start(
    client: Client, subscription: Subscription, payload: Mapping[str, Any]
) -> Started:
    """Start the run ``payload`` (an :func:`event_payload`) gives ``subscription``'s
    deployment, once: a second start for the same event id starts nothing."""
    event_id = str(payload["id"])
    values, extra = arguments(subscription, payload)
    timestamp = payload.get("timestamp")
    trigger = TriggerInfo(
        name=str(payload.get("name", subscription.event)),
        type=subscription.type,
        id=event_id,
        timestamp=timestamp if isinstance(timestamp, int) else int(time.time()),
        payload=dict(payload),
    )
    options: dict[str, Any] = {"trigger": dataclasses.asdict(trigger)}
    if extra:
        options["parameters"] = extra
    args: list[Any] = [values, options] if subscription.takes_options else [values]
    deployment = Deployment(
        subscription.deployment,
        subscription.task_queue,
        subscription.branch,
        project=subscription.project,
    )
    seconds = subscription.workflow_timeout
    shown = visibility.run_start_options(
        subscription.flow_name,
        {**values, **extra},
        deployment,
        subscription.task_queue,
        tags=subscription.tags,
        execution_timeout=timedelta(seconds=seconds) if seconds else None,
    )
    kind = "the end of" if subscription.type == RUN else "event"
    shown[
        "static_details"
    ] += f"\n**Triggered by** {kind} `{trigger.name}` (id `{event_id}`)"
    workflow_id = run_workflow_id(subscription, event_id)
    try:
        handle = await client.start_workflow(
            subscription.workflow_type,
            args=args,
            id=workflow_id,
            task_queue=subscription.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            **shown,
        )
    except WorkflowAlreadyStartedError as exc:
        first = exc.first_run_id or exc.run_id
        return Started(
            subscription.deployment,
            subscription.flow_name,
            workflow_id,
            f"temporal-{first}" if first else None,
            duplicate=True,
        )
    first = handle.first_execution_run_id or handle.result_run_id
    return Started(
        subscription.deployment,
        subscription.flow_name,
        workflow_id,
        f"temporal-{first}" if first else None,
    )


# ---------------------------------------------------------------------------
# Announcing a finished run


class FinishAnnouncer:
    """The local activity that publishes a successful run's end (see the module)."""

    def __init__(self, end_step: str = "end"):
        self.end_step = end_step

    @activity.defn(name=ANNOUNCE_ACTIVITY)
    async def announce(self, request: FinishRequest) -> list[str]:
        """Start the runs waiting for this one; one line per deployment."""
        pathspec = f"{request.flow}/{request.run_id}/{self.end_step}/{self.end_step}"
        payload: dict[str, Any] = {
            "id": pathspec,
            "pathspec": pathspec,
            "flow_name": request.flow,
            "run_id": request.run_id,
            "step_name": self.end_step,
            "task_id": self.end_step,
        }
        branch = request.branch
        if request.project and branch:
            payload.update(
                project_name=request.project,
                branch_name=branch,
                is_user_branch=branch.startswith("user."),
                is_production=branch == "prod" or branch.startswith("prod."),
                project_flow_name=request.deployment,
            )
        payload["auto-generated-by-metaflow"] = True
        # (Metaflow's ArgoEvent.add_to_payload sends every value as a string)
        started = await publish(
            activity.client(),
            finish_event(request.deployment),
            {key: str(value) for key, value in payload.items()},
            event_id=pathspec,
        )
        for line in started:
            activity.logger.info("%s", line)
        return [str(s) for s in started]
