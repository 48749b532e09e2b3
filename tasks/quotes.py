"""Pricing an order from the catalogue, and keeping the quotes sent to customers."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel
from sqlalchemy import select, update

from handoff.core import audit
from handoff.core.db import session
from handoff.core.models import Order, Product, Quote, utcnow
from handoff.core.settings import settings
from tasks.steps import record_step


class PricedQuote(BaseModel):
    quote_id: str
    order_id: str
    customer_id: str
    lines: list[dict]
    list_total: float
    total: float
    discount: float  # overall share off the catalogue price
    valid_until: date
    status: str


def needs_a_quote(order_id: str) -> bool:
    """A discounted order is confirmed to the customer with a priced quote first."""
    with session() as s:
        return any(l.discount > 0 for l in s.get(Order, order_id).lines)


@record_step(task_run_name="price-quote-{order_id}")
def price_quote(order_id: str) -> PricedQuote:
    """Price every line at the catalogue's list price less the line's discount; keep the quote."""
    with session() as s:
        existing = s.get(Quote, f"Q-{order_id}")
        if existing is None:
            order = s.get(Order, order_id)
            catalogue = {p.id: p for p in s.scalars(select(Product))}
            lines, list_total, total = [], 0.0, 0.0
            for l in order.lines:
                price = catalogue[l.product_id].unit_price if l.product_id in catalogue else l.unit_price
                amount = round(l.quantity * price * (1 - l.discount), 2)
                lines.append(
                    {"product_id": l.product_id, "quantity": l.quantity, "unit_price": price, "discount": l.discount}
                )
                list_total += l.quantity * price
                total += amount
            existing = Quote(
                id=f"Q-{order_id}",
                order_id=order_id,
                customer_id=order.customer_id,
                lines=lines,
                list_total=round(list_total, 2),
                total=round(total, 2),
                discount=round(1 - total / list_total, 4) if list_total else 0.0,
                valid_until=date.today() + timedelta(days=settings.quote_valid_days),
                status="draft",
            )
            s.add(existing)
            audit.record(s, "system:quotation", "quote", existing.id, "priced", None, "draft", total=existing.total)
        return _view(existing)


def _view(q: Quote) -> PricedQuote:
    return PricedQuote(
        quote_id=q.id,
        order_id=q.order_id,
        customer_id=q.customer_id,
        lines=q.lines,
        list_total=q.list_total,
        total=q.total,
        discount=q.discount,
        valid_until=q.valid_until,
        status=q.status,
    )


@record_step(task_run_name="set-quote-{quote_id}-{status}")
def set_quote_status(quote_id: str, status: str, by: str, crm_ref: str | None = None) -> None:
    with session() as s:
        q = s.get(Quote, quote_id)
        before, q.status = q.status, status
        if status == "approved":
            q.approved_by = by
        if status == "sent":
            q.sent_at, q.crm_ref = q.sent_at or utcnow(), crm_ref
        audit.record(s, by, "quote", quote_id, f"status:{status}", before, status)


@record_step
def expire_quotes(today: date | None = None) -> int:
    """Quotes past their validity are expired; returns how many."""
    today = today or date.today()
    with session() as s:
        expired = s.scalars(
            select(Quote.id).where(Quote.status.in_(["draft", "approved", "sent"]), Quote.valid_until < today)
        ).all()
        if expired:
            s.execute(update(Quote).where(Quote.id.in_(expired)).values(status="expired"))
            for quote_id in expired:
                audit.record(s, "system:quotation", "quote", quote_id, "status:expired", None, "expired")
        return len(expired)
