"""The outbox: stored orders become `order.received` events, which start their pipelines.

The core stores orders and knows nothing of Prefect; this module is the one place an order is
announced (intake through any channel, and `handoff up`'s outbox poll).

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
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select

from handoff.core.db import session
from handoff.core.models import Order, utcnow

log = logging.getLogger(__name__)

ORDER_RECEIVED = "order.received"
EVENT_NAMESPACE = uuid.UUID("6f1c3a52-55a8-4a1e-9a52-0d9e3c2b8a11")
RESEND_AFTER_SECONDS = 30.0  # the server stores events within ~5 s (its persister's flush)
READ_BACK_PAGE = 50
SEND_BATCH = 100

_sent_at: dict[str, float] = {}  # order id -> when this process last sent its event


def event_id(order_id: str) -> uuid.UUID:
    """The one id every sending of this order's event carries."""
    return uuid.uuid5(EVENT_NAMESPACE, f"order.received:{order_id}")


def announce_orders(order_ids: list[str]) -> int:
    """Send `order.received` for stored orders not yet confirmed; returns how many the server took.

    They are not marked announced here: `confirm_announced` does that once the server has the
    event (the outbox poll of `handoff up` checks, and sends again what never arrived)."""
    with session() as s:
        orders = [o for o in (s.get(Order, i) for i in order_ids) if o is not None and o.announced_at is None]
        events = [(o.id, order_event(o)) for o in orders]
    taken = 0
    for start in range(0, len(events), SEND_BATCH):
        batch = events[start : start + SEND_BATCH]
        if post_events([e for _, e in batch]):
            taken += len(batch)
            _sent_at.update({order_id: time.monotonic() for order_id, _ in batch})
    return taken


def announce_order(order: Order) -> bool:
    """Send one order's event; True once the server has taken it."""
    return post_events([order_event(order)])


def order_event(order: Order):
    from prefect.events import Event

    return Event(
        event=ORDER_RECEIVED,
        resource={
            "prefect.resource.id": f"handoff.order.{order.id}",
            "prefect.resource.name": f"order {order.id}",
            "handoff.order-id": order.id,
            "handoff.customer-id": order.customer_id,
        },
        payload={"order_id": order.id, "total": order.total, "due_date": str(order.due_date)},
        id=event_id(order.id),
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
        log.warning("could not send %d order.received event(s): %s", len(events), exc)
        return False
    return True


def confirm_announced(order_ids: Iterable[str]) -> list[str]:
    """Mark announced the orders Prefect confirmed (event stored, or pipeline run started);
    returns them. With no server to ask, nothing is confirmed."""
    order_ids = list(order_ids)
    with session() as s:
        started = set(s.scalars(select(Order.id).where(Order.id.in_(order_ids), Order.flow_run_id.is_not(None))))
    try:
        stored = events_on_server([o for o in order_ids if o not in started])
    except Exception as exc:  # noqa: BLE001 - no server, or a busy one: ask again next time
        log.info("could not read order events back from Prefect: %s", exc)
        stored = set()
    confirmed = [o for o in order_ids if o in started or o in stored]
    if confirmed:
        with session() as s:
            for order in s.scalars(select(Order).where(Order.id.in_(confirmed), Order.announced_at.is_(None))):
                order.announced_at = utcnow()
        for order_id in confirmed:
            _sent_at.pop(order_id, None)
    return confirmed


def events_on_server(order_ids: list[str]) -> set[str]:
    """Of these orders, those whose `order.received` event the Prefect server has stored."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventIDFilter, EventNameFilter

    by_event = {event_id(o): o for o in order_ids}
    found: set[str] = set()
    ids = list(by_event)
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), READ_BACK_PAGE):
            page = ids[start : start + READ_BACK_PAGE]
            # (events of the last 180 days: Prefect's default window, and longer than it keeps them)
            query = EventFilter(id=EventIDFilter(id=page), event=EventNameFilter(name=[ORDER_RECEIVED]))
            response = client.request(
                "POST", "/events/filter", json={"filter": query.model_dump(mode="json"), "limit": READ_BACK_PAGE}
            )
            response.raise_for_status()
            found |= {by_event[uuid.UUID(e["id"])] for e in response.json()["events"] if uuid.UUID(e["id"]) in by_event}
    return found


def outbox_pass(resend_after: float = RESEND_AFTER_SECONDS) -> tuple[int, int]:
    """One pass of the outbox: confirm what Prefect has; send again what it has not, once it had
    time to arrive (`resend_after` seconds since this process sent it, or since the order was
    received when another process sent it). Returns (confirmed, sent)."""
    from handoff.core.intake import unannounced_orders

    pending = unannounced_orders()
    if not pending:
        return 0, 0
    confirmed = set(confirm_announced(pending))
    now, cutoff = time.monotonic(), utcnow() - timedelta(seconds=resend_after)
    with session() as s:
        received = dict(s.execute(select(Order.id, Order.received_at).where(Order.id.in_(pending))).all())
    due = [
        o
        for o in pending
        if o not in confirmed
        and (now - _sent_at[o] >= resend_after if o in _sent_at else received.get(o, cutoff) <= cutoff)
    ]
    return len(confirmed), announce_orders(due) if due else 0
