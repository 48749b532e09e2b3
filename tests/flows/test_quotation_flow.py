"""A customer's request for quotation on the embedded stack (Prefect test server, the sandbox
CRM, stand-in reps): request → priced → approved → sent → accepted → order → complete, and the
declined, expired and revised paths."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from flows.order_pipeline import order_pipeline
from flows.quotation import quotation
from handoff.core.db import session
from handoff.core.intake import submit_quote_requests
from handoff.core.models import Order
from handoff.core.models import OrderCheck
from handoff.core.models import Quote
from handoff.core.models import QuoteRequest
from handoff.core.models import WorkItem
from handoff.core.quotes import AnswerRefused
from handoff.core.quotes import answer_quote

pytestmark = pytest.mark.usefixtures("prefect_harness", "catalogue", "reps", "sandbox")

GOOD_CUSTOMER = "AROUT"  # credit limit 20,000, not on hold (sandbox.reference)


def request(request_id: str, discount: float = 0.25) -> None:
    rfq = {
        "request_id": request_id,
        "customer_id": GOOD_CUSTOMER,
        "request_date": "2030-03-01",
        "due_date": "2030-04-15",
        "lines": [{"product_id": 1, "quantity": 10, "discount": discount}, {"product_id": 2, "quantity": 5}],
    }
    assert submit_quote_requests([(json.dumps(rfq), rfq)], source="test", announce=False).accepted == [request_id]


def steps_of(responder, work_type):
    return [a for a in responder.answered if a[0] == work_type]


def state_of(request_id):
    with session() as s:
        return s.get(QuoteRequest, request_id).status


def valid_until(request_id):
    with session() as s:
        return s.scalar(select(Quote.valid_until).where(Quote.request_id == request_id))


def test_request_priced_approved_sent_accepted_becomes_an_order_that_completes(responder, sandbox):
    request("RQ-1")
    assert quotation("RQ-1") == "awaiting-customer"
    assert state_of("RQ-1") == "sent"
    [(_, item_id, approval)] = steps_of(responder, "discount-approval")
    with session() as s:
        quote = s.scalar(select(Quote).where(Quote.request_id == "RQ-1"))
        assert (quote.id, quote.version, quote.approved_by) == ("RFQ-RQ-1-v1", 1, approval["completed_by"])
        assert quote.total == pytest.approx(10 * 18 * 0.75 + 5 * 19)  # the catalogue's prices
        assert s.get(WorkItem, item_id).required_skills == {"quotation": 3}
    assert [e["idempotency_key"] for e in sandbox.ledger("crm", "send_quote")] == ["quote:RFQ-RQ-1-v1"]

    answered = answer_quote("RQ-1", accept=True, by="crm")
    assert (answered.state, answered.order_id, answered.again) == ("accepted", "RFQ-RQ-1", False)
    assert answer_quote("RQ-1", accept=True, by="crm").again  # the same answer: nothing new
    assert quotation("RQ-1") == "accepted"  # run again: nothing is sent or ordered twice
    assert len(sandbox.ledger("crm", "send_quote")) == 1

    assert order_pipeline("RFQ-RQ-1") == "complete"
    with session() as s:
        order = s.get(Order, "RFQ-RQ-1")
        assert order.source == "quote:RQ-1" and order.total == pytest.approx(quote.total)
        assert s.get(QuoteRequest, "RQ-1").order_id == "RFQ-RQ-1"
        assert s.scalar(select(Quote.order_id).where(Quote.request_id == "RQ-1")) == "RFQ-RQ-1"
        assert s.get(Quote, "Q-RFQ-RQ-1") is None  # the pipeline did not price it again
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        check = s.scalar(select(OrderCheck).where(OrderCheck.order_id == "RFQ-RQ-1"))
        assert not [f for f in check.errors if "quote" in f["rule"]]
    assert len(steps_of(responder, "discount-approval")) == 1  # approved once, in the quotation


def test_a_declined_quote_ends_and_refuses_a_later_accept(responder, sandbox):
    request("RQ-2", discount=0.0)
    assert quotation("RQ-2") == "awaiting-customer"
    assert steps_of(responder, "discount-approval") == []  # no discount: no manager
    assert answer_quote("RQ-2", accept=False, by="crm").state == "declined"
    with pytest.raises(AnswerRefused, match="quote RQ-2 was already declined .* cannot be accepted"):
        answer_quote("RQ-2", accept=True, by="cli")
    assert quotation("RQ-2") == "declined"
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0


def test_an_unanswered_quote_gets_a_call_before_it_expires_then_expires(responder, sandbox):
    request("RQ-3", discount=0.0)
    assert quotation("RQ-3") == "awaiting-customer"
    assert steps_of(responder, "quote-follow-up") == []  # not due yet
    end = valid_until("RQ-3")
    assert quotation("RQ-3", as_of=end - timedelta(days=1)) == "awaiting-customer"  # the customer is undecided
    [(_, item_id, call)] = steps_of(responder, "quote-follow-up")
    with session() as s:
        item = s.get(WorkItem, item_id)
        assert item.required_skills == {"quotation": 1} and item.due_at.date() <= end
    assert call["customer_answer"] == "undecided"
    assert quotation("RQ-3", as_of=end + timedelta(days=1)) == "expired"
    assert state_of("RQ-3") == "expired"
    with pytest.raises(AnswerRefused, match="expired"):
        answer_quote("RQ-3", accept=True, by="crm")


def test_the_customer_accepts_on_the_follow_up_call(responder, sandbox):
    responder.overrides["quote-follow-up"] = lambda step, a: {"customer_answer": "accepted", "note": "yes, go"}
    request("RQ-4", discount=0.0)
    assert quotation("RQ-4") == "awaiting-customer"
    assert quotation("RQ-4", as_of=valid_until("RQ-4") - timedelta(days=2)) == "accepted"
    with session() as s:
        assert s.get(Order, "RFQ-RQ-4").source == "quote:RQ-4"
        assert s.get(QuoteRequest, "RQ-4").answered_by == steps_of(responder, "quote-follow-up")[0][2]["completed_by"]


def test_a_declined_discount_is_revised_within_the_threshold_and_sent(responder, sandbox):
    responder.overrides["discount-approval"] = lambda step, a: {"decision": "decline", "note": "too generous"}
    request("RQ-5", discount=0.30)
    assert quotation("RQ-5") == "awaiting-customer"
    with session() as s:
        v1, v2 = s.scalars(select(Quote).where(Quote.request_id == "RQ-5").order_by(Quote.version)).all()
        assert (v1.status, v2.status) == ("superseded", "sent")
        assert v2.lines[0]["discount"] == pytest.approx(0.10) and v2.total > v1.total
    assert [e["idempotency_key"] for e in sandbox.ledger("crm", "send_quote")] == ["quote:RFQ-RQ-5-v2"]
