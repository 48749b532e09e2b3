"""The door: every submission ends accepted, quarantined with reasons, or a reported duplicate.

Each order is decided on its own: a bad one is quarantined beside the good ones, and one the
database refuses (a race lost, a value it will not hold) sends its few neighbours in the same
transaction round again, each in a transaction of its own, so it never takes them with it. The database decides races: two processes storing the
same order id at once both try to insert it; the loser's insert fails on the primary key, and
it looks again, finding the winner's order: a duplicate if the content is the same, a
conflict (quarantined, with what differs) if not. On SQLite the write lock is taken before the
look (a no-op UPDATE), so the look and the insert see the same database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.db import session
from handoff.core.intake.contract import ORDER_FORM
from handoff.core.intake.contract import CustomerDocument
from handoff.core.intake.contract import Form
from handoff.core.intake.contract import OrderIn
from handoff.core.intake.contract import Reason
from handoff.core.intake.contract import check as check_contract
from handoff.core.intake.reading import Submission
from handoff.core.intake.text import clip
from handoff.core.intake.text import printable
from handoff.core.intake.text import quote
from handoff.core.models import AuditEvent
from handoff.core.models import Base
from handoff.core.models import Customer
from handoff.core.models import Order
from handoff.core.models import OrderLine
from handoff.core.models import OrderStatus
from handoff.core.models import Quarantine

log = logging.getLogger(__name__)

Announcer = Callable[[list[str]], object]
DISPLAY_CHARS = 1_000_000  # the quarantine's text column; raw_bytes keeps everything
STORE_ATTEMPTS = 3
CHUNK = 50  # orders decided in one transaction, unless the database refuses one of them


# --- what intake tells the sender -----------------------------------------------------------


@dataclass
class Rejected:
    reference: str | None
    reasons: list[Reason]
    quarantine_id: int


@dataclass
class IntakeResult:
    submitted: int = 0
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    quarantined: list[Rejected] = field(default_factory=list)

    def merge(self, other: IntakeResult) -> None:
        self.submitted += other.submitted
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined


class IntakeInterrupted(Exception):
    """The database could not be reached part-way: what was decided before is in `result`
    (and stored); the rest of the batch was not taken and must be sent again."""

    def __init__(self, result: IntakeResult, cause: Exception) -> None:
        super().__init__(f"the database could not be reached after {result.submitted} orders were decided: {cause}")
        self.result = result


# --- the door ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """What the door does with one kind of document (orders, requests for quotation) once it
    keeps its contract: the table whose primary key is the sender's id, how to store one, and
    how one stored before reads as the contract's content (to compare a re-send with)."""

    form: Form
    record: type[Base]  # Order, QuoteRequest
    entity: str  # the audit trail's entity, whose "received" event keeps the content as received
    store: Callable[[Session, Any, str], object]
    content_as_stored: Callable[[Any], dict[str, Any]]


def submit_orders(
    submissions: Iterable[Submission | tuple[Any, Any]], source: str, announce: Announcer | None = None
) -> IntakeResult:
    """Validate, store and announce orders, each decided on its own.

    Each item is a `Submission` (reading.py) or, for callers that parsed the order themselves,
    a (raw text or bytes, data) pair. `announce` (handoff.runtime.outbox.announce_orders) tells
    the back office about the stored orders; the core knows no event bus, and an order not
    announced now is announced by the outbox later.
    """
    return submit(ORDERS, submissions, source, announce)


def submit(
    kind: Kind, submissions: Iterable[Submission | tuple[Any, Any]], source: str, announce: Announcer | None = None
) -> IntakeResult:
    """The door for any kind: validate, store (or quarantine, or report a duplicate) and announce."""
    result = IntakeResult()
    source = clip(source, 200)
    checked: list[Checked] = []
    for item in submissions:
        checked.append(_reserved_ids_kept(check(_as_submission(item, kind.form), kind), kind, source))
        if len(checked) == CHUNK:
            _decide_chunk(checked, source, result, kind)
            checked = []
    if checked:
        _decide_chunk(checked, source, result, kind)
    if announce and result.accepted:
        try:
            announce(list(result.accepted))
        except Exception:  # they are stored; the outbox announces them later
            log.exception("could not announce %d stored %s", len(result.accepted), kind.form.plural)
    return result


@dataclass(frozen=True)
class Stored:
    """An order that is in the database: stored now (accepted) or before (a duplicate)."""

    order_id: str
    accepted: bool


@dataclass
class Checked:
    """A submission held against the contract: the order (or request) if it keeps it, else the reasons."""

    submission: Submission
    order: Any  # OrderIn, QuoteRequestIn, or None
    reasons: list[Reason]


MAX_REASONS = 20  # listed per submission; the rest are counted


def check(sub: Submission, kind: Kind | None = None) -> Checked:
    form = (kind or ORDERS).form
    reasons = list(sub.problems)
    order_in = None
    if sub.data is not None or not reasons:
        order_in, field_reasons = check_contract(form, sub.data)
        reasons += field_reasons
    return Checked(sub, None if reasons else order_in, _listed(reasons))


def _listed(reasons: list[Reason]) -> list[Reason]:
    """The first MAX_REASONS reasons and a count of the rest. They are stored twice (the
    quarantine, its audit event) and sent back: one 1 MB object of 100,000 unknown keys made
    100,005 of them, 16 MB. The sender needs the first few to fix the document."""
    if len(reasons) <= MAX_REASONS:
        return reasons
    more = len(reasons) - MAX_REASONS
    return [*reasons[:MAX_REASONS], {"field": "document", "message": f"and {more:,} more problems like these"}]


QUOTE_ORDER_PREFIX = "RFQ-"  # the orders accepted quotes become (handoff.core.quotes.order_id_for)
QUOTE_SOURCE = "quote:"  # the source they are submitted with


def _reserved_ids_kept(c: Checked, kind: Kind, source: str) -> Checked:
    """An order sent in under an id kept for an accepted quote's order is refused: it took that
    id first, and the customer's acceptance then found its order id taken, leaving the quote
    accepted with no order."""
    order_id = getattr(c.order, "order_id", "")
    if kind.entity != "order" or not order_id.upper().startswith(QUOTE_ORDER_PREFIX) or source.startswith(QUOTE_SOURCE):
        return c
    why = f"order ids starting {QUOTE_ORDER_PREFIX!r} are kept for the orders accepted quotes become"
    return Checked(c.submission, None, [{"field": "order_id", "message": why}])


def _decide_chunk(chunk: list[Checked], source: str, result: IntakeResult, kind: Kind) -> None:
    """Decide a few orders in one transaction (a commit per order costs a disk flush each);
    if the database refuses anything in it — a race lost to another process, a value it will
    not hold — the whole chunk is rolled back and each order is decided in its own."""
    try:
        with session() as s:
            _take_write_lock(s, kind)
            outcomes = [_decide_in(s, c, source, kind) for c in chunk]
    except DBAPIError:
        outcomes = []
        for c in chunk:
            try:
                outcomes.append(decide(c, source, kind))
            except OperationalError as exc:
                _record(result, outcomes)
                raise IntakeInterrupted(result, exc) from exc
    _record(result, outcomes)


def _record(result: IntakeResult, outcomes: list[Rejected | Stored]) -> None:
    for outcome in outcomes:
        result.submitted += 1
        if isinstance(outcome, Rejected):
            result.quarantined.append(outcome)
        elif outcome.accepted:
            result.accepted.append(outcome.order_id)
        else:
            result.duplicates.append(outcome.order_id)


def _decide_in(s: Session, c: Checked, source: str, kind: Kind) -> Rejected | Stored:
    if c.order is None:
        return quarantine(s, source, c.submission.raw, c.reasons, c.submission.reference)
    return _store_or_compare(s, c.submission, c.order, source, kind)


def decide(c: Checked, source: str, kind: Kind | None = None) -> Rejected | Stored:
    """One order's outcome in its own transaction; raises only when the database cannot be reached."""
    kind = kind or ORDERS
    sub, order_in = c.submission, c.order
    noun = kind.form.noun
    if order_in is None:
        return quarantine_alone(source, sub.raw, c.reasons, sub.reference)
    for attempt in range(STORE_ATTEMPTS):
        try:
            with session() as s:
                _take_write_lock(s, kind)
                return _store_or_compare(s, sub, order_in, source, kind)
        except IntegrityError:
            # another process stored this order (or its new customer) meanwhile: look again
            log.info("%s %s: another process stored it (or its customer) first; looking again", noun, sub.reference)
            continue
        except OperationalError:
            if attempt + 1 == STORE_ATTEMPTS:
                raise
        except DBAPIError as exc:
            reason = {"field": noun, "message": f"the database refused it: {clip(str(exc.orig), 120)}"}
            return quarantine_alone(source, sub.raw, [reason], sub.reference)
    reason = {"field": noun, "message": f"could not be stored after {STORE_ATTEMPTS} attempts"}
    return quarantine_alone(source, sub.raw, [reason], sub.reference)


def _store_or_compare(s: Session, sub: Submission, order_in: Any, source: str, kind: Kind) -> Rejected | Stored:
    key = getattr(order_in, kind.form.id_field)
    existing: Any = s.get(kind.record, key)
    if existing is None:
        kind.store(s, order_in, source)
        return Stored(key, accepted=True)
    differences = differences_from_first(s, existing, order_in, kind)
    if not differences:
        return Stored(key, accepted=False)
    first = {
        "field": kind.form.id_field,
        "message": f"{kind.form.noun} {key} was already received "
        f"({existing.received_at:%Y-%m-%d %H:%M} from {existing.source}) with different content; "
        "the first one stands, this one is kept for review",
    }
    return quarantine(s, source, sub.raw, [first, *differences], key)


def _take_write_lock(s: Session, kind: Kind | None = None) -> None:
    # SQLite: a transaction that reads first and writes later fails ("database is locked") if
    # another process wrote in between; a write first makes it wait its turn instead.
    if s.get_bind().dialect.name == "sqlite":
        s.execute(text(f"UPDATE {(kind or ORDERS).record.__tablename__} SET id = id WHERE 0"))


def store_order(s: Session, order_in: OrderIn, source: str) -> Order:
    add_new_customer(s, order_in)
    lines = [
        OrderLine(line_no=i, product_id=l.product_id, quantity=l.quantity, unit_price=l.unit_price, discount=l.discount)
        for i, l in enumerate(order_in.lines, start=1)
    ]
    order = Order(
        id=order_in.order_id,
        customer_id=order_in.customer_id,
        order_date=order_in.order_date,
        due_date=order_in.due_date,
        source=source,
        stated_total=order_in.total,
        total=round(sum(l.amount for l in lines), 2),
        status=OrderStatus.RECEIVED,
        lines=lines,
    )
    keep_as_received(s, ORDERS, order, order_in, source, total=order.total)
    return order


# --- what storing any kind does -------------------------------------------------------------


def add_new_customer(s: Session, document: CustomerDocument) -> None:
    """A document may name a customer not known yet (a name, a country): they become one."""
    if document.customer_name and s.get(Customer, document.customer_id) is None:
        s.add(Customer(id=document.customer_id, name=document.customer_name, country=document.country))
        s.flush()


def keep_as_received(
    s: Session, kind: Kind, record: Any, document: CustomerDocument, source: str, **details: Any
) -> None:
    """Store the record (an Order, a QuoteRequest) and its "received" audit event, which keeps
    the document as received, so that a re-send is compared with what was sent, not with what
    the records made of it (a name for a customer already known is not stored on the order)."""
    s.add(record)
    s.flush()
    audit.record(
        s,
        "system:intake",
        kind.entity,
        record.id,
        "received",
        None,
        record.status,
        source=source,
        **details,
        content=document.content(),
    )


# --- what differs -------------------------------------------------------------------------------


def differences_from_first(s: Session, existing: Any, new: Any, kind: Kind | None = None) -> list[Reason]:
    """One reason per field in which `new` differs from the order (or request) first received with its id."""
    kind = kind or ORDERS
    first = s.scalar(
        select(AuditEvent.details)
        .where(AuditEvent.entity == kind.entity, AuditEvent.entity_id == existing.id, AuditEvent.action == "received")
        .order_by(AuditEvent.id)
        .limit(1)
    )
    was = (first or {}).get("content") or kind.content_as_stored(existing)
    now = new.content()
    diffs = []
    for name in kind.form.fields:
        if name in (kind.form.id_field, "lines"):
            continue
        if name in was and was[name] != now[name]:
            diffs.append(_differs(name, was[name], now[name]))
    old_lines, new_lines = was["lines"], now["lines"]
    if len(old_lines) != len(new_lines):
        diffs.append({"field": "lines", "message": f"was {len(old_lines)} lines, now {len(new_lines)}"})
    for n, (a, b) in enumerate(zip(old_lines, new_lines)):
        for name in kind.form.line_fields:
            if a[name] != b[name]:
                diffs.append(_differs(f"lines.{n}.{name}", a[name], b[name]))
    return diffs


def _differs(name: str, was: Any, now: Any) -> Reason:
    return {"field": name, "message": f"was {quote(was)}, now {quote(now)}"}


def content_as_stored(order: Order) -> dict[str, Any]:
    """The order as the database holds it, in the contract's shape: what an order stored before
    intake kept what it received is compared with, and what a re-check of the database reads."""
    return {
        "order_id": order.id,
        "customer_id": order.customer_id,
        "order_date": str(order.order_date),
        "due_date": str(order.due_date),
        "total": order.stated_total,
        "lines": [
            {"product_id": l.product_id, "quantity": l.quantity, "unit_price": l.unit_price, "discount": l.discount}
            for l in order.lines
        ],
    }


# --- quarantine -------------------------------------------------------------------------------


def quarantine_alone(source: str, raw: bytes, reasons: list[Reason], reference: str | None) -> Rejected:
    """Quarantine in a transaction of its own."""
    with session() as s:
        return quarantine(s, source, raw, reasons, reference)


def quarantine(s: Session, source: str, raw: bytes | str, reasons: list[Reason], reference: str | None) -> Rejected:
    """Keep refused input: its bytes exactly as received, a printable text of them to read, and
    the reasons (made printable: a sender's key may hold a terminal escape)."""
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    shown = printable(
        raw_bytes[: DISPLAY_CHARS * 4].decode("utf-8", "backslashreplace")[:DISPLAY_CHARS], keep_lines=True
    )
    reasons = [{"field": printable(r["field"]), "message": printable(r["message"])} for r in reasons]
    reference = clip(reference, 40) if reference else None
    q = Quarantine(source=source, raw=shown, raw_bytes=raw_bytes, reasons=reasons, reference=reference)
    s.add(q)
    s.flush()
    audit.record(
        s,
        "system:intake",
        "quarantine",
        q.id,
        "quarantined",
        None,
        "quarantined",
        source=source,
        reference=reference,
        reasons=reasons,
    )
    return Rejected(reference, reasons, q.id)


def unannounced_orders() -> list[str]:
    with session() as s:
        return list(s.scalars(select(Order.id).where(Order.announced_at.is_(None)).order_by(Order.received_at)))


def _as_submission(item: Submission | tuple[Any, Any], form: Form = ORDER_FORM) -> Submission:
    if isinstance(item, Submission):
        return item
    raw, data = item
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if isinstance(data, dict) and "__unreadable__" in data:
        return Submission(raw_bytes, None, [{"field": "document", "message": str(data["__unreadable__"])}])
    from handoff.core.intake.reading import _reference_of
    from handoff.core.intake.reading import _repeated_keys

    return Submission(raw_bytes, data, _repeated_keys(data), _reference_of(data, form))


ORDERS = Kind(ORDER_FORM, Order, "order", store_order, content_as_stored)
