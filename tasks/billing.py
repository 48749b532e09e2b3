"""Billing: the customer's billing account and the order's first invoice.

account = billing.open_account(customer_id)
invoice = billing.issue_invoice(account.id, order_id, lines, currency="USD", tax=0.0, total=total)
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from tasks.http import RETRY_POLICY
from tasks.http import System
from tasks.steps import record_step

SYSTEM = System("billing", httpx.Timeout(15.0, connect=3.0))


class BillingAccount(BaseModel):
    id: str
    customer_id: str
    status: str


class Invoice(BaseModel):
    id: str
    account_id: str
    order_id: str
    currency: str
    tax: float
    total: float
    status: str  # "issued"
    issued_at: str
    due_at: str


@record_step(name="billing.open_account", task_run_name="billing-account-{customer_id}", **RETRY_POLICY)
def open_account(customer_id: str) -> BillingAccount:
    """The customer's billing account, opened on first use (the key is the customer's)."""
    with SYSTEM.client() as billing:
        data = billing.side_effect("/accounts", {"customer_id": customer_id}, key=f"billing-account:{customer_id}")
    return BillingAccount.model_validate(data)


@record_step(name="billing.issue_invoice", task_run_name="invoice-{order_id}", **RETRY_POLICY)
def issue_invoice(
    account_id: str,
    order_id: str,
    lines: list[dict[str, Any]],
    currency: str,
    tax: float,
    total: float,
) -> Invoice:
    """Issue the order's invoice (BusinessRejection if the amounts do not add up).

    lines: [{"description", "quantity", "unit_price", "discount", "amount"}];
    amount = quantity × unit_price × (1 − discount); total = Σ amount + tax.
    """
    with SYSTEM.client() as billing:
        data = billing.side_effect(
            "/invoices",
            {
                "account_id": account_id,
                "order_id": str(order_id),
                "lines": lines,
                "currency": currency,
                "tax": tax,
                "total": total,
            },
            key=f"invoice:{order_id}",
        )
    return Invoice.model_validate(data)
