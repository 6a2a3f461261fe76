"""The deployment's event subscription (``@trigger``, ``@trigger_on_finish``) as
``temporal create`` registers it and ``temporal delete`` removes it.

``create`` has Metaflow's own view of the flow at hand (this process loaded it:
computed arguments are evaluated, ``@project`` names resolved), so it registers the
subscription from that, with the same record the generated worker keeps when it
starts (``runtime.subscriptions``: one record per deployment on the server).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from metaflow._vendor import click
from temporalio.client import Client

from ..runtime import subscriptions
from ..runtime.deployment import Deployment
from ..runtime.trigger_facts import described_triggers
from ..runtime.triggers import RUN


class SubscriptionError(click.ClickException):
    """A trigger this deployment cannot subscribe to."""


async def register(
    client: Client, flow: Any, module: ModuleType, deployment: Deployment, queue: str
) -> tuple[str, str | None]:
    """Create, update or remove the deployment's subscription: what was done, and
    a line saying what the deployment waits for (None: nothing)."""
    described = described_triggers(flow)
    problems = subscriptions.module_problems(
        module, described, "regenerate with `temporal create`"
    )
    if problems:
        raise SubscriptionError("; ".join(problems))
    try:
        wanted = subscriptions.wanted(module, described, deployment, queue)
    except subscriptions.TriggerError as exc:
        raise SubscriptionError(str(exc)) from None
    outcome = await subscriptions.sync(client, wanted, deployment.name)
    return outcome, waits_for(wanted) if wanted else None


def waits_for(subscription: subscriptions.Subscription) -> str:
    """What starts runs of the deployment, in one line."""
    if subscription.type == RUN:
        return (
            f"each run of {subscription.upstream} that succeeds "
            f"(event {subscription.event}) starts a run"
        )
    mapping = ", ".join(f"{p} <- {f}" for p, f in subscription.parameters.items())
    return (
        f"each event {subscription.event} starts a run "
        f"(`mf-temporal-codegen publish {subscription.event} --payload KEY=VALUE`"
        + (f"; Parameters from the payload: {mapping}" if mapping else "")
        + ")"
    )


async def remove(client: Client, deployment: str) -> bool:
    """Remove the deployment's subscription; False if it had none."""
    return await subscriptions.remove(client, deployment)
