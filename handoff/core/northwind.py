"""The Northwind trading company's database as an order feed: its customers and products
become our catalogue, its 830 orders arrive through the same intake as any other order.
`RequiredDate` is the date promised to the customer, so it becomes the order's due date.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from handoff.core.db import session
from handoff.core.intake import Announcer, IntakeResult, submit_orders
from handoff.core.models import Customer, Product
from handoff.core.settings import settings


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"Northwind database not found at {path} (set HANDOFF_NORTHWIND_PATH)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def load_catalogue(path: Path | None = None) -> tuple[int, int]:
    """Upsert Northwind's customers and products; returns (customers, products)."""
    path = path or settings.northwind_path
    with _connect(path) as conn, session() as s:
        customers = conn.execute("SELECT CustomerID, CompanyName, ContactName, Country FROM Customers").fetchall()
        for c in customers:
            _upsert(s, Customer, c["CustomerID"], name=c["CompanyName"], contact_name=c["ContactName"], country=c["Country"])
        products = conn.execute(
            "SELECT p.ProductID, p.ProductName, c.CategoryName, p.UnitPrice, p.Discontinued "
            "FROM Products p LEFT JOIN Categories c ON c.CategoryID = p.CategoryID"
        ).fetchall()
        for p in products:
            _upsert(s, Product, p["ProductID"], name=p["ProductName"], category=p["CategoryName"],
                    unit_price=float(p["UnitPrice"] or 0), discontinued=str(p["Discontinued"]) == "1")
    return len(customers), len(products)


def _upsert(s: Session, model: type, key: Any, **values: Any) -> None:
    row = s.get(model, key)
    if row is None:
        s.add(model(id=key, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)


def northwind_orders(
    path: Path | None = None, limit: int | None = None, as_of: date | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Northwind orders in intake's shape, oldest first, as (raw, data) pairs.

    `as_of` replays history as if each order arrived on that day: the order date becomes
    `as_of` and the due date keeps the lead time the customer was promised."""
    path = path or settings.northwind_path
    with _connect(path) as conn:
        sql = "SELECT OrderID, CustomerID, OrderDate, RequiredDate FROM Orders ORDER BY OrderID"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        orders = conn.execute(sql).fetchall()
        lines: dict[int, list[dict[str, Any]]] = {}
        for row in conn.execute(
            'SELECT OrderID, ProductID, UnitPrice, Quantity, Discount FROM "Order Details" ORDER BY OrderID, ProductID'
        ):
            lines.setdefault(row["OrderID"], []).append({
                "product_id": row["ProductID"], "quantity": row["Quantity"],
                "unit_price": float(row["UnitPrice"]), "discount": float(row["Discount"]),
            })
    out = []
    for o in orders:
        ordered, due = (o["OrderDate"] or "")[:10] or None, (o["RequiredDate"] or "")[:10] or None
        if as_of and ordered and due:
            lead = date.fromisoformat(due) - date.fromisoformat(ordered)
            ordered, due = as_of.isoformat(), (as_of + lead).isoformat()
        data = {
            "order_id": str(o["OrderID"]),
            "customer_id": o["CustomerID"],
            "order_date": ordered,
            "due_date": due,
            "lines": lines.get(o["OrderID"], []),
        }
        out.append((json.dumps(data), data))
    return out


def import_northwind(
    path: Path | None = None, limit: int | None = None, announce: Announcer | None = None, as_of: date | None = None
) -> IntakeResult:
    load_catalogue(path)
    return submit_orders(northwind_orders(path, limit, as_of), source="northwind", announce=announce)
