"""Drafting an order's first invoice from what was actually provisioned, and checking it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import select

from handoff.core import audit
from handoff.core.db import session
from handoff.core.models import Customer
from handoff.core.models import FulfilmentLine
from handoff.core.models import Invoice
from handoff.core.models import Order
from handoff.core.models import Product
from handoff.core.models import utcnow
from handoff.core.settings import settings
from tasks.steps import record_step

# VAT by the customer's country; countries not listed are invoiced without tax.

if TYPE_CHECKING:
    import pandas as pd

TAX_RATES = {
    "Germany": 0.19,
    "France": 0.20,
    "UK": 0.20,
    "Spain": 0.21,
    "Italy": 0.22,
    "Belgium": 0.21,
    "Austria": 0.20,
    "Portugal": 0.23,
    "Sweden": 0.25,
    "Denmark": 0.25,
    "Finland": 0.24,
    "Ireland": 0.23,
    "Poland": 0.23,
    "Norway": 0.25,
    "Switzerland": 0.081,
}


SENDING = "sending"  # drafted, checked (and approved), on its way to the billing system


class InvoiceDraft(BaseModel):
    invoice_id: str
    order_id: str
    account_id: str
    currency: str
    lines: list[dict]
    tax_rate: float
    net_total: float
    tax: float
    total: float
    status: str
    external_id: str | None


@record_step(task_run_name="draft-invoice-{order_id}")
def draft_invoice(order_id: str, account_id: str) -> InvoiceDraft:
    """(Re)build the draft from the order's lines that were not dropped; one being sent or
    issued is kept as it is (`hold_as_sent`)."""
    with session() as s:
        invoice = s.get(Invoice, f"INV-{order_id}")
        order = s.get(Order, order_id)
        customer = s.get(Customer, order.customer_id)
        rate = TAX_RATES.get(customer.country if customer else "", 0.0)
        if invoice is None or invoice.status not in (SENDING, "issued"):
            dropped = {
                f.line_no
                for f in s.scalars(
                    select(FulfilmentLine).where(
                        FulfilmentLine.order_id == order_id, FulfilmentLine.job_id == "dropped"
                    )
                )
            }
            names = {p.id: p.name for p in s.scalars(select(Product))}
            lines = [
                {
                    "line_no": l.line_no,
                    "product_id": l.product_id,
                    "description": names.get(l.product_id, f"product {l.product_id}"),
                    "quantity": l.quantity,
                    "unit_price": l.unit_price,
                    "discount": l.discount,
                    "amount": l.amount,
                }
                for l in order.lines
                if l.line_no not in dropped
            ]
            net = round(sum(l["amount"] for l in lines), 2)
            tax = round(net * rate, 2)
            if invoice is None:
                invoice = Invoice(
                    id=f"INV-{order_id}",
                    order_id=order_id,
                    account_id=account_id,
                    currency=settings.currency,
                    lines=lines,
                    net_total=net,
                    tax=tax,
                    total=round(net + tax, 2),
                )
                s.add(invoice)
            else:
                invoice.lines, invoice.net_total, invoice.tax, invoice.total = lines, net, tax, round(net + tax, 2)
                invoice.account_id = account_id
        return InvoiceDraft(
            invoice_id=invoice.id,
            order_id=order_id,
            account_id=invoice.account_id,
            currency=invoice.currency,
            lines=invoice.lines,
            tax_rate=rate,
            net_total=invoice.net_total,
            tax=invoice.tax,
            total=invoice.total,
            status=invoice.status or "draft",
            external_id=invoice.external_id,
        )


def invoice_frames(draft: InvoiceDraft) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    lines = pd.DataFrame(
        draft.lines, columns=["line_no", "product_id", "description", "quantity", "unit_price", "discount", "amount"]
    )
    totals = pd.DataFrame(
        [
            {
                "currency": draft.currency,
                "net_total": draft.net_total,
                "lines_total": float(lines["amount"].sum()) if len(lines) else 0.0,
                "tax_rate": draft.tax_rate,
                "tax": draft.tax,
                "total": draft.total,
            }
        ]
    )
    return lines, totals


@record_step(task_run_name="invoice-checklist-{draft.order_id}")
def run_invoice_checklist(draft: InvoiceDraft) -> list[dict]:
    from checklists.invoice_checklist import check_invoice

    return [f.as_dict() for f in check_invoice(*invoice_frames(draft))]


@record_step(task_run_name="hold-invoice-as-sent-{order_id}")
def hold_as_sent(order_id: str) -> None:
    """The invoice is about to be sent: from now on it is not drafted again. A run restarted
    between sending it and recording it (its process killed) sends the very same request under
    the same key, so the billing system replays its first answer. Drafted afresh, a product
    renamed by a catalogue reload meanwhile changed the request, and the billing system refused
    the key (409): the order stuck short of billing."""
    with session() as s:
        invoice = s.get(Invoice, f"INV-{order_id}")
        if invoice.status != "issued":
            invoice.status = SENDING


@record_step(task_run_name="record-invoice-issued-{order_id}")
def record_invoice_issued(order_id: str, external_id: str) -> None:
    with session() as s:
        invoice = s.get(Invoice, f"INV-{order_id}")
        if invoice.status != "issued":
            invoice.status, invoice.external_id, invoice.issued_at = "issued", external_id, utcnow()
            audit.record(
                s,
                "system:billing",
                "invoice",
                invoice.id,
                "issued",
                SENDING,
                "issued",
                external_id=external_id,
                total=invoice.total,
            )


@record_step(task_run_name="record-billing-account-{customer_id}")
def record_billing_account(customer_id: str, account_id: str) -> None:
    with session() as s:
        customer = s.get(Customer, customer_id)
        if customer is not None and customer.billing_account_id != account_id:
            customer.billing_account_id = account_id
