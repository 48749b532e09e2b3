"""Quotation: a discounted order is priced from the catalogue and confirmed with a quote.

Steps:
1. Price every line from the catalogue, less the line's discount; keep the quote.
2. If the overall discount is above the threshold, a manager approves or declines it.
3. Send the quote to the customer through the CRM (once, whatever happens).
4. Mark the quote sent; it expires after its validity (see `expire_quotes`).
"""

from __future__ import annotations

from prefect import flow

from checklists.forms import DiscountApproval
from handoff.core.settings import settings
from tasks.crm import send_quote
from tasks.human_step import HumanStep, ask_a_person
from tasks.quotes import PricedQuote, price_quote, set_quote_status


@flow(name="quotation", flow_run_name="quote-{order_id}", log_prints=True)
def quotation(order_id: str) -> str:
    # 1. Price the order from the catalogue
    quote = price_quote(order_id)
    if quote.status in ("sent", "declined"):
        return quote.status

    # 2. A discount above the threshold needs a manager's approval
    if quote.discount > settings.discount_approval_threshold and quote.status != "approved":
        approval = ask_a_person(discount_approval_step(quote), DiscountApproval)
        if approval.decision == "decline":
            set_quote_status(quote.quote_id, "declined", by=approval.completed_by)
            return "declined"
        set_quote_status(quote.quote_id, "approved", by=approval.completed_by)

    # 3. Send the quote through the CRM
    sent = send_quote(quote.quote_id, quote.customer_id, quote.lines, quote.total, quote.valid_until)

    # 4. Mark it sent
    set_quote_status(quote.quote_id, "sent", by="system:quotation", crm_ref=sent.id)
    return "sent"


def discount_approval_step(quote: PricedQuote) -> HumanStep:
    rows = "\n".join(
        f"| {l['product_id']} | {l['quantity']} | {l['unit_price']:,.2f} | {l['discount']:.0%} |" for l in quote.lines
    )
    return HumanStep(
        work_type="discount-approval",
        step_key=f"discount-approval-{quote.quote_id}",
        title=f"Approve a {quote.discount:.0%} discount on quote {quote.quote_id}",
        description=(
            f"### Quote {quote.quote_id} for {quote.customer_id}\n\n"
            f"**List price** {quote.list_total:,.2f} · **quoted** {quote.total:,.2f} · "
            f"**discount** {quote.discount:.1%} (approval needed above {settings.discount_approval_threshold:.0%}) · "
            f"**valid until** {quote.valid_until:%d %b %Y}\n\n"
            f"| product | qty | list price | discount |\n|---:|---:|---:|---:|\n{rows}\n\n"
            "Approve the discount to send the quote, or decline it with a reason for sales."
        ),
        order_id=quote.order_id,
        value=quote.total,
        tags=[f"order:{quote.order_id}"],
    )
