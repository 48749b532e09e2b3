"""The Northwind trading company's database as an order feed: its customers and products
become our catalogue, its 830 orders arrive through the same intake as any other order.
`RequiredDate` is the date promised to the customer, so it becomes the order's due date.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from handoff.core.db import session
from handoff.core.intake import Announcer
from handoff.core.intake import IntakeResult
from handoff.core.intake import Submission
from handoff.core.intake import submit_orders
from handoff.core.intake.contract import MAX_PRODUCT_ID
from handoff.core.intake.contract import MAX_UNIT_PRICE
from handoff.core.intake.door import quarantine_alone
from handoff.core.intake.text import quote
from handoff.core.intake.text import unprintable_characters
from handoff.core.models import Customer
from handoff.core.models import Product
from handoff.core.settings import settings


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"Northwind database not found at {path} (set HANDOFF_NORTHWIND_PATH)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def load_catalogue(path: Path | None = None) -> tuple[int, int]:
    """Upsert Northwind's customers and products; returns (customers, products) taken.

    A source row that cannot be a customer or a product (no name, a price that is not a number)
    is quarantined with its reason, not allowed to stop the import."""
    path = path or settings.northwind_path
    bad: list[tuple[CatalogueSource, dict[str, Any], str, str]] = []
    taken = [0, 0]
    with _connect(path) as conn, session() as s:
        for n, source in enumerate(CATALOGUE):
            for r in conn.execute(source.query):
                row = dict(r)
                problem = source.problem(row)
                if problem:
                    bad.append((source, row, *problem))
                    continue
                _upsert(s, source.model, row[source.key], **source.fields(row))
                taken[n] += 1
    for source, row, where, why in bad:
        quarantine_alone(
            f"northwind:{source.kind}s", _raw(row), [{"field": where, "message": why}], str(row.get(source.key))
        )
    return taken[0], taken[1]


def _customer_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["CompanyName"], "contact_name": _text(row["ContactName"]), "country": _text(row["Country"])}


def _product_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["ProductName"],
        "category": _text(row["CategoryName"]),
        "unit_price": float(row["UnitPrice"] or 0),
        "discontinued": str(row["Discontinued"]) == "1",
    }


def _customer_problem(row: dict[str, Any]) -> tuple[str, str] | None:
    cid, name = row["CustomerID"], row["CompanyName"]
    if not isinstance(cid, str) or not cid.strip() or len(cid) > 40 or unprintable_characters(cid):
        return "CustomerID", f"must be text of 1 to 40 printable characters (got {quote(cid)})"
    if not isinstance(name, str) or not name.strip() or unprintable_characters(name):
        return "CompanyName", f"must be printable text (got {quote(name)})"
    return None


def _product_problem(row: dict[str, Any]) -> tuple[str, str] | None:
    pid, name, price = row["ProductID"], row["ProductName"], row["UnitPrice"]
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid <= MAX_PRODUCT_ID:
        return "ProductID", f"must be a whole number from 1 to {MAX_PRODUCT_ID} (got {quote(pid)})"
    if not isinstance(name, str) or not name.strip() or unprintable_characters(name):
        return "ProductName", f"must be printable text (got {quote(name)})"
    if price is not None and (not isinstance(price, (int, float)) or not 0 <= price <= MAX_UNIT_PRICE):
        return "UnitPrice", f"must be a number from 0 to {MAX_UNIT_PRICE:,.0f} (got {quote(price)})"
    return None


@dataclass(frozen=True)
class CatalogueSource:
    """One Northwind table the catalogue takes: how to read it, check a row, and store it."""

    kind: str
    query: str
    key: str
    problem: Callable[[dict[str, Any]], tuple[str, str] | None]
    model: type
    fields: Callable[[dict[str, Any]], dict[str, Any]]


CATALOGUE = (
    CatalogueSource(
        "customer",
        "SELECT CustomerID, CompanyName, ContactName, Country FROM Customers",
        "CustomerID",
        _customer_problem,
        Customer,
        _customer_fields,
    ),
    CatalogueSource(
        "product",
        "SELECT p.ProductID, p.ProductName, c.CategoryName, p.UnitPrice, p.Discontinued "
        "FROM Products p LEFT JOIN Categories c ON c.CategoryID = p.CategoryID",
        "ProductID",
        _product_problem,
        Product,
        _product_fields,
    ),
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and not unprintable_characters(value) else None


def _raw(row: dict[str, Any]) -> bytes:
    return json.dumps(row, default=repr, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _upsert(s: Session, model: type, key: Any, **values: Any) -> None:
    row = s.get(model, key)
    if row is None:
        s.add(model(id=key, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)


def northwind_orders(path: Path | None = None, limit: int | None = None, as_of: date | None = None) -> list[Submission]:
    """Northwind orders in intake's shape, oldest first, one submission each.

    `as_of` replays history as if each order arrived on that day: the order date becomes
    `as_of` and the due date keeps the lead time the customer was promised. Values are passed
    on as the source holds them (SQLite keeps any type in any column): a malformed row
    becomes a quarantined order with its reasons, not an error that stops the import."""
    path = path or settings.northwind_path
    with _connect(path) as conn:
        sql = "SELECT OrderID, CustomerID, OrderDate, RequiredDate FROM Orders ORDER BY OrderID"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        orders = [dict(o) for o in conn.execute(sql)]
        lines: dict[Any, list[dict[str, Any]]] = {}
        for row in conn.execute(
            'SELECT OrderID, ProductID, UnitPrice, Quantity, Discount FROM "Order Details" ORDER BY OrderID, ProductID'
        ):
            lines.setdefault(row["OrderID"], []).append(
                {
                    "product_id": row["ProductID"],
                    "quantity": row["Quantity"],
                    "unit_price": _amount(row["UnitPrice"]),
                    "discount": _amount(row["Discount"]),
                }
            )
    out = []
    for o in orders:
        ordered, due = _day(o["OrderDate"]), _day(o["RequiredDate"])
        if as_of and _is_iso_day(ordered) and _is_iso_day(due):
            lead = date.fromisoformat(due) - date.fromisoformat(ordered)
            ordered, due = as_of.isoformat(), (as_of + lead).isoformat()
        order_id = o["OrderID"]
        data = {
            "order_id": str(order_id) if isinstance(order_id, int) and not isinstance(order_id, bool) else order_id,
            "customer_id": o["CustomerID"],
            "order_date": ordered,
            "due_date": due,
            "lines": lines.get(order_id, []),
        }
        raw = json.dumps(data, default=repr, ensure_ascii=False).encode("utf-8", "surrogatepass")
        out.append(Submission(raw, data, reference=data["order_id"] if isinstance(data["order_id"], str) else None))
    return out


def _amount(value: Any) -> Any:
    # Northwind keeps money as NUMERIC: SQLite hands back int or float; a whole price is a price
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _day(value: Any) -> Any:
    # "1996-07-04 00:00:00.000" -> "1996-07-04"; anything else is passed on for the contract to name
    return value[:10] if isinstance(value, str) and len(value) >= 10 and value[10:11] in ("", " ", "T") else value


def _is_iso_day(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(date.fromisoformat(value)) and len(value) == 10
    except ValueError:
        return False


def import_northwind(
    path: Path | None = None, limit: int | None = None, announce: Announcer | None = None, as_of: date | None = None
) -> IntakeResult:
    load_catalogue(path)
    return submit_orders(northwind_orders(path, limit, as_of), source="northwind", announce=announce)
