"""A quotation's records: its state, the customer's answer, and the order an accepted quote becomes.

The state lives on the request (`QuoteRequest.status`) and on its current quote version
together; `set_state` moves both in one transaction, with an audit event. What the quotation
flow does in between (pricing, approval, sending) is the procedure, in flows/quotation.py.

The customer's answer arrives from the CRM (`POST /quotes/{id}/answer`) or the CLI
(`handoff quotes answer`). The database decides between answers that arrive together: the
first conditional UPDATE from `sent` wins, and every later answer is told what the quote is
now. The same acceptance twice, from any number of processes, makes one order: the order's id
is derived from the request's (`RFQ-<request id>`) and goes through order intake, which stores
an id once and reports a re-send as a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from typing import cast

from sqlalchemy import CursorResult
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core import sla
from handoff.core.db import session
from handoff.core.intake.contract import check_order
from handoff.core.intake.door import QUOTE_ORDER_PREFIX
from handoff.core.intake.door import QUOTE_SOURCE
from handoff.core.intake.door import Announcer
from handoff.core.intake.door import submit_orders
from handoff.core.intake.text import quote as quoted
from handoff.core.intake.text import unprintable_characters
from handoff.core.models import Quote
from handoff.core.models import QuoteRequest
from handoff.core.models import QuoteState
from handoff.core.models import WorkItem
from handoff.core.models import utcnow
from handoff.core.routing import lifecycle
from handoff.core.routing.claims import one_router_at_a_time

ORDER_PREFIX = QUOTE_ORDER_PREFIX
FOLLOW_UP_CALL = "quote-follow-up"  # the work type of the call after the offer (flows/quotation.py)


def follow_up_call_key(quote_id: str) -> str:
    """The step key of the call after the offer of this quote version: the flow asks under it,
    and an answer from elsewhere finds the open call by it."""
    return f"{FOLLOW_UP_CALL}-{quote_id}"


class UnknownQuote(LookupError):
    """No request for quotation has this id."""


class AnswerRefused(Exception):
    """The quote cannot take this answer (declined, expired, or not sent yet); says why."""


@dataclass(frozen=True)
class Answered:
    request_id: str
    state: str  # "accepted" | "declined"
    order_id: str | None  # the order an accepted quote became
    again: bool  # the quote had this answer already: nothing new was recorded


def order_id_for(request_id: str) -> str:
    """The order an accepted quote becomes: one id per request, so acceptance is idempotent."""
    return f"{ORDER_PREFIX}{request_id}"


def quote_id_for(request_id: str, version: int) -> str:
    return f"{ORDER_PREFIX}{request_id}-v{version}"


def current_quote(s: Session, request_id: str) -> Quote | None:
    """The request's latest version, if it was priced."""
    return s.scalar(select(Quote).where(Quote.request_id == request_id).order_by(Quote.version.desc()).limit(1))


def set_state(s: Session, request: QuoteRequest, state: QuoteState, by: str, **details: Any) -> None:
    """Move the quotation (the request and its current version) to `state`, with an audit event."""
    before = request.status
    request.status = state
    quote = current_quote(s, request.id)
    if quote is not None:
        quote.status = state
    if state == QuoteState.SENT and request.sent_at is None:
        request.sent_at = utcnow()
    audit.record(s, by, "quote_request", request.id, f"status:{state}", before, state, **details)


def _take_write_lock(s: Session) -> None:
    """SQLite: take the write lock before reading, so the read and the UPDATE see one database.
    PostgreSQL locks the rows instead, as they are read (FOR UPDATE, by the callers): the expiry
    read a quote as sent, an acceptance committed meanwhile (its order made), and the expiry then
    wrote "expired" over "accepted"."""
    if s.get_bind().dialect.name == "sqlite":
        s.execute(text("UPDATE quote_requests SET id = id WHERE 0"))


# --- the customer's answer ------------------------------------------------------------------------


def answer_quote(
    request_id: str, accept: bool, by: str, announce: Announcer | None = None, today: date | None = None
) -> Answered:
    """Record the customer's answer to a sent quote; an acceptance becomes an order through intake.

    The same answer again (or at the same moment from another process) records nothing new and
    is told the same order. Another answer after the first is refused with what the quote is;
    so is an answer to a quote not sent yet, or past its validity (which expires it)."""
    wanted = QuoteState.ACCEPTED if accept else QuoteState.DECLINED
    today = today or sla.business_today()
    with session() as s:
        _take_write_lock(s)
        # No stored id holds an unprintable character (intake refuses them), and PostgreSQL
        # cannot even be asked about a NUL: a 500 for POST /quotes/a%00b/answer.
        request = None if unprintable_characters(request_id) else s.get(QuoteRequest, request_id, with_for_update=True)
        if request is None:
            raise UnknownQuote(f"no request for quotation {quoted(request_id)}")  # quoted short, never whole
        quote = current_quote(s, request_id)
        if request.status == QuoteState.SENT and quote is not None and quote.valid_until < today:
            expire(s, request, today)
        won = 0
        if request.status == QuoteState.SENT and _a_call_answer_on_its_way(s, request_id):
            raise AnswerRefused(
                f"quote {request_id}: a rep has just sent the customer's answer from the follow-up call; "
                "it was given first and is being recorded, so this answer is not"
            )
        if request.status == QuoteState.SENT and wanted == QuoteState.ACCEPTED and quote is not None:
            _, problems = check_order(_order_data(request, quote, today))
            if problems:  # accepted, it would be stuck with no order: refused while it can still be re-quoted
                reasons = "; ".join(f"{r['field']}: {r['message']}" for r in problems)
                raise AnswerRefused(f"quote {request_id} cannot become an order ({reasons}); ask sales for a new quote")
        if request.status == QuoteState.SENT:
            won = cast(
                CursorResult,
                s.execute(
                    update(QuoteRequest)
                    .where(QuoteRequest.id == request_id, QuoteRequest.status == QuoteState.SENT)
                    .values(status=wanted, answered_at=utcnow(), answered_by=by)
                    .execution_options(synchronize_session=False)
                ),
            ).rowcount
            s.refresh(request)  # lost the UPDATE to another process: read what it made of the quote
            if won:
                if quote is not None:
                    quote.status = wanted
                audit.record(s, by, "quote_request", request_id, f"status:{wanted}", QuoteState.SENT, wanted)
                cancel_open_calls(s, request_id, f"the customer {wanted} the quote (recorded by {by})")
        state, answered_at, answered_by = request.status, request.answered_at, request.answered_by
    if state != wanted:
        raise AnswerRefused(refusal(request_id, state, wanted, answered_at, answered_by))
    order_id = order_from_quote(request_id, announce) if wanted == QuoteState.ACCEPTED else None
    return Answered(request_id, str(wanted), order_id, again=not won)


def _open_calls(s: Session, request_id: str) -> list[WorkItem]:
    """The follow-up calls still open for any version of the request's quote, as they stand
    with this transaction holding the routing turn: every writer of work items takes that turn
    first (PostgreSQL: migration 0003's trigger; SQLite: one writer), so none can change them,
    or mark an answer on its way, until this transaction ends."""
    one_router_at_a_time(s)
    quote_ids = s.scalars(select(Quote.id).where(Quote.request_id == request_id)).all()
    step_keys = [follow_up_call_key(quote_id) for quote_id in quote_ids]
    return list(
        s.scalars(select(WorkItem).where(WorkItem.step_key.in_(step_keys), WorkItem.state.in_(lifecycle.ACTIVE)))
    )


def _a_call_answer_on_its_way(s: Session, request_id: str) -> bool:
    """A rep has sent the customer's answer from the follow-up call, and its run has not
    recorded it yet (a suspended run can take minutes to resume): that answer was first."""
    return any(lifecycle.answer_in_flight(call) for call in _open_calls(s, request_id))


def cancel_open_calls(s: Session, request_id: str, reason: str) -> list[int]:
    """The customer has answered: a follow-up call still open to ask them is no longer needed.
    It leaves the rep's worklist at once (and frees their capacity); sla-watch ends the run that
    waited on it (tasks/stranded.py). A rep who completed the call first keeps their answer."""
    return [
        call.id for call in _open_calls(s, request_id) if lifecycle.cancel_item(s, call.id, "system:quotation", reason)
    ]


def refusal(request_id: str, state: str, wanted: str, at: Any, by: str | None) -> str:
    when = f" on {at:%Y-%m-%d %H:%M} UTC" if at else ""
    who = f" (recorded by {by})" if by else ""
    verb, done = ("accept", "accepted") if wanted == QuoteState.ACCEPTED else ("decline", "declined")
    if state in (QuoteState.ACCEPTED, QuoteState.DECLINED):
        return f"quote {request_id} was already {state}{when}{who}; it cannot be {done} now"
    if state == QuoteState.EXPIRED:
        return f"quote {request_id} expired{when} at the end of its validity; it cannot be {done} (ask for a new quote)"
    return f"quote {request_id} has not been sent to the customer yet (it is {state}); there is nothing to {verb}"


def order_from_quote(request_id: str, announce: Announcer | None = None) -> str:
    """The order an accepted quote becomes, through order intake: the quote's lines at the quoted
    prices, due when the customer wanted delivery. Idempotent: a second call finds the order
    stored (intake's duplicate) and links it again. Returns the order's id."""
    order_id = order_id_for(request_id)
    with session() as s:
        request = s.get(QuoteRequest, request_id)
        quote = current_quote(s, request_id)
        if request is None or quote is None or request.status != QuoteState.ACCEPTED:
            raise AnswerRefused(f"quote {request_id} is not accepted; it does not become an order")
        data = _order_data(request, quote, sla.business_today(request.answered_at))  # dated the day of the yes
    result = submit_orders([(json.dumps(data), data)], source=f"{QUOTE_SOURCE}{request_id}", announce=announce)
    if result.quarantined:
        reasons = "; ".join(f"{r['field']}: {r['message']}" for q in result.quarantined for r in q.reasons)
        raise AnswerRefused(f"the order for accepted quote {request_id} was refused by order intake: {reasons}")
    with session() as s:
        s.execute(update(QuoteRequest).where(QuoteRequest.id == request_id).values(order_id=order_id))
        s.execute(update(Quote).where(Quote.id == quote.id).values(order_id=order_id))
    return order_id


def _order_data(request: QuoteRequest, quote: Quote, day: date) -> dict[str, Any]:
    """The order an accepted quote becomes, as order intake takes it: the quote's lines at the
    quoted prices, ordered on `day`, due when the customer wanted delivery."""
    return {
        "order_id": order_id_for(request.id),
        "customer_id": request.customer_id,
        "order_date": day.isoformat(),
        "due_date": request.due_date.isoformat(),
        "total": quote.total,
        "lines": [
            {
                "product_id": l["product_id"],
                "quantity": l["quantity"],
                "unit_price": l["unit_price"],
                "discount": l["discount"],
            }
            for l in quote.lines
        ],
    }


def accepted_quote_of(s: Session, order_id: str) -> Quote | None:
    """The accepted quote an order came from, if it came from one."""
    return s.scalar(
        select(Quote).where(
            Quote.order_id == order_id, Quote.request_id.is_not(None), Quote.status == QuoteState.ACCEPTED
        )
    )


# --- the end of validity ----------------------------------------------------------------------------


def expire(s: Session, request: QuoteRequest, today: date) -> None:
    """The quote's validity ended with no answer from the customer."""
    request.answered_at, request.answered_by = utcnow(), "system:expiry"
    set_state(s, request, QuoteState.EXPIRED, "system:quotation", as_of=today.isoformat())


def expire_due_quotes(today: date | None = None) -> list[str]:
    """Quotations still with the customer past their validity end expire; returns their ids.
    (Orders' own quotes, which have no request, expire as before: tasks/quotes.expire_quotes.)"""
    today = today or sla.business_today()
    with session() as s:
        _take_write_lock(s)
        expired = []
        for request in s.scalars(
            select(QuoteRequest)
            .join(Quote, Quote.request_id == QuoteRequest.id)
            .where(QuoteRequest.status == QuoteState.SENT, Quote.status == QuoteState.SENT, Quote.valid_until < today)
            .with_for_update(of=QuoteRequest)  # an answer committed meanwhile: its row is read again, not sent
        ):
            expire(s, request, today)
            expired.append(request.id)
        return expired
