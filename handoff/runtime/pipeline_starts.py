"""Getting orders and requests for quotation into their pipelines while `handoff up` (or its worker
stack) runs: the outbox's job, which has Prefect confirm what was announced, sends again what it
has not, and starts the pipeline (or quotation) of one whose event started nothing; the starts
themselves, one run however many processes ask (Prefect de-duplicates them by idempotency key);
and the feed that submits Northwind's orders through intake at a steady rate.

These are the jobs the stack runs in its threads; starting and stopping the stack itself is
handoff.runtime.up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from itertools import count
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handoff.core.models import Order
    from handoff.core.models import QuoteRequest

OUTBOX_SECONDS = 5.0
STALLED_AFTER = timedelta(seconds=30)


@dataclass
class Feed:
    source: str
    per_minute: float
    limit: int | None = None


def announce_pending_orders(stop: threading.Event, say: Callable[[str], None]) -> None:
    """The outbox: confirm the orders Prefect has, send again those it has not (a server that
    was down, an event lost on the way), and start the pipeline of a confirmed order whose event
    started nothing (it came before the trigger existed)."""
    from handoff.runtime.outbox import outbox_pass

    while not stop.is_set():
        try:
            confirmed, sent = outbox_pass()
            if confirmed or sent:
                say(f"outbox: {confirmed} order(s) and request(s) confirmed by Prefect, {sent} sent (again)")
            started = start_unstarted_pipelines()
            if started:
                say(f"started the pipeline of {started} order(s) whose event started none")
            started = start_unstarted_quotations()
            if started:
                say(f"started the quotation of {started} request(s) whose event started none")
        except Exception as exc:  # a busy server now and then must not stop the outbox for good
            say(f"outbox: {type(exc).__name__}: {exc} (trying again)")
        stop.wait(OUTBOX_SECONDS)


def announced_but_not_taken(model: type[Order] | type[QuoteRequest], first_status: str, grace: timedelta) -> list[str]:
    """Ids of the orders (or requests for quotation) still in their first status, announced more
    than `grace` ago, that no run has taken: their event started nothing."""
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import utcnow

    with session() as s:
        return list(
            s.scalars(
                select(model.id).where(
                    model.status == first_status,
                    model.flow_run_id.is_(None),
                    model.announced_at.is_not(None),
                    model.announced_at < utcnow() - grace,
                )
            )
        )


def start_unstarted_pipelines(grace: timedelta = STALLED_AFTER) -> int:
    """Start the pipeline of each announced order that has none yet (its event found no trigger).

    A run that started and then crashed or failed is sla-watch's to restart (tasks/stranded.py)."""
    from handoff.core.models import Order
    from handoff.core.models import OrderStatus

    unstarted = announced_but_not_taken(Order, OrderStatus.RECEIVED, grace)
    return start_where_no_run_is_live(unstarted, "order-pipeline", "order_id", start_pipeline)


def start_unstarted_quotations(grace: timedelta = STALLED_AFTER) -> int:
    """Start the quotation of each announced request for quotation that no run took (its
    quote.requested event found no trigger)."""
    from handoff.core.models import QuoteRequest
    from handoff.core.models import QuoteState

    unstarted = announced_but_not_taken(QuoteRequest, QuoteState.REQUESTED, grace)
    return start_where_no_run_is_live(unstarted, "quotation", "request_id", start_quotation)


def start_where_no_run_is_live(
    unstarted: list[str], deployment: str, parameter: str, start: Callable[[str], str]
) -> int:
    """Start each of these, unless a run of the deployment is already on its way for it: a run its
    event started may not have taken it yet (workers busy), and a second one is not wanted."""
    if not unstarted:
        return 0
    live = live_runs_of(deployment, parameter)
    todo = [subject_id for subject_id in unstarted if subject_id not in live]
    for subject_id in todo:
        start(subject_id)
    return len(todo)


PIPELINE = "order-pipeline/order-pipeline"
QUOTATION = "quotation/quotation"


def start_pipeline(order_id: str) -> str:
    """Start the order's pipeline from its deployment; returns the run's id."""
    return start_counted(PIPELINE, "order", order_id, {"order_id": order_id}, f"order-{order_id}", "pipeline-started")


def start_quotation(request_id: str) -> str:
    """Start the request's quotation from its deployment; returns the run's id."""
    return start_counted(
        QUOTATION, "quote_request", request_id, {"request_id": request_id}, f"quote-{request_id}", "quotation-started"
    )


def start_counted(
    deployment: str, entity: str, subject_id: str, parameters: dict[str, str], run_name: str, action: str
) -> str:
    """Start a run of the deployment for this order or request; returns the run's id.

    Prefect de-duplicates the start: the n-th start has the idempotency key `<run name>-start-<n>`
    (n: starts recorded before it), so two processes starting the same one at once get one run,
    and one whose started run ended before taking it gets a new run, not the ended one."""
    from prefect.deployments import run_deployment
    from sqlalchemy import select

    from handoff.core import audit
    from handoff.core.db import session
    from handoff.core.models import AuditEvent

    def recorded_starts(s) -> set[str]:  # noqa: ANN001
        return {
            (e.details or {}).get("flow_run_id")
            for e in s.scalars(
                select(AuditEvent).where(
                    AuditEvent.entity == entity, AuditEvent.entity_id == subject_id, AuditEvent.action == action
                )
            )
        }

    with session() as s:
        starts = len(recorded_starts(s))
    run = run_deployment(
        deployment,
        parameters=parameters,
        timeout=0,
        flow_run_name=run_name,
        idempotency_key=f"{run_name}-start-{starts}",
    )
    with session() as s:
        if str(run.id) not in recorded_starts(s):
            audit.record(
                s,
                "system:outbox",
                entity,
                subject_id,
                action,
                flow_run_id=str(run.id),
                reason="announced, but no run took it",
            )
    return str(run.id)


LIVE_STATES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED")
PAGE = 200  # the most flow runs the server returns at once


def live_runs_of(deployment: str, parameter: str) -> set[str]:
    """The `parameter` values (orders, requests) that already have a run of the deployment on
    its way (queued, running or waiting)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter
    from prefect.client.schemas.filters import DeploymentFilterName
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    live: set[str] = set()
    with get_client(sync_client=True) as client:
        for offset in count(0, PAGE):
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in LIVE_STATES]))
                ),
                limit=PAGE,
                offset=offset,
            )
            live |= {str(r.parameters.get(parameter)) for r in runs}
            if len(runs) < PAGE:
                return live
    return live


def feed_orders(feed: Feed, stop: threading.Event, say: Callable[[str], None]) -> None:
    """Submit the feed's orders one at a time through intake, as if each arrived today."""
    from handoff.core.intake import submit_orders
    from handoff.core.northwind import load_catalogue
    from handoff.core.northwind import northwind_orders
    from handoff.runtime.outbox import announce_orders

    if feed.source != "northwind":
        raise ValueError(f"unknown feed {feed.source!r} (known: northwind)")
    load_catalogue()
    pause = 60.0 / feed.per_minute
    fed = 0
    for raw, data in northwind_orders(limit=feed.limit, as_of=date.today()):
        if stop.is_set():
            return
        result = submit_orders([(raw, data)], source="feed:northwind", announce=announce_orders)
        if result.accepted:
            fed += 1
            say(f"fed order {data['order_id']} ({fed} so far)")
            stop.wait(pause)
    say(f"the northwind feed is done ({fed} new orders)")


__all__ = ["Feed", "announce_pending_orders", "feed_orders"]
