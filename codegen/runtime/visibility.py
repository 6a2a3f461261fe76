"""What Temporal shows of a run: the custom search attributes every run and its child
workflows carry (their names are in ``contract``), registering them in a namespace,
and the summary and details of a run that Temporal's UI and ``temporal workflow
describe`` show.

Starting side (worker, trigger, schedules, the ``temporal`` CLI group):
:func:`search_attributes`, :func:`start_summary`, :func:`start_details`,
:func:`ensure_search_attributes`. Workflow side (deterministic, no I/O):
:func:`upsert_run`, :func:`inherited`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from ..contract import (
    SEARCH_ATTRIBUTE_BRANCH,
    SEARCH_ATTRIBUTE_DEPLOYMENT,
    SEARCH_ATTRIBUTE_FLOW,
    SEARCH_ATTRIBUTE_PROJECT,
    SEARCH_ATTRIBUTE_RUN_ID,
    SEARCH_ATTRIBUTE_TAGS,
    SEARCH_ATTRIBUTE_USER,
    SEARCH_ATTRIBUTES,
    VISIBILITY_PATCH,
)
from .deployment import Deployment, metaflow_user

if TYPE_CHECKING:
    from temporalio.client import Client

FLOW = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_FLOW)
DEPLOYMENT = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_DEPLOYMENT)
RUN_ID = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_RUN_ID)
USER = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_USER)
PROJECT = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_PROJECT)
BRANCH = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_BRANCH)
TAGS = SearchAttributeKey.for_keyword_list(SEARCH_ATTRIBUTE_TAGS)
# every key of contract.SEARCH_ATTRIBUTES, in its order
KEYS = (FLOW, DEPLOYMENT, RUN_ID, USER, PROJECT, BRANCH, TAGS)

# Temporal shows a summary on one line; parameters beyond this are cut ("...").
SUMMARY_CHARS = 200
# A parameter value in the details is cut past this many characters.
DETAIL_VALUE_CHARS = 200


def search_attributes(
    flow: str,
    *,
    deployment: str | None = None,
    run_id: str | None = None,
    user: str | None = None,
    project: str | None = None,
    branch: str | None = None,
    tags: Sequence[str] = (),
) -> TypedSearchAttributes:
    """The search attributes of a run of ``flow`` (those given; a run's id is set by
    the workflow itself, see :func:`upsert_run`)."""
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(FLOW, flow)]
    for key, value in (
        (DEPLOYMENT, deployment),
        (RUN_ID, run_id),
        (USER, user),
        (PROJECT, project),
        (BRANCH, branch),
    ):
        if value:
            pairs.append(SearchAttributePair(key, value))
    if tags:
        pairs.append(SearchAttributePair(TAGS, sorted(set(tags))))
    return TypedSearchAttributes(pairs)


def upsert_run(flow: str, run_id: str, tags: Sequence[str]) -> None:
    """In the workflow: set the flow, the Metaflow run id (known only now) and the run's
    tags on this run, whoever started it. Runs that started before this existed
    replay without it (``workflow.patched``)."""
    if not workflow.patched(VISIBILITY_PATCH):
        return
    updates: list[SearchAttributeUpdate[Any]] = [
        FLOW.value_set(flow),
        RUN_ID.value_set(run_id),
    ]
    if tags:
        updates.append(TAGS.value_set(sorted(set(tags))))
    workflow.upsert_search_attributes(updates)


def inherited() -> TypedSearchAttributes:
    """In the workflow: this run's Metaflow search attributes, for a child workflow."""
    current = workflow.info().typed_search_attributes
    return TypedSearchAttributes(
        [pair for pair in current if pair.key.name in SEARCH_ATTRIBUTES]
    )


def start_options(
    module: ModuleType,
    params: Any,
    deployment: Deployment,
    task_queue: str,
    *,
    tags: Sequence[str] = (),
    user: str | None = None,
    execution_timeout: timedelta | None = None,
) -> dict[str, Any]:
    """What a run of generated ``module`` starts with for Temporal to show and
    enforce (:func:`run_start_options`); ``execution_timeout`` defaults to the
    module's ``WORKFLOW_TIMEOUT`` (``--workflow-timeout``). ``worker.start_workflow``
    and the schedules' action use them."""
    if execution_timeout is None:
        seconds = getattr(module, "WORKFLOW_TIMEOUT", None)
        execution_timeout = timedelta(seconds=seconds) if seconds else None
    return run_start_options(
        module.FLOW.name,
        params,
        deployment,
        task_queue,
        tags=tags,
        user=user,
        execution_timeout=execution_timeout,
    )


def run_start_options(
    flow: str,
    params: Any,
    deployment: Deployment,
    task_queue: str,
    *,
    tags: Sequence[str] = (),
    user: str | None = None,
    execution_timeout: timedelta | None = None,
) -> dict[str, Any]:
    """What a run of ``flow`` starts with, as keyword arguments of
    ``Client.start_workflow``: ``search_attributes`` (``user`` default: Metaflow's
    user here), ``static_summary`` and ``static_details`` (``params``: the PARAMS
    dataclass or a mapping of the parameters given), ``execution_timeout``."""
    user = user or metaflow_user()
    return {
        "search_attributes": search_attributes(
            flow,
            deployment=deployment.name,
            user=user,
            project=deployment.project,
            branch=deployment.branch,
            tags=tags,
        ),
        "static_summary": start_summary(flow, params),
        "static_details": start_details(
            flow,
            params,
            deployment=deployment.name,
            task_queue=task_queue,
            tags=tags,
            user=user,
            execution_timeout=execution_timeout,
        ),
        "execution_timeout": execution_timeout,
    }


def start_summary(flow: str, params: Any) -> str:
    """The one-line summary of a run: ``TrainFlow: folds=5, lr=0.01`` (the flow and
    the parameters given; Metaflow evaluates the others when the run starts)."""
    values = ", ".join(f"{name}={text}" for name, text in _parameters(params))
    line = f"{flow}: {values}" if values else f"{flow} (Metaflow flow)"
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 3] + "..."


def start_details(
    flow: str,
    params: Any,
    *,
    deployment: str | None = None,
    task_queue: str | None = None,
    tags: Sequence[str] = (),
    user: str | None = None,
    execution_timeout: timedelta | None = None,
) -> str:
    """The details of a run (Temporal markdown): flow, deployment, parameters, tags,
    who started it and its timeout. The Metaflow pathspec, known once the run runs,
    is in its current details."""
    lines = [f"**Metaflow flow** {flow}"]
    if deployment and deployment != flow:
        lines.append(f"**Deployment** {deployment}")
    if task_queue:
        lines.append(f"**Task queue** {task_queue}")
    values = _parameters(params)
    if values:
        lines.append("**Parameters**")
        lines += [f"- {name} = {text}" for name, text in values]
    if tags:
        lines.append("**Tags** " + ", ".join(sorted(set(tags))))
    if user:
        lines.append(f"**Started by** {user}")
    if execution_timeout:
        lines.append(
            f"**Workflow timeout** {execution_timeout.total_seconds():g} s: Temporal "
            "ends the run then and its running tasks are killed"
        )
    return "\n".join(lines)


def _parameters(params: Any) -> list[tuple[str, str]]:
    """(name, JSON value) of the parameters a run was given (None: left to Metaflow)."""
    if isinstance(params, Mapping):
        given = list(params.items())
    elif dataclasses.is_dataclass(params) and not isinstance(params, type):
        given = [(f.name, getattr(params, f.name)) for f in dataclasses.fields(params)]
    else:
        return []
    values = []
    for name, value in given:
        if value is None:
            continue
        text = json.dumps(value, default=str, ensure_ascii=False)
        if len(text) > DETAIL_VALUE_CHARS:
            text = text[: DETAIL_VALUE_CHARS - 3] + "..."
        values.append((name, text))
    return values


class SearchAttributesMissing(RuntimeError):
    """The namespace lacks the search attributes and the server refused to add them."""


def register_commands(namespace: str = "default") -> str:
    """The ``temporal`` CLI commands that register the search attributes."""
    where = "" if namespace == "default" else f" --namespace {namespace}"
    commands = []
    for kind in dict.fromkeys(SEARCH_ATTRIBUTES.values()):
        names = " ".join(
            f"--name {n}" for n, t in SEARCH_ATTRIBUTES.items() if t == kind
        )
        commands.append(
            f"temporal operator search-attribute create{where} {names} --type {kind}"
        )
    return " && ".join(commands)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the search attributes ``namespace`` lacks (the dev server, a cluster
    whose operator API this client may use); the names it added. Raises
    :class:`SearchAttributesMissing` (one line, with the commands to run) when the
    server refuses, or when a name is registered with another type."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    from .connection import transient

    def refused(why: str) -> SearchAttributesMissing:
        return SearchAttributesMissing(
            f"namespace {namespace} lacks the Metaflow search attributes ({why}); "
            f"register them once with `{register_commands(namespace)}`"
        )

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as err:
        if transient(err):
            raise  # an outage: the caller retries (connection.through_outages)
        raise refused(f"cannot list them: {err.message}") from None
    known = {**listed.system_attributes, **listed.custom_attributes}
    missing = {}
    for name, kind in SEARCH_ATTRIBUTES.items():
        wanted = IndexedValueType.Value("INDEXED_VALUE_TYPE_" + _snake(kind).upper())
        if name not in known:
            missing[name] = wanted
        elif known[name] != wanted:
            have = IndexedValueType.Name(known[name]).removeprefix(
                "INDEXED_VALUE_TYPE_"
            )
            raise SearchAttributesMissing(
                f"search attribute {name} of namespace {namespace} has type {have}, "
                f"not {kind}: mf-temporal-codegen needs it as {kind}"
            )
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.ALREADY_EXISTS:  # another worker was first
            return []
        if transient(err):
            raise
        raise refused(
            f"the server refused to add {', '.join(missing)}: {err.message}"
        ) from None
    return sorted(missing)


def _snake(name: str) -> str:
    """``KeywordList`` -> ``keyword_list``."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
