"""What the stand-in systems know before any order arrives: Northwind's customers and products.

Read once from the Northwind SQLite file (env `HANDOFF_NORTHWIND_PATH`, default
`<repo parent>/shared/data/northwind.sqlite`, the same default as `handoff.core.settings`).

Deterministic rules, so tests and demos see the same world every run (no random numbers; a
SHA-256 of the id picks the bucket):
- credit limit: one of `CREDIT_LIMITS`, picked by the customer id;
- credit hold: about `CREDIT_HOLD_PERCENT` % of customers (see `Reference.on_hold()` for who);
- technician visit: products in `MANUAL_CATEGORIES` cannot be provisioned remotely — the
  provisioning job waits for a technician's visit (`/provisioning-jobs/{id}/complete`);
- activation check: about `verify_failure_share` of resources fail their first verification
  (decided in `sandbox.activation` with `bucket()` below).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

NORTHWIND_PATH_ENV = "HANDOFF_NORTHWIND_PATH"
DEFAULT_NORTHWIND_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "northwind.sqlite"

CREDIT_LIMITS = (3_000.0, 5_000.0, 10_000.0, 20_000.0)
CREDIT_HOLD_PERCENT = 6
# Chilled goods: installing the cold-room kit needs a technician on site.
MANUAL_CATEGORIES = frozenset({"Meat/Poultry", "Seafood"})


def bucket(salt: str, value: object, buckets: int = 100) -> int:
    """A stable bucket 0..buckets-1 for a value (unlike hash(), the same in every process)."""
    digest = hashlib.sha256(f"{salt}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    company_name: str
    contact_name: str | None
    contact_title: str | None
    city: str | None
    country: str | None
    phone: str | None
    credit_limit: float
    credit_status: str  # "ok" | "hold"


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    name: str
    category: str
    unit_price: float
    discontinued: bool
    needs_technician: bool


@dataclass(frozen=True, slots=True)
class Reference:
    customers: dict[str, Customer]
    products: dict[int, Product]

    def on_hold(self) -> list[str]:
        """Ids of the customers on credit hold."""
        return sorted(c.id for c in self.customers.values() if c.credit_status == "hold")


def northwind_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get(NORTHWIND_PATH_ENV) or DEFAULT_NORTHWIND_PATH)


def load_reference(path: str | Path | None = None, manual_categories: frozenset[str] = MANUAL_CATEGORIES) -> Reference:
    """Customers and products from the Northwind file, with the rules above applied."""
    source = northwind_path(path)
    if not source.exists():
        raise FileNotFoundError(f"Northwind database not found at {source} (set {NORTHWIND_PATH_ENV})")
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        customers = {
            row[0]: Customer(
                id=row[0],
                company_name=row[1],
                contact_name=row[2],
                contact_title=row[3],
                city=row[4],
                country=row[5],
                phone=row[6],
                credit_limit=CREDIT_LIMITS[bucket("credit-limit", row[0], len(CREDIT_LIMITS))],
                credit_status="hold" if bucket("credit-hold", row[0]) < CREDIT_HOLD_PERCENT else "ok",
            )
            for row in conn.execute(
                "SELECT CustomerID, CompanyName, ContactName, ContactTitle, City, Country, Phone FROM Customers"
            )
        }
        products = {
            row[0]: Product(
                id=row[0],
                name=row[1],
                category=row[2] or "",
                unit_price=float(row[3] or 0),
                discontinued=str(row[4]) == "1",
                needs_technician=(row[2] or "") in manual_categories,
            )
            for row in conn.execute(
                "SELECT p.ProductID, p.ProductName, c.CategoryName, p.UnitPrice, p.Discontinued "
                "FROM Products p LEFT JOIN Categories c ON c.CategoryID = p.CategoryID"
            )
        }
    finally:
        conn.close()
    return Reference(customers=customers, products=products)
