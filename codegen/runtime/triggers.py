"""Event triggers (``@trigger``, ``@trigger_on_finish``) as generated modules and runs
carry them; workflow-safe (no I/O, no Metaflow).

- ``TRIGGERS = rt.Triggers(events=(rt.EventTrigger("data_ready", ...),))`` or
  ``rt.Triggers(flows=(rt.FlowTrigger("UpstreamFlow"),))``: what a generated module
  says starts its flow, as the source spells it out (``None`` where Metaflow
  evaluates it). The subscription itself lives on the server (:mod:`.subscriptions`).
- :class:`TriggerInfo`: the event that started a run (``RunOptions.trigger``). Every
  task of the run gets it in :data:`~mf_temporal_codegen.contract.TRIGGER_ENV`
  (``RunInfo.resolve``), where the step decorator ``temporal_internal`` makes it
  ``current.trigger``, as Argo hands each pod its event payload.
- :func:`announce_finish`: the end of a run that succeeded; a local activity starts
  the runs of the deployments that ``@trigger_on_finish`` on this one.

No ``from __future__ import annotations`` here: Temporal's data converter reads these
dataclasses' field types.
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from ..contract import ANNOUNCE_PATCH, TRIGGER_ENV
from . import visibility

if TYPE_CHECKING:
    from .specs import RunInfo

# Metaflow's trigger types: a published event (@trigger), a finished run
# (@trigger_on_finish)
EVENT, RUN = "event", "run"
# The local activity that announces a finished run (``subscriptions.FinishAnnouncer``).
ANNOUNCE_ACTIVITY = "mf_temporal_announce_finish"
ANNOUNCE_TIMEOUT = timedelta(minutes=2)
ANNOUNCE_ATTEMPTS = 5


@dataclass(frozen=True)
class EventTrigger:
    """``@trigger(event=...)``: the event's name and the Parameters its payload sets
    (Parameter name -> payload field). ``name`` None: Metaflow evaluates the
    decorator (its arguments are computed) where the worker or ``temporal create``
    loads the flow."""

    name: str | None
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowTrigger:
    """``@trigger_on_finish(flow=...)``: the upstream flow, and its project and branch
    when the decorator names them (None: this deployment's own, as Metaflow resolves
    them). ``flow`` None: Metaflow evaluates the decorator."""

    flow: str | None
    project: str | None = None
    branch: str | None = None


@dataclass(frozen=True)
class Triggers:
    """What starts a deployed flow besides ``trigger`` and ``@schedule``."""

    events: tuple[EventTrigger, ...] = ()
    flows: tuple[FlowTrigger, ...] = ()


@dataclass(frozen=True)
class TriggerInfo:
    """The event that started a run: what Metaflow's ``current.trigger`` shows
    (name, id, timestamp, type ``event`` or ``run``) and the payload it carried."""

    name: str
    type: str
    id: str
    # seconds since the epoch, as Metaflow's events carry it
    timestamp: int
    payload: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The environment variable every task of the run gets (``TRIGGER_ENV``)."""
        body = {
            **self.payload,
            "name": self.name,
            "id": self.id,
            "timestamp": self.timestamp,
        }
        events = [{"type": self.type, "payload": body}]
        return {TRIGGER_ENV: json.dumps(events, sort_keys=True, separators=(",", ":"))}


@dataclass(frozen=True)
class FinishRequest:
    """A run that succeeded: which deployment it belongs to (its project flow name
    under ``@project``, else the flow name), as its starter named it."""

    flow: str
    run_id: str
    deployment: str
    project: str | None = None
    branch: str | None = None


def finish_event(deployment: str) -> str:
    """The event a successful run of ``deployment`` announces, as Metaflow's Argo
    integration names it: ``metaflow.<project flow name, or flow name>.end``."""
    return f"metaflow.{deployment}.end"


async def announce_finish(info: "RunInfo") -> None:
    """In the workflow, once the graph succeeded: start the runs of the deployments
    that wait for this one (``@trigger_on_finish``), each once per run of this one.
    Best effort, as Metaflow's own announcement on Argo: a failure to announce is
    logged and the run still succeeds. Runs that finished before this existed replay
    without it (``workflow.patched``)."""
    if not workflow.patched(ANNOUNCE_PATCH):
        return
    attributes = workflow.info().typed_search_attributes
    request = FinishRequest(
        flow=info.flow.name,
        run_id=info.run_id,
        deployment=attributes.get(visibility.DEPLOYMENT) or info.flow.name,
        project=attributes.get(visibility.PROJECT),
        branch=attributes.get(visibility.BRANCH),
    )
    try:
        started = await workflow.execute_local_activity(
            ANNOUNCE_ACTIVITY,
            request,
            result_type=list[str],
            start_to_close_timeout=ANNOUNCE_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=ANNOUNCE_ATTEMPTS),
            summary=f"announce {finish_event(request.deployment)}",
        )
    except ValueError as err:
        # a worker built without the announcer (``runtime.worker`` registers it;
        # a hand-made ``Worker`` may not): nothing announces the run
        workflow.logger.warning(
            "%s/%s not announced: %s", info.flow.name, info.run_id, err
        )
        return
    except ActivityError as err:
        workflow.logger.warning(
            "could not announce that %s/%s finished: %s",
            info.flow.name,
            info.run_id,
            err.cause or err,
        )
        return
    for line in started:
        workflow.logger.info("%s triggered %s", finish_event(request.deployment), line)
