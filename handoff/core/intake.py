"""Intake: every order that reaches the back office comes through here, whatever the channel
(a JSON or CSV file, the Northwind feed, the HTTP endpoint).

The rule is that nothing a user submits is lost: a valid order is stored and announced with an
`order.received` event; an invalid one is kept whole in quarantine with a reason per field;
an order id seen before is not stored twice.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.db import session
from handoff.core.models import Customer, Order, OrderLine, OrderStatus, Quarantine, utcnow



# --- what a valid order looks like at the door -----------------------------------------------


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(description="Catalogue product id.")
    quantity: int = Field(gt=0, description="Units ordered; more than zero.")
    unit_price: float = Field(ge=0, description="Price per unit before discount.")
    discount: float = Field(0.0, ge=0, le=1, description="Share off the price, 0 to 1.")


class OrderIn(BaseModel):
    """An order as a sender submits it. A new customer may come with a name and country."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    customer_id: str = Field(min_length=1, max_length=40)
    customer_name: str | None = None
    country: str | None = None
    order_date: date
    due_date: date = Field(description="The date promised to the customer.")
    total: float | None = Field(None, ge=0, description="The order total as the sender states it.")
    lines: list[OrderLineIn] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _coerce_order_id(cls, data: Any) -> Any:
        # Order ids are often numbers in a sender's file (Northwind's are); they are ids, not
        # amounts, so take them as text.
        if isinstance(data, dict) and isinstance(data.get("order_id"), int):
            data = {**data, "order_id": str(data["order_id"])}
        return data


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as one {field, message} per bad field, in the sender's words."""
    reasons = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "order"
        value = err.get("input")
        shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
        reasons.append({"field": where, "message": f"{err['msg']}{shown}"})
    return reasons


# --- what intake tells the sender -----------------------------------------------------------


@dataclass
class Rejected:
    reference: str | None
    reasons: list[dict[str, str]]
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


# --- the door ---------------------------------------------------------------------------------


Announcer = Callable[[list[str]], object]


def submit_orders(
    raw_orders: Iterable[tuple[str, Any]], source: str, announce: Announcer | None = None
) -> IntakeResult:
    """Validate, store and announce orders. Each item is (raw text as received, parsed data).

    Every order is decided on its own: a bad one never stops the good ones in a batch. `announce`
    (handoff.runtime.outbox.announce_orders) tells the back office about the stored orders; the
    core itself knows no event bus, and an order not announced now is announced by the outbox.
    """
    result = IntakeResult()
    stored: list[Order] = []
    with session() as s:
        for raw, data in raw_orders:
            result.submitted += 1
            reference = _reference_of(data)
            if isinstance(data, dict) and "__unreadable__" in data:
                reasons = [{"field": "file", "message": data["__unreadable__"]}]
                result.quarantined.append(quarantine(s, source, raw, reasons, None))
                continue
            try:
                order_in = OrderIn.model_validate(data)
            except ValidationError as exc:
                result.quarantined.append(quarantine(s, source, raw, field_errors(exc), reference))
                continue
            existing = s.get(Order, order_in.order_id)
            if existing is not None:
                if _same_order(existing, order_in):
                    result.duplicates.append(order_in.order_id)
                else:
                    reasons = [{
                        "field": "order_id",
                        "message": f"order {order_in.order_id} was already received with "
                        "different content; the first one stands, this one is kept for review",
                    }]
                    result.quarantined.append(quarantine(s, source, raw, reasons, reference))
                continue
            stored.append(store_order(s, order_in, source))
            result.accepted.append(order_in.order_id)
    if announce and stored:
        announce([o.id for o in stored])
    return result


def quarantine(
    s: Session, source: str, raw: str, reasons: list[dict[str, str]], reference: str | None
) -> Rejected:
    q = Quarantine(source=source, raw=raw, reasons=reasons, reference=reference)
    s.add(q)
    s.flush()
    audit.record(s, "system:intake", "quarantine", q.id, "quarantined", None, "quarantined",
                 source=source, reference=reference, reasons=reasons)
    return Rejected(reference, reasons, q.id)


def store_order(s: Session, order_in: OrderIn, source: str) -> Order:
    if order_in.customer_name and s.get(Customer, order_in.customer_id) is None:
        s.add(Customer(id=order_in.customer_id, name=order_in.customer_name, country=order_in.country))
    lines = [
        OrderLine(line_no=i, product_id=l.product_id, quantity=l.quantity,
                  unit_price=l.unit_price, discount=l.discount)
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
    s.add(order)
    s.flush()
    audit.record(s, "system:intake", "order", order.id, "received", None, OrderStatus.RECEIVED,
                 source=source, total=order.total)
    return order


def unannounced_orders() -> list[str]:
    with session() as s:
        return list(s.scalars(select(Order.id).where(Order.announced_at.is_(None)).order_by(Order.received_at)))


def _reference_of(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("order_id") not in (None, ""):
        return str(data["order_id"])[:40]
    return None


def _same_order(existing: Order, new: OrderIn) -> bool:
    old_lines = [(l.product_id, l.quantity, round(l.unit_price, 4), round(l.discount, 4)) for l in existing.lines]
    new_lines = [(l.product_id, l.quantity, round(l.unit_price, 4), round(l.discount, 4)) for l in new.lines]
    return (
        existing.customer_id == new.customer_id
        and existing.order_date == new.order_date
        and existing.due_date == new.due_date
        and old_lines == new_lines
    )


# --- reading files ----------------------------------------------------------------------------

CSV_LINE_FIELDS = ("product_id", "quantity", "unit_price", "discount")
CSV_HEADER_FIELDS = ("order_id", "customer_id", "customer_name", "country", "order_date", "due_date", "total")


def read_order_file(path: Path) -> list[tuple[str, Any]]:
    """(raw, data) pairs from a JSON or CSV file. A file that cannot be read as either is one
    bad submission (its whole text is quarantined), not an error that loses it."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return parse_csv_orders(text)
    return parse_json_orders(text)


def parse_json_orders(text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [(text, {"__unreadable__": f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"})]
    if isinstance(data, dict) and isinstance(data.get("orders"), list):
        data = data["orders"]
    items = data if isinstance(data, list) else [data]
    return [(json.dumps(item, default=str), item) for item in items]


def parse_csv_orders(text: str) -> list[tuple[str, Any]]:
    """One row per order line; rows sharing an order_id make one order, in file order."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "order_id" not in reader.fieldnames:
        return [(text, {"__unreadable__": "a CSV of orders needs a header row with an order_id column"})]
    groups: dict[str, list[dict[str, str]]] = {}
    orphans: list[dict[str, str]] = []
    for row in reader:
        key = (row.get("order_id") or "").strip()
        (groups.setdefault(key, []) if key else orphans).append(row)
    out: list[tuple[str, Any]] = []
    for rows in groups.values():
        out.append((_csv_text(reader.fieldnames, rows), _order_from_rows(rows)))
    for row in orphans:
        out.append((_csv_text(reader.fieldnames, [row]), _order_from_rows([row])))
    return out


def _order_from_rows(rows: list[dict[str, str]]) -> dict[str, Any]:
    first = rows[0]
    order: dict[str, Any] = {}
    for name in CSV_HEADER_FIELDS:
        value = (first.get(name) or "").strip()
        if value:
            order[name] = value
    extra = set(first) - set(CSV_HEADER_FIELDS) - set(CSV_LINE_FIELDS) - {None}
    for name in sorted(extra):
        if (first.get(name) or "").strip():
            order[name] = first[name]  # unknown columns are reported, not ignored
    order["lines"] = [
        {k: (row.get(k) or "").strip() for k in CSV_LINE_FIELDS if (row.get(k) or "").strip() != ""}
        for row in rows
    ]
    return order


def _csv_text(fieldnames: Iterable[str], rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fieldnames), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
