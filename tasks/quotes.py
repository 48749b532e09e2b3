"""Pricing from the catalogue, and keeping the quotes sent to customers: for a customer's request
for quotation (its versions, its state, the customer's answer; handoff.core.quotes keeps the
records), and for a discounted order placed without one."""

from __future__ import annotations

from datetime import date
from datetime import timedelta

from pydantic import AliasChoices
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core import quotes
from handoff.core import sla
from handoff.core.db import session
from handoff.core.intake.contract import MAX_ORDER_TOTAL
from handoff.core.models import Order
from handoff.core.models import Product
from handoff.core.models import Quote
from handoff.core.models import QuoteRequest
from handoff.core.models import QuoteState
from handoff.core.models import utcnow
from handoff.core.settings import settings
from tasks.steps import record_step


class PricedQuote(BaseModel):
    """A quote as the flow works with it: read from its row (`_view`), so its id is the row's."""

    model_config = ConfigDict(from_attributes=True)

    quote_id: str = Field(validation_alias=AliasChoices("quote_id", "id"))
    order_id: str
    customer_id: str
    lines: list[dict]
    list_total: float
    total: float
    discount: float  # overall share off the catalogue price
    valid_until: date
    status: str


def needs_a_quote(order_id: str) -> bool:
    """A discounted order is confirmed to the customer with a priced quote first, unless it came
    from a quote the customer accepted (priced and approved already)."""
    with session() as s:
        discounted = any(l.discount > 0 for l in s.get(Order, order_id).lines)
        return discounted and quotes.accepted_quote_of(s, order_id) is None


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
                valid_until=sla.business_today() + timedelta(days=settings.quote_valid_days),
                status="draft",
            )
            s.add(existing)
            audit.record(s, "system:quotation", "quote", existing.id, "priced", None, "draft", total=existing.total)
        return _view(existing)


def _view(q: Quote) -> PricedQuote:
    return PricedQuote.model_validate(q)


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


@record_step(task_run_name="renew-validity-{quote_id}")
def renew_validity(quote_id: str, today: date | None = None) -> PricedQuote:
    """A quote is valid from when the customer gets it: one whose validity ended while it
    waited for a manager's approval is valid for the usual days from now, before it is sent.
    Sent with the old date, the CRM refused it as expired, at every run of the order's
    pipeline. Only an ended validity is renewed, so a run that starts again after sending it
    sends the same quote (the CRM answers with the first sending)."""
    today = today or sla.business_today()
    with session() as s:
        q = s.get(Quote, quote_id)
        if q.status not in ("sent", "declined", "expired") and q.valid_until < today:
            before, q.valid_until = q.valid_until, today + timedelta(days=settings.quote_valid_days)
            audit.record(
                s, "system:quotation", "quote", quote_id, "validity-renewed", q.status, q.status,
                was=before.isoformat(), now=q.valid_until.isoformat(),
            )  # fmt: skip
        return _view(q)


@record_step
def expire_quotes(today: date | None = None) -> int:
    """Quotes with the customer past their validity are expired; returns how many (requests'
    quotes with them). An order's quote not sent yet (a draft, or approved) is not with the
    customer: it is renewed when it is sent (`renew_validity`); expired meanwhile, the
    manager's approval wrote "approved" over "expired" and the CRM refused the stale date."""
    today = today or sla.business_today()
    requests_expired = quotes.expire_due_quotes(today)
    with session() as s:
        expired = s.scalars(
            select(Quote.id).where(Quote.request_id.is_(None), Quote.status == "sent", Quote.valid_until < today)
        ).all()
        if expired:
            s.execute(update(Quote).where(Quote.id.in_(expired)).values(status="expired"))
            for quote_id in expired:
                audit.record(s, "system:quotation", "quote", quote_id, "status:expired", None, "expired")
        return len(expired) + len(requests_expired)


QUOTATION_DEPLOYMENT = "quotation/quotation"


@record_step
def quotes_to_follow_up(today: date | None = None) -> list[str]:
    """Requests whose quote is with the customer and whose follow-up call is due (or whose
    validity ended): their quotation runs again, to push the call or expire the quote."""
    today = today or sla.business_today()
    soon = today + timedelta(days=settings.quote_follow_up_days)
    with session() as s:
        return list(
            s.scalars(
                select(QuoteRequest.id)
                .join(Quote, Quote.request_id == QuoteRequest.id)
                .where(
                    QuoteRequest.status == QuoteState.SENT, Quote.status == QuoteState.SENT, Quote.valid_until <= soon
                )
                .order_by(Quote.valid_until)
            )
        )


@record_step(task_run_name="start-quotation-{request_id}")
def start_quotation(request_id: str) -> str:
    """The request's quotation run from its deployment (suspends while the call waits), unless
    one is under way; returns the run's id."""
    from tasks.deployment_runs import start_once

    key, tag = f"quotation:{request_id}:follow-up", f"quote:{request_id}"
    return start_once(QUOTATION_DEPLOYMENT, key, {"request_id": request_id}, name=f"quote-{request_id}", tag=tag)


# --- a customer's request for quotation (flows/quotation.py) ------------------------------------


class RequestQuote(BaseModel):
    """The current version of a request's quote, as the quotation flow and its people see it."""

    request_id: str
    quote_id: str | None
    version: int
    customer_id: str
    state: str
    lines: list[dict]
    list_total: float
    total: float
    discount: float
    valid_until: date | None
    unpriced: list[int]  # products that cannot be quoted (not in the catalogue, or no longer sold)
    order_id: str | None


def _priced(catalogue: dict[int, Product], lines: list[dict]) -> tuple[list[dict], float, float]:
    """Each line at the catalogue's list price less its discount; the list total and the total."""
    priced, list_total, total = [], 0.0, 0.0
    for l in lines:
        price = catalogue[l["product_id"]].unit_price
        priced.append(
            {
                "product_id": l["product_id"],
                "quantity": l["quantity"],
                "unit_price": price,
                "discount": l.get("discount", 0.0),
            }
        )
        list_total += l["quantity"] * price
        total += round(l["quantity"] * price * (1 - l.get("discount", 0.0)), 2)
    return priced, round(list_total, 2), round(total, 2)


def _why_not_quotable(catalogue: dict[int, Product], lines: list[dict]) -> tuple[str, list[int]] | None:
    """Why these lines cannot be quoted (and the products that are why), or None: a quote is a
    promise, and one the customer accepts must become an order (order intake's limits)."""
    unknown = sorted({l["product_id"] for l in lines if l["product_id"] not in catalogue})
    if unknown:
        return f"not in the catalogue: {unknown}", unknown
    gone = sorted({l["product_id"] for l in lines if catalogue[l["product_id"]].discontinued})
    if gone:
        return f"no longer sold: {gone}", gone
    total = _priced(catalogue, lines)[2]
    if total > MAX_ORDER_TOTAL:
        return f"it comes to {total:,.2f}, more than one order may be ({MAX_ORDER_TOTAL:,.0f}): split the request", []
    return None


def _add_version(
    s: Session, request: QuoteRequest, version: int, catalogue: dict[int, Product], lines: list[dict], today: date
) -> float:
    """Add `version` of the request's quote: `lines` at the catalogue's prices, priced (not yet
    approved or sent), valid for HANDOFF_QUOTE_VALID_DAYS from `today`. Returns its total."""
    priced, list_total, total = _priced(catalogue, lines)
    s.add(
        Quote(
            id=quotes.quote_id_for(request.id, version),
            request_id=request.id,
            version=version,
            customer_id=request.customer_id,
            lines=priced,
            list_total=list_total,
            total=total,
            discount=round(1 - total / list_total, 4) if list_total else 0.0,
            valid_until=today + timedelta(days=settings.quote_valid_days),
            status=QuoteState.PRICED,
        )
    )
    s.flush()
    return total


def _request_view(s, request: QuoteRequest, unpriced: list[int] | None = None) -> RequestQuote:  # noqa: ANN001
    q = quotes.current_quote(s, request.id)
    return RequestQuote(
        request_id=request.id,
        quote_id=q.id if q else None,
        version=q.version if q else 0,
        customer_id=request.customer_id,
        state=request.status,
        lines=q.lines if q else request.lines,
        list_total=q.list_total if q else 0.0,
        total=q.total if q else 0.0,
        discount=q.discount if q else 0.0,
        valid_until=q.valid_until if q else None,
        unpriced=unpriced or [],
        order_id=request.order_id,
    )


@record_step(task_run_name="take-request-{request_id}")
def take_request(request_id: str, flow_run_id: str | None) -> None:
    """Note the run working on the request: the outbox counts the request announced once a run
    took it (every step after this one is idempotent, so a second run repeats nothing)."""
    with session() as s:
        request = s.get(QuoteRequest, request_id)
        if request is None:
            raise LookupError(f"no request for quotation {request_id!r}")
        if flow_run_id:
            request.flow_run_id = flow_run_id


@record_step(task_run_name="price-request-{request_id}")
def price_request(request_id: str, today: date | None = None) -> RequestQuote:
    """Price the request from the catalogue as version 1 of its quote (once: a re-run reads it)."""
    today = today or sla.business_today()
    with session() as s:
        request = s.get(QuoteRequest, request_id)
        if request.status != QuoteState.REQUESTED or quotes.current_quote(s, request_id) is not None:
            return _request_view(s, request)
        catalogue = {p.id: p for p in s.scalars(select(Product))}
        cannot = _why_not_quotable(catalogue, request.lines)
        if cannot is not None:
            why, products = cannot
            quotes.set_state(s, request, QuoteState.DECLINED, "system:quotation", reason=why)
            return _request_view(s, request, unpriced=products)
        total = _add_version(s, request, 1, catalogue, request.lines, today)
        quotes.set_state(s, request, QuoteState.PRICED, "system:quotation", total=total)
        return _request_view(s, request)


@record_step(task_run_name="revise-quote-{request_id}")
def revise_within_threshold(request_id: str, by: str, today: date | None = None) -> RequestQuote:
    """A new version of the quote with every line's discount capped at the approval threshold;
    the version before is kept, superseded. Once: a re-run finds the revision made."""
    today = today or sla.business_today()
    cap = settings.discount_approval_threshold
    with session() as s:
        request = s.get(QuoteRequest, request_id)
        before = quotes.current_quote(s, request_id)
        if (
            before is None
            or before.discount <= cap
            or request.status
            not in (
                QuoteState.PRICED,
                QuoteState.AWAITING_APPROVAL,
            )
        ):
            return _request_view(s, request)
        catalogue = {p.id: p for p in s.scalars(select(Product))}
        capped = [{**l, "discount": min(l["discount"], cap)} for l in before.lines]
        cannot = _why_not_quotable(catalogue, capped)  # less discount: it may now be too large an order
        if cannot is not None:
            quotes.set_state(s, request, QuoteState.DECLINED, by, reason=cannot[0])
            return _request_view(s, request, unpriced=cannot[1])
        before.status = QuoteState.SUPERSEDED
        total = _add_version(s, request, before.version + 1, catalogue, capped, today)
        quotes.set_state(s, request, QuoteState.PRICED, by, revised_from=before.id, total=total)
        return _request_view(s, request)


@record_step(task_run_name="set-request-{request_id}-{state}")
def set_request_state(request_id: str, state: str, by: str, crm_ref: str | None = None) -> None:
    """Move the quotation on (once: a quotation already there or further is left as it is)."""
    order = [QuoteState.REQUESTED, QuoteState.PRICED, QuoteState.AWAITING_APPROVAL, QuoteState.SENT]
    with session() as s:
        request = s.get(QuoteRequest, request_id)
        if request.status not in order or order.index(QuoteState(request.status)) >= order.index(QuoteState(state)):
            return
        quotes.set_state(s, request, QuoteState(state), by)
        q = quotes.current_quote(s, request_id)
        if q is not None and state == QuoteState.SENT:
            q.sent_at, q.crm_ref = q.sent_at or utcnow(), crm_ref
        if q is not None and state == QuoteState.AWAITING_APPROVAL:
            q.approved_by = None


@record_step(task_run_name="approve-quote-{request_id}")
def record_approval(request_id: str, by: str) -> None:
    with session() as s:
        q = quotes.current_quote(s, request_id)
        if q is not None and q.approved_by is None:
            q.approved_by = by
            audit.record(s, by, "quote", q.id, "discount-approved", None, None, discount=q.discount)


@record_step(task_run_name="customer-answer-{request_id}")
def customer_answer(request_id: str, today: date | None = None) -> RequestQuote:
    """Where the quote stands with the customer; a quote past its validity expires here."""
    today = today or sla.business_today()
    with session() as s:
        request = s.get(QuoteRequest, request_id)
        q = quotes.current_quote(s, request_id)
        if request.status == QuoteState.SENT and q is not None and q.valid_until < today:
            quotes.expire(s, request, today)
        return _request_view(s, request)


def follow_up_is_due(quote: RequestQuote, today: date | None = None) -> bool:
    """A rep calls the customer from HANDOFF_QUOTE_FOLLOW_UP_DAYS before the validity end."""
    today = today or sla.business_today()
    return quote.valid_until is not None and today >= quote.valid_until - timedelta(days=settings.quote_follow_up_days)


@record_step(task_run_name="answer-from-the-call-{request_id}")
def record_the_call(request_id: str, customer_answer: str, by: str) -> RequestQuote:
    """The customer's answer as the rep heard it on the follow-up call (undecided: nothing)."""
    if customer_answer in ("accepted", "declined"):
        try:
            quotes.answer_quote(request_id, customer_answer == "accepted", by=by, announce=_announcer())
        except quotes.AnswerRefused:
            pass  # the customer answered otherwise meanwhile (CRM): that answer stands
    with session() as s:
        return _request_view(s, s.get(QuoteRequest, request_id))


@record_step(task_run_name="order-from-quote-{request_id}")
def order_from_quote(request_id: str) -> str:
    """The accepted quote's order through order intake (once: a re-run finds it stored)."""
    return quotes.order_from_quote(request_id, announce=_announcer())


def _announcer():  # noqa: ANN202
    from handoff.runtime.outbox import announce_orders

    return announce_orders
