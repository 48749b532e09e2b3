"""Quotation: a customer's request for quotation, from the request to their answer.

Steps:
1. Take the request (started by its quote.requested event, or again by the daily check).
2. Price every line from the catalogue, less the discount sales asked for: version 1 of the quote.
3. If the overall discount is above the threshold, a manager approves it; if they decline, the
   quote is revised (a new version) with every discount capped at the threshold.
4. Send the quote to the customer through the CRM (once, whatever happens).
5. Await the customer: their answer comes from the CRM or `handoff quotes answer`; a quote still
   unanswered at the end of its validity expires.
6. From a few days before the validity ends, a rep calls the customer after the offer.
7. Accepted: the quote becomes an order through order intake (its order.received starts the
   order pipeline, which does not price it again). Declined or expired: the quotation ends.

Orders with a discount placed without a request keep their own path: `order_quotation` below,
inside the order pipeline (priced, approved, sent).
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import time

from prefect import flow
from prefect.runtime import flow_run

from checklists.forms import DiscountApproval
from checklists.forms import QuoteFollowUp
from handoff.core.quotes import follow_up_call_key
from handoff.core.settings import settings
from tasks.crm import send_quote
from tasks.human_step import HumanStep
from tasks.human_step import ask_a_person
from tasks.quotes import PricedQuote
from tasks.quotes import RequestQuote
from tasks.quotes import customer_answer
from tasks.quotes import follow_up_is_due
from tasks.quotes import order_from_quote
from tasks.quotes import price_quote
from tasks.quotes import price_request
from tasks.quotes import record_approval
from tasks.quotes import record_the_call
from tasks.quotes import renew_validity
from tasks.quotes import revise_within_threshold
from tasks.quotes import set_quote_status
from tasks.quotes import set_request_state
from tasks.quotes import take_request

ENDED = ("accepted", "declined", "expired")


@flow(name="quotation", flow_run_name="quote-{request_id}", log_prints=True)
def quotation(request_id: str, as_of: date | None = None) -> str:
    """The request's quotation; `as_of` is the day its life is looked at (default today)."""
    # 1. Take the request
    take_request(request_id, str(flow_run.id) if flow_run.id else None)

    # 2. Price it from the catalogue
    quote = price_request(request_id, as_of)
    if quote.state == "declined":
        return "declined"  # it cannot be quoted (a product unknown or no longer sold, too large): sales is told

    # 3. A discount above the threshold needs a manager; declined, the quote is revised within it
    if quote.state in ("priced", "awaiting-approval") and quote.discount > settings.discount_approval_threshold:
        set_request_state(request_id, "awaiting-approval", by="system:quotation")
        approval = ask_a_person(request_discount_step(quote), DiscountApproval)
        if approval.decision == "decline":
            quote = revise_within_threshold(request_id, by=approval.completed_by, today=as_of)
        else:
            record_approval(request_id, by=approval.completed_by)

    # 4. Send it through the CRM
    if quote.state in ("priced", "awaiting-approval"):
        sent = send_quote(quote.quote_id, quote.customer_id, quote.lines, quote.total, quote.valid_until)
        set_request_state(request_id, "sent", by="system:quotation", crm_ref=sent.id)

    # 5. Await the customer (a quote past its validity expires here)
    quote = customer_answer(request_id, as_of)

    # 6. Before the validity ends, a rep calls the customer after the offer
    if quote.state == "sent" and follow_up_is_due(quote, as_of):
        call = ask_a_person(follow_up_step(quote), QuoteFollowUp)
        quote = record_the_call(request_id, call.customer_answer, by=call.completed_by)

    # 7. Accepted: the quote becomes the order
    if quote.state == "accepted":
        order_from_quote(request_id)
    return quote.state if quote.state in ENDED else "awaiting-customer"


def request_discount_step(quote: RequestQuote) -> HumanStep:
    """Declined, the request's quote is revised within the threshold and sent all the same."""
    return discount_approval_step(
        quote,
        f"{quote.request_id} (version {quote.version})",
        "Approve the discount to send the quote. Decline it, with a reason for sales, and the quote is "
        f"revised with every discount capped at {settings.discount_approval_threshold:.0%} and sent.",
        tags=[f"quote:{quote.request_id}", f"customer:{quote.customer_id}"],
    )


def follow_up_step(quote: RequestQuote) -> HumanStep:
    """The call after the offer: due before the quote's validity ends."""
    return HumanStep(
        work_type="quote-follow-up",
        step_key=follow_up_call_key(quote.quote_id),
        title=f"Call {quote.customer_id} about quote {quote.request_id}",
        description=(
            f"### Quote {quote.request_id} for {quote.customer_id}: no answer yet\n\n"
            f"**Quoted** {quote.total:,.2f} ({quote.discount:.0%} off the list price) · "
            f"**valid until** {quote.valid_until:%a %d %b %Y}\n\n"
            "Call the customer: do they accept the quote, decline it, or have they not decided yet?"
        ),
        value=quote.total,
        due_at=datetime.combine(quote.valid_until, time.min) if quote.valid_until else None,
        tags=[f"quote:{quote.request_id}", f"customer:{quote.customer_id}"],
    )


# --- a discounted order placed without a request: priced inside the order pipeline -------------


@flow(name="order-quotation", flow_run_name="quote-{order_id}", log_prints=True)
def order_quotation(order_id: str) -> str:
    """A discounted order is priced from the catalogue and confirmed with a quote.

    1. Price every line from the catalogue, less the line's discount; keep the quote.
    2. If the overall discount is above the threshold, a manager approves or declines it.
    3. Send the quote to the customer through the CRM (once, whatever happens).
    4. Mark the quote sent; it expires after its validity (see `expire_quotes`).
    """
    # 1. Price the order from the catalogue
    quote = price_quote(order_id)
    if quote.status in ("sent", "declined"):
        return quote.status

    # 2. A discount above the threshold needs a manager's approval
    if quote.discount > settings.discount_approval_threshold and quote.status != "approved":
        approval = ask_a_person(order_discount_step(quote), DiscountApproval)
        if approval.decision == "decline":
            set_quote_status(quote.quote_id, "declined", by=approval.completed_by)
            return "declined"
        set_quote_status(quote.quote_id, "approved", by=approval.completed_by)

    # 3. Send the quote through the CRM, valid from now however long the approval took
    quote = renew_validity(quote.quote_id)
    sent = send_quote(quote.quote_id, quote.customer_id, quote.lines, quote.total, quote.valid_until)

    # 4. Mark it sent
    set_quote_status(quote.quote_id, "sent", by="system:quotation", crm_ref=sent.id)
    return "sent"


def order_discount_step(quote: PricedQuote) -> HumanStep:
    """Declined, the order's quote is not sent: the order pipeline rejects the order."""
    return discount_approval_step(
        quote,
        quote.quote_id,
        "Approve the discount to send the quote, or decline it with a reason for sales.",
        order_id=quote.order_id,
        tags=[f"order:{quote.order_id}"],
    )


# --- what a manager sees to approve a discount, whichever way the quote came -------------------


def discount_approval_step(
    quote: RequestQuote | PricedQuote, shown_as: str, decision: str, tags: list[str], order_id: str | None = None
) -> HumanStep:
    """A discount above the threshold: the manager sees the quote line by line, then `decision`
    (what approving and declining lead to on this path)."""
    rows = "\n".join(
        f"| {l['product_id']} | {l['quantity']} | {l['unit_price']:,.2f} | {l['discount']:.0%} |" for l in quote.lines
    )
    return HumanStep(
        work_type="discount-approval",
        step_key=f"discount-approval-{quote.quote_id}",
        title=f"Approve a {quote.discount:.0%} discount on quote {shown_as}",
        description=(
            f"### Quote {shown_as} for {quote.customer_id}\n\n"
            f"**List price** {quote.list_total:,.2f} · **quoted** {quote.total:,.2f} · "
            f"**discount** {quote.discount:.1%} (approval needed above {settings.discount_approval_threshold:.0%}) · "
            f"**valid until** {quote.valid_until:%d %b %Y}\n\n"
            f"| product | qty | list price | discount |\n|---:|---:|---:|---:|\n{rows}\n\n{decision}"
        ),
        order_id=order_id,
        value=quote.total,
        tags=tags,
    )
