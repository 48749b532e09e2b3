"""The outbox: stored orders become `order.received` events, which start their pipelines.

The core stores orders and knows nothing of Prefect; this module is the one place an order is
announced (intake through any channel, and `handoff up`'s retry of orders not yet announced).
"""

from __future__ import annotations

import logging
import uuid

from handoff.core.db import session
from handoff.core.models import Order, utcnow

log = logging.getLogger(__name__)

ORDER_RECEIVED = "order.received"
EVENT_NAMESPACE = uuid.UUID("6f1c3a52-55a8-4a1e-9a52-0d9e3c2b8a11")


def announce_orders(order_ids: list[str]) -> int:
    """Emit `order.received` for stored orders, marking each as announced; returns how many.

    The event id is derived from the order id, so announcing an order twice cannot start two
    runs from one event. Orders whose event could not be sent stay unannounced for a retry
    (`unannounced_orders`)."""
    sent = 0
    with session() as s:
        for order_id in order_ids:
            order = s.get(Order, order_id)
            if order is not None and announce_order(order):
                order.announced_at = utcnow()
                sent += 1
    return sent


def announce_order(order: Order) -> bool:
    from prefect.events import emit_event

    try:
        event = emit_event(
            event=ORDER_RECEIVED,
            resource={
                "prefect.resource.id": f"handoff.order.{order.id}",
                "prefect.resource.name": f"order {order.id}",
                "handoff.order-id": order.id,
                "handoff.customer-id": order.customer_id,
            },
            payload={"order_id": order.id, "total": order.total, "due_date": str(order.due_date)},
            id=uuid.uuid5(EVENT_NAMESPACE, f"order.received:{order.id}"),
        )
    except Exception:  # the order is stored; an unsent notification is sent again later
        log.exception("could not emit order.received for %s", order.id)
        return False
    return event is not None
