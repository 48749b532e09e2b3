"""The outbox: stored orders become `order.received` events, which start their pipelines, and
stored requests for quotation become `quote.requested` events, which start their quotations.

The core stores them and knows nothing of Prefect; this module is the one place either is
announced (intake through any channel, and `handoff up`'s outbox poll). What follows says
"order"; a request for quotation goes the same way (its `Topic`), its run being its quotation.

An order counts as announced (`announced_at`) only once Prefect confirmed it: its event is in
the server's event store (read back by the event's id), or its pipeline run has taken the
order. Sending is not confirming (the server keeps events in memory until its persister writes
them a few seconds later). Until confirmed, the outbox sends the order's event again,
with the same id (derived from the order id): the server stores an event id once and its
triggers act on an id once, and the pipeline takes an order once (`claim_order`), so a resend
is harmless.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from handoff.core.db import session
from handoff.core.models import Order
from handoff.core.models import QuoteRequest
from handoff.core.models import utcnow

log = logging.getLogger(__name__)

ORDER_RECEIVED = "order.received"
QUOTE_REQUESTED = "quote.requested"
EVENT_NAMESPACE = uuid.UUID("6f1c3a52-55a8-4a1e-9a52-0d9e3c2b8a11")
RESEND_AFTER_SECONDS = 30.0  # the server stores events within ~5 s (its persister's flush)
READ_BACK_PAGE = 50
SEND_BATCH = 100


@dataclass(frozen=True)
class Topic:
    """What is announced: the stored records of one table, as one kind of event."""

    event: str  # "order.received"
    record: Any  # the table: Order, QuoteRequest (id, announced_at, received_at, flow_run_id)
    resource: str  # the event's resource id prefix: "handoff.order"
    id_label: str  # the resource label carrying the record's id: "handoff.order-id"
    payload: Callable[[Any], dict[str, Any]]


ORDERS = Topic(
    ORDER_RECEIVED,
    Order,
    "handoff.order",
    "handoff.order-id",
    lambda o: {"order_id": o.id, "total": o.total, "due_date": str(o.due_date)},
)
QUOTE_REQUESTS = Topic(
    QUOTE_REQUESTED,
    QuoteRequest,
    "handoff.quote-request",
    "handoff.request-id",
    lambda r: {"request_id": r.id, "lines": len(r.lines), "due_date": str(r.due_date)},
)
TOPICS = (ORDERS, QUOTE_REQUESTS)

_sent_at: dict[tuple[str, str], float] = {}  # (event, id) -> when this process last sent its event


def event_id(order_id: str, topic: Topic = ORDERS) -> uuid.UUID:
    """The one id every sending of this order's event carries."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{topic.event}:{order_id}")


def announce_orders(order_ids: list[str]) -> int:
    """Send `order.received` for stored orders not yet confirmed; returns how many the server took.

    They are not marked announced here: `confirm_announced` does that once the server has the
    event (the outbox poll of `handoff up` checks, and sends again what never arrived)."""
    return announce(ORDERS, order_ids)


def announce_quote_requests(request_ids: list[str]) -> int:
    """Send `quote.requested` for stored requests not yet confirmed (as `announce_orders`)."""
    return announce(QUOTE_REQUESTS, request_ids)


def announce(topic: Topic, ids: list[str]) -> int:
    with session() as s:
        records = [r for r in (s.get(topic.record, i) for i in ids) if r is not None and r.announced_at is None]
        events = [(r.id, record_event(topic, r)) for r in records]
    taken = 0
    for start in range(0, len(events), SEND_BATCH):
        batch = events[start : start + SEND_BATCH]
        if post_events([e for _, e in batch]):
            taken += len(batch)
            _sent_at.update({(topic.event, key): time.monotonic() for key, _ in batch})
    return taken


def announce_order(order: Order) -> bool:
    """Send one order's event; True once the server has taken it."""
    return post_events([order_event(order)])


def order_event(order: Order):
    return record_event(ORDERS, order)


def record_event(topic: Topic, record: Any):
    from prefect.events import Event

    return Event(
        event=topic.event,
        resource={
            "prefect.resource.id": f"{topic.resource}.{record.id}",
            "prefect.resource.name": f"{topic.resource.removeprefix('handoff.').replace('-', ' ')} {record.id}",
            topic.id_label: record.id,
            "handoff.customer-id": record.customer_id,
        },
        payload=topic.payload(record),
        id=event_id(record.id, topic),
    )


def post_events(events: list) -> bool:
    """Post events to the Prefect server; True once it has taken them (2xx).

    Posted over HTTP (`POST /api/events`, what Prefect's websocket sender feeds too), not with
    `emit_event`: that only queues the event for a background sender that drops it when no
    server listens, and would answer "sent" either way."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.request("POST", "/events", json=[e.model_dump(mode="json") for e in events]).raise_for_status()
    except Exception as exc:  # noqa: BLE001 - the orders are stored; the outbox sends them again later
        log.warning("could not send %d event(s): %s", len(events), exc)
        return False
    return True


def confirm_announced(order_ids: Iterable[str], topic: Topic = ORDERS) -> list[str]:
    """Mark announced the orders Prefect confirmed (event stored, or pipeline run started);
    returns them. With no server to ask, nothing is confirmed."""
    order_ids = list(order_ids)
    table = topic.record
    with session() as s:
        started = set(s.scalars(select(table.id).where(table.id.in_(order_ids), table.flow_run_id.is_not(None))))
    try:
        stored = events_on_server([o for o in order_ids if o not in started], topic)
    except Exception as exc:  # noqa: BLE001 - no server, or a busy one: ask again next time
        log.info("could not read order events back from Prefect: %s", exc)
        stored = set()
    confirmed = [o for o in order_ids if o in started or o in stored]
    if confirmed:
        with session() as s:
            for record in s.scalars(select(table).where(table.id.in_(confirmed), table.announced_at.is_(None))):
                record.announced_at = utcnow()
        for order_id in confirmed:
            _sent_at.pop((topic.event, order_id), None)
    return confirmed


def events_on_server(order_ids: list[str], topic: Topic = ORDERS) -> set[str]:
    """Of these orders, those whose `order.received` event the Prefect server has stored."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter
    from prefect.events.filters import EventIDFilter
    from prefect.events.filters import EventNameFilter

    by_event = {event_id(o, topic): o for o in order_ids}
    found: set[str] = set()
    ids = list(by_event)
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), READ_BACK_PAGE):
            page = ids[start : start + READ_BACK_PAGE]
            # (events of the last 180 days: Prefect's default window, and longer than it keeps them)
            query = EventFilter(id=EventIDFilter(id=page), event=EventNameFilter(name=[topic.event]))
            response = client.request(
                "POST", "/events/filter", json={"filter": query.model_dump(mode="json"), "limit": READ_BACK_PAGE}
            )
            response.raise_for_status()
            found |= {by_event[uuid.UUID(e["id"])] for e in response.json()["events"] if uuid.UUID(e["id"]) in by_event}
    return found


def outbox_pass(resend_after: float = RESEND_AFTER_SECONDS) -> tuple[int, int]:
    """One pass of the outbox: confirm what Prefect has; send again what it has not, once it had
    time to arrive (`resend_after` seconds since this process sent it, or since the order was
    received when another process sent it). Orders, then requests for quotation.
    Returns (confirmed, sent)."""
    confirmed = sent = 0
    for topic in TOPICS:
        c, n = topic_pass(topic, resend_after)
        confirmed, sent = confirmed + c, sent + n
    return confirmed, sent


# Orders confirmed and sent again per round of a pass. Every waiting id went into one IN (...)
# list: past 65,535 waiting orders (one full 10 MiB POST can hold that many) PostgreSQL's
# parameter limit failed every pass before it asked Prefect anything, for good.
OUTBOX_PAGE = 1_000


def topic_pass(topic: Topic, resend_after: float) -> tuple[int, int]:
    table = topic.record
    with session() as s:
        pending = list(s.scalars(select(table.id).where(table.announced_at.is_(None)).order_by(table.received_at)))
    confirmed = sent = 0
    for start in range(0, len(pending), OUTBOX_PAGE):
        c, n = _page_pass(topic, pending[start : start + OUTBOX_PAGE], resend_after)
        confirmed, sent = confirmed + c, sent + n
    return confirmed, sent


def _page_pass(topic: Topic, pending: list[str], resend_after: float) -> tuple[int, int]:
    table = topic.record
    confirmed = set(confirm_announced(pending, topic))
    now, cutoff = time.monotonic(), utcnow() - timedelta(seconds=resend_after)
    with session() as s:
        received = dict(s.execute(select(table.id, table.received_at).where(table.id.in_(pending))).all())
    due = [
        o
        for o in pending
        if o not in confirmed
        and (
            now - _sent_at[(topic.event, o)] >= resend_after
            if (topic.event, o) in _sent_at
            else received.get(o, cutoff) <= cutoff
        )
    ]
    return len(confirmed), announce(topic, due) if due else 0
