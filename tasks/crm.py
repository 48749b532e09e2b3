"""CRM: who the customer is, whether their credit covers an order, and sending them a quote.

customer = crm.get_customer("ALFKI")
crm.check_credit(order_id, customer_id, amount)     # CreditCheck, or Declined if not approved
crm.send_quote(quote_id, customer_id, lines, total, valid_until)
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel

from tasks.http import RETRY_POLICY
from tasks.http import Declined
from tasks.http import NotFound
from tasks.http import System
from tasks.steps import record_step

SYSTEM = System("crm")


class Customer(BaseModel):
    id: str
    company_name: str
    contact_name: str | None = None
    country: str | None = None
    credit_limit: float
    credit_status: str  # "ok" | "hold"


class CreditCheck(BaseModel):
    id: str
    customer_id: str
    order_id: str
    amount: float
    decision: str  # "approved" | "declined"
    reason: str | None = None


class Quote(BaseModel):
    id: str
    customer_id: str
    total: float
    valid_until: date
    status: str
    sent_to: str | None = None


@record_step(name="crm.get_customer", task_run_name="customer-{customer_id}", **RETRY_POLICY)
def get_customer(customer_id: str) -> Customer:
    """The customer's profile with credit limit and credit status."""
    with SYSTEM.client() as crm:
        return Customer.model_validate(crm.read(f"/customers/{customer_id}"))


@record_step(name="crm.check_credit", task_run_name="credit-check-{order_id}", **RETRY_POLICY)
def check_credit(order_id: str, customer_id: str, amount: float) -> CreditCheck | Declined:
    """Ask the CRM to approve `amount` of credit for the order.

    Declined (a result, not an error) when the CRM declines, with its reason and the check in
    `details`, or when the CRM does not know the customer: either way a person decides."""
    with SYSTEM.client() as crm:
        try:
            data = crm.side_effect(
                f"/customers/{customer_id}/credit-checks",
                {"order_id": str(order_id), "amount": amount},
                key=f"credit-check:{order_id}:{amount:.2f}",
            )
        except NotFound as unknown:
            return Declined(
                system=SYSTEM.name,
                reason=f"customer {customer_id} is not in the CRM",
                error=unknown.error or "not_found",
            )
    check = CreditCheck.model_validate(data)
    if check.decision != "approved":
        return Declined(
            system=SYSTEM.name,
            reason=check.reason or "credit declined",
            error="credit_declined",
            details=check.model_dump(),
        )
    return check


@record_step(name="crm.send_quote", task_run_name="send-quote-{quote_id}", **RETRY_POLICY)
def send_quote(
    quote_id: str,
    customer_id: str,
    lines: list[dict[str, Any]],
    total: float,
    valid_until: date,
    currency: str = "USD",
) -> Quote:
    """Send the priced quote to the customer's contact.

    lines: [{"product_id", "quantity", "unit_price", "discount"}]; total = Σ qty × price × (1 − discount).
    """
    with SYSTEM.client() as crm:
        data = crm.side_effect(
            "/quotes",
            {
                "quote_id": str(quote_id),
                "customer_id": customer_id,
                "lines": lines,
                "total": total,
                "valid_until": valid_until.isoformat(),
                "currency": currency,
            },
            key=f"quote:{quote_id}",
        )
    return Quote.model_validate(data)
