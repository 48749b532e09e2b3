"""CRM stand-in: customer profiles with credit limits, credit checks, sending quotes.

    GET  /crm/customers/{customer_id}                 profile, credit limit, credit status
    POST /crm/customers/{customer_id}/credit-checks   {order_id, amount} → 201 decision
    POST /crm/quotes                                  {quote_id, customer_id, lines, total,
                                                       valid_until, currency} → 201 quote sent
    GET  /crm/quotes/{quote_id}                       the quote, with what its stand-in customer
                                                       will answer ("customer_answer")

A credit check is recorded whatever it decides: 201 with "decision": "approved" | "declined"
and a "reason" when declined (customer on credit hold; amount above the credit limit).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import Field

from sandbox.core import Body
from sandbox.core import Outcome
from sandbox.core import Sandbox
from sandbox.core import amounts_agree
from sandbox.core import conflict
from sandbox.core import fault_dependency
from sandbox.core import not_found
from sandbox.core import rejected
from sandbox.core import utcnow
from sandbox.reference import Customer

SYSTEM = "crm"


class CreditCheckRequest(Body):
    order_id: str = Field(min_length=1)
    amount: float = Field(gt=0)


class QuoteLine(Body):
    product_id: int
    quantity: int = Field(gt=0)
    unit_price: float = Field(ge=0)
    discount: float = Field(0.0, ge=0, lt=1)


class QuoteRequest(Body):
    quote_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    lines: list[QuoteLine] = Field(min_length=1)
    total: float = Field(ge=0)
    valid_until: date
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


def customer_answer(quote_id: str) -> str | None:
    """How the stand-in customer answers a quote (the same every time for one quote): three in
    four accept, some decline, and a few never answer, so the quote expires."""
    bucket = int(hashlib.sha256(quote_id.encode()).hexdigest(), 16) % 20
    return "accept" if bucket < 15 else "decline" if bucket < 18 else None


def customer_view(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "company_name": customer.company_name,
        "contact_name": customer.contact_name,
        "contact_title": customer.contact_title,
        "city": customer.city,
        "country": customer.country,
        "phone": customer.phone,
        "credit_limit": customer.credit_limit,
        "credit_status": customer.credit_status,
    }


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter(prefix=f"/{SYSTEM}", tags=[SYSTEM], dependencies=[Depends(fault_dependency(sb, SYSTEM))])

    def customer(customer_id: str) -> Customer:
        found = sb.reference.customers.get(customer_id)
        if found is None:
            raise not_found("customer", customer_id)
        return found

    @api.get("/customers/{customer_id}")
    async def get_customer(customer_id: str) -> dict[str, Any]:
        return customer_view(customer(customer_id))

    @api.post("/customers/{customer_id}/credit-checks", status_code=201)
    async def check_credit(customer_id: str, body: CreditCheckRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            who = customer(customer_id)
            if who.credit_status == "hold":
                decision, reason = "declined", f"{who.company_name} is on credit hold"
            elif body.amount > who.credit_limit:
                decision = "declined"
                reason = f"amount {body.amount:,.2f} is above the credit limit of {who.credit_limit:,.2f}"
            else:
                decision, reason = "approved", None
            return Outcome(
                "credit-checks",
                {
                    "id": sb.next_id(SYSTEM, "credit-checks", "CC"),
                    "customer_id": who.id,
                    "order_id": body.order_id,
                    "amount": body.amount,
                    "credit_limit": who.credit_limit,
                    "decision": decision,
                    "reason": reason,
                    "checked_at": utcnow().isoformat(),
                },
            )

        return await sb.side_effect(request, SYSTEM, "check_credit", body, effect)

    @api.post("/quotes", status_code=201)
    async def send_quote(body: QuoteRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            who = customer(body.customer_id)
            for line in body.lines:
                if line.product_id not in sb.reference.products:
                    raise not_found("product", line.product_id)
            lines_total = sum(line.quantity * line.unit_price * (1 - line.discount) for line in body.lines)
            if not amounts_agree(body.total, lines_total, rounded_terms=len(body.lines)):
                raise rejected(
                    "total_mismatch", f"quote total {body.total:.2f} does not match its lines ({lines_total:.2f})"
                )
            if body.valid_until < utcnow().date():
                raise rejected("quote_expired", f"quote is valid until {body.valid_until}, which has passed")
            if body.quote_id in sb.resources(SYSTEM, "quotes"):
                raise conflict(
                    "quote_already_sent", f"quote {body.quote_id} was already sent", existing_id=body.quote_id
                )
            return Outcome(
                "quotes",
                {
                    "id": body.quote_id,
                    **body.model_dump(mode="json", exclude={"quote_id"}),
                    "status": "sent",
                    "sent_to": who.contact_name,
                    "sent_at": utcnow().isoformat(),
                    "customer_answer": customer_answer(body.quote_id),
                },
            )

        return await sb.side_effect(request, SYSTEM, "send_quote", body, effect)

    @api.get("/quotes/{quote_id}")
    async def get_quote(quote_id: str) -> dict[str, Any]:
        found = sb.resource(SYSTEM, "quotes", quote_id)
        if found is None:
            raise not_found("quote", quote_id)
        return found

    return api
