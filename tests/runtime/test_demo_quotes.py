"""The demo's feed: one Northwind order in five arrives first as a request for quotation, through
the requests' intake; the rest as orders."""

from __future__ import annotations

from handoff.core.db import session
from handoff.core.intake import IntakeResult
from handoff.core.models import Order
from handoff.core.models import QuoteRequest
from handoff.runtime.demo import RFQ_SHARE
from handoff.runtime.demo import as_request
from handoff.runtime.demo import import_feed
from sandbox.crm import customer_answer


def test_part_of_the_feed_arrives_as_requests_for_quotation(db, monkeypatch):
    from handoff.runtime import outbox

    monkeypatch.setattr(outbox, "announce_orders", lambda ids: 0)  # no Prefect server here
    requests = IntakeResult()
    orders = import_feed(10, requests)
    assert len(requests.accepted) == 10 // RFQ_SHARE and len(orders.accepted) == 10 - 10 // RFQ_SHARE
    with session() as s:
        rfq = s.get(QuoteRequest, requests.accepted[0])
        assert rfq.id.startswith("NW-") and s.get(Order, rfq.id.removeprefix("NW-")) is None
        assert all(set(line) == {"product_id", "quantity", "discount"} for line in rfq.lines)


def test_a_request_keeps_the_order_s_customer_dates_products_and_discounts():
    order = {
        "order_id": "10252",
        "customer_id": "SUPRD",
        "order_date": "2030-03-01",
        "due_date": "2030-03-29",
        "lines": [{"product_id": 20, "quantity": 40, "unit_price": 64.8, "discount": 0.05}],
    }
    assert as_request(order) == {
        "request_id": "NW-10252",
        "customer_id": "SUPRD",
        "request_date": "2030-03-01",
        "due_date": "2030-03-29",
        "lines": [{"product_id": 20, "quantity": 40, "discount": 0.05}],
    }


def test_stand_in_customers_accept_most_decline_some_and_leave_a_few_unanswered():
    answers = [customer_answer(f"RFQ-NW-{n}-v1") for n in range(10248, 10648)]
    assert answers == [customer_answer(f"RFQ-NW-{n}-v1") for n in range(10248, 10648)]  # the same each time
    assert answers.count("accept") > 0.6 * len(answers)
    assert 0 < answers.count(None) < answers.count("decline") < answers.count("accept")
