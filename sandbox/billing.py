"""Billing stand-in: one billing account per customer, invoices on it.

    POST /billing/accounts               {customer_id} → 201 account (409 if the customer has one)
    GET  /billing/accounts/{account_id}
    GET  /billing/accounts?customer_id=  → {"accounts": [...]}
    POST /billing/invoices               {account_id, order_id, lines, currency, tax, total}
                                         → 201 invoice, "issued"; 422 if the sums do not add up
    GET  /billing/invoices/{invoice_id}

Invoice line: {description, quantity, unit_price, discount, amount}; amount must be
quantity × unit_price × (1 − discount) and total must be Σ amount + tax, to the cent (with
half a cent of slack per rounded amount, `sandbox.core.amounts_agree`).
One invoice per order.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import Field

from sandbox.core import Body
from sandbox.core import Outcome
from sandbox.core import Sandbox
from sandbox.core import amounts_agree
from sandbox.core import rejected
from sandbox.core import system_router
from sandbox.core import utcnow

SYSTEM = "billing"
PAYMENT_TERMS = timedelta(days=30)


class AccountRequest(Body):
    customer_id: str = Field(min_length=1)


class InvoiceLine(Body):
    description: str = Field(min_length=1)
    quantity: float = Field(gt=0)
    unit_price: float = Field(ge=0)
    discount: float = Field(0.0, ge=0, lt=1)
    amount: float


class InvoiceRequest(Body):
    account_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    lines: list[InvoiceLine] = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    tax: float = Field(ge=0)
    total: float = Field(ge=0)


def router(sb: Sandbox) -> APIRouter:
    api = system_router(sb, SYSTEM)

    @api.post("/accounts", status_code=201)
    async def open_account(body: AccountRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            customer = sb.customer(body.customer_id)
            sb.refuse_duplicate(
                SYSTEM,
                "accounts",
                "account_exists",
                "customer {customer_id} already has billing account {id}",
                customer_id=customer.id,
            )
            return sb.created(
                SYSTEM,
                "accounts",
                "BA",
                None,
                customer_id=customer.id,
                company_name=customer.company_name,
                status="open",
                opened_at=utcnow().isoformat(),
            )

        return await sb.side_effect(request, SYSTEM, "open_account", body, effect)

    @api.get("/accounts")
    async def find_accounts(customer_id: str | None = None) -> dict[str, Any]:
        with sb.lock:
            accounts = [
                dict(a)
                for a in sb.resources(SYSTEM, "accounts").values()
                if customer_id is None or a["customer_id"] == customer_id
            ]
        return {"accounts": accounts}

    @api.get("/accounts/{account_id}")
    async def get_account(account_id: str) -> dict[str, Any]:
        return sb.found(SYSTEM, "accounts", account_id)

    @api.post("/invoices", status_code=201)
    async def issue_invoice(body: InvoiceRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            account = sb.found(SYSTEM, "accounts", body.account_id)
            for no, line in enumerate(body.lines, start=1):
                expected = line.quantity * line.unit_price * (1 - line.discount)
                if not amounts_agree(line.amount, expected):
                    raise rejected(
                        "line_amount_mismatch",
                        f"line {no} amount {line.amount:.2f} should be {expected:.2f}",
                    )
            lines_total = sum(line.amount for line in body.lines)
            if not amounts_agree(body.total, lines_total + body.tax, rounded_terms=len(body.lines) + 1):
                raise rejected(
                    "total_mismatch",
                    f"total {body.total:.2f} should be lines {lines_total:.2f} + tax {body.tax:.2f}",
                )
            sb.refuse_duplicate(
                SYSTEM,
                "invoices",
                "already_invoiced",
                "order {order_id} is already invoiced as {id}",
                order_id=body.order_id,
            )
            issued = utcnow()
            return sb.created(
                SYSTEM,
                "invoices",
                "INV",
                body,
                customer_id=account["customer_id"],
                status="issued",
                issued_at=issued.isoformat(),
                due_at=(issued + PAYMENT_TERMS).isoformat(),
            )

        return await sb.side_effect(request, SYSTEM, "issue_invoice", body, effect)

    @api.get("/invoices/{invoice_id}")
    async def get_invoice(invoice_id: str) -> dict[str, Any]:
        return sb.found(SYSTEM, "invoices", invoice_id)

    return api
