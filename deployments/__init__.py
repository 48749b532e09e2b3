"""Every flow as a deployment: what starts it (an event, a schedule, a person) and its tags.

The same definitions serve locally (`handoff up` → `serving_runner`) and deploy to a work pool
(`handoff deploy --pool NAME` → `deploy_all`), so production runs what the laptop runs.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from prefect.events import DeploymentEventTrigger

ROOT = Path(__file__).resolve().parents[1]

# An order.received event starts the order's pipeline; the order id travels in the event's
# resource (`handoff.order-id`), so no number is templated into a string.
ORDER_RECEIVED_TRIGGER = DeploymentEventTrigger(
    name="order.received starts the order pipeline",
    expect={"order.received"},
    match={"prefect.resource.id": "handoff.order.*"},
    parameters={"order_id": "{{ event.resource['handoff.order-id'] }}"},
)


# A quote.requested event starts the request's quotation, the same way.
QUOTE_REQUESTED_TRIGGER = DeploymentEventTrigger(
    name="quote.requested starts the quotation",
    expect={"quote.requested"},
    match={"prefect.resource.id": "handoff.quote-request.*"},
    parameters={"request_id": "{{ event.resource['handoff.request-id'] }}"},
)


@dataclass
class Definition:
    entrypoint: str  # "flows/file.py:function"
    name: str
    description: str
    cron: str | None = None
    interval_seconds: int | None = None
    triggers: list[Any] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    concurrency_limit: int | None = None

    @property
    def flow(self):  # noqa: ANN201
        """The flow, imported as its module (`flows.order_pipeline`), so that a run started from
        it refers to that module and finds it already imported in a warm process."""
        path, name = self.entrypoint.split(":")
        return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)

    def schedule_kwargs(self) -> dict[str, Any]:
        if self.cron:
            return {"cron": self.cron}
        if self.interval_seconds:
            return {"interval": self.interval_seconds}
        return {}

    def deployment_kwargs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "triggers": self.triggers or None,
            "tags": self.tags,
            "concurrency_limit": self.concurrency_limit,
            **self.schedule_kwargs(),
        }


DEFINITIONS: list[Definition] = [
    Definition(
        "flows/order_pipeline.py:order_pipeline",
        "order-pipeline",
        "Everything for one order, started by its order.received event.",
        triggers=[ORDER_RECEIVED_TRIGGER],
        tags=["work-type:order"],
    ),
    Definition(
        "flows/sla_watch.py:sla_watch",
        "sla-watch",
        "Every minute: re-score, escalate near-breach work, reclaim and re-route.",
        interval_seconds=60,
        tags=["routing"],
        concurrency_limit=1,
    ),
    Definition(
        "flows/handoff_meeting_check.py:handoff_meeting_check",
        "handoff-meeting-check",
        "Daily: run the handoff meetings of newly won accounts; expire old quotes.",
        cron="0 8 * * 1-5",
        tags=["work-type:handoff-meeting"],
        concurrency_limit=1,
    ),
    Definition(
        "flows/wip_review.py:wip_review",
        "wip-review",
        "Twice a day: the work-in-progress review as artifacts.",
        cron="0 9,15 * * 1-5",
        tags=["report"],
        concurrency_limit=1,
    ),
    Definition(
        "flows/handoff_meeting.py:handoff_meeting",
        "handoff-meeting",
        "One account's handoff meetings, until sales and operations both sign.",
        tags=["work-type:handoff-meeting"],
    ),
    Definition(
        "flows/order_entry.py:order_entry",
        "order-entry",
        "Order entry alone, for one order.",
        tags=["work-type:order-entry"],
    ),
    Definition(
        "flows/quotation.py:quotation",
        "quotation",
        "A customer's request for quotation, to their answer; started by its quote.requested event.",
        triggers=[QUOTE_REQUESTED_TRIGGER],
        tags=["work-type:quotation"],
    ),
    Definition(
        "flows/quotation.py:order_quotation",
        "order-quotation",
        "Quotation alone, for one discounted order placed without a request.",
        tags=["work-type:quotation"],
    ),
    Definition(
        "flows/provisioning.py:provisioning",
        "provisioning",
        "Provisioning alone, for one order.",
        tags=["work-type:provisioning"],
    ),
    Definition(
        "flows/activation.py:activation",
        "activation",
        "Activation alone, for one order.",
        tags=["work-type:activation"],
    ),
    Definition("flows/billing.py:billing", "billing", "Billing alone, for one order.", tags=["work-type:billing"]),
]


def runner_deployments(definitions: list[Definition] | None = None) -> list:
    """The definitions as the deployments a runner on this machine serves (not yet applied)."""
    return [d.flow.to_deployment(**d.deployment_kwargs()) for d in (definitions or DEFINITIONS)]


def serving_runner(limit: int | None = None, poll_seconds: float | None = None):  # noqa: ANN201
    """A Prefect runner with every definition's deployment applied (its triggers and schedules
    are live when this returns); `serve(runner)` then runs their flow runs on this machine.

    The runner is given the flows themselves, not only their deployments: it then starts each
    run straight from the imported flow (`handoff.runtime.warm_start` forks it from a warm process)
    instead of a `python -m prefect.engine` that imports Prefect and the flows again.
    """
    from prefect.runner import Runner

    from handoff.runtime.warm_start import flows_travel_by_reference

    flows_travel_by_reference()
    runner = Runner(limit=limit, query_seconds=poll_seconds)
    for d in DEFINITIONS:
        runner.add_flow(d.flow, **d.deployment_kwargs())
    return runner


def serve(runner) -> None:  # noqa: ANN001
    """Run `runner`'s flow runs until Ctrl-C."""
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        pass


def deploy_all(work_pool: str, source: str | None = None) -> list:
    """Register the same deployments with a work pool; its workers pull the code from `source`
    (a git URL or a directory the workers can read; default: this checkout)."""
    from prefect.flows import Flow

    ids = []
    for d in DEFINITIONS:
        flow = Flow.from_source(source=source or str(ROOT), entrypoint=d.entrypoint)
        ids.append(flow.deploy(work_pool_name=work_pool, build=False, push=False, **d.deployment_kwargs()))
    return ids
