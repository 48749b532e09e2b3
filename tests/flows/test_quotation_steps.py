"""The discount approval a manager sees, built the same way for a request's quote and an order's.

Plain function calls: no Prefect server, no database (the work type registry is in code)."""

from __future__ import annotations

from datetime import date

import pytest

from flows.quotation import order_discount_step
from flows.quotation import request_discount_step
from handoff.core.settings import settings
from tasks.quotes import PricedQuote
from tasks.quotes import RequestQuote

LINES = [
    {"product_id": 1, "quantity": 10, "unit_price": 18.0, "discount": 0.25},
    {"product_id": 2, "quantity": 5, "unit_price": 19.0, "discount": 0.0},
]
PRICED = {"lines": LINES, "list_total": 275.0, "total": 230.0, "discount": 45 / 275, "valid_until": date(2030, 4, 1)}


def request_quote(**changes) -> RequestQuote:
    fields = {
        "request_id": "RQ-1",
        "quote_id": "RFQ-RQ-1-v1",
        "version": 1,
        "customer_id": "AROUT",
        "state": "priced",
        "unpriced": [],
        "order_id": None,
        **PRICED,
    }
    return RequestQuote(**(fields | changes))


def order_quote(**changes) -> PricedQuote:
    fields = {"quote_id": "Q-10248", "order_id": "10248", "customer_id": "AROUT", "status": "draft", **PRICED}
    return PricedQuote(**(fields | changes))


@pytest.mark.parametrize("step", [request_discount_step(request_quote()), order_discount_step(order_quote())])
def test_both_paths_show_the_manager_the_same_quote_line_by_line(step):
    assert step.work_type == "discount-approval"
    assert step.required_skills == {"quotation": 3}
    assert step.value == 230.0
    assert "**List price** 275.00 · **quoted** 230.00 · **discount** 16.4%" in step.description
    assert f"(approval needed above {settings.discount_approval_threshold:.0%})" in step.description
    assert "**valid until** 01 Apr 2030" in step.description
    assert "| 1 | 10 | 18.00 | 25% |\n| 2 | 5 | 19.00 | 0% |" in step.description
    assert step.title.startswith("Approve a 16% discount on quote ")


def test_a_requests_step_names_the_request_and_says_a_declined_quote_is_revised():
    step = request_discount_step(request_quote(version=2, quote_id="RFQ-RQ-1-v2"))
    assert step.step_key == "discount-approval-RFQ-RQ-1-v2"
    assert step.description.startswith("### Quote RQ-1 (version 2) for AROUT\n\n")
    assert step.description.endswith(
        f"revised with every discount capped at {settings.discount_approval_threshold:.0%} and sent."
    )
    assert (step.order_id, step.tags) == (None, ["quote:RQ-1", "customer:AROUT"])


def test_an_orders_step_belongs_to_the_order_and_asks_for_a_reason_when_declined():
    step = order_discount_step(order_quote())
    assert step.step_key == "discount-approval-Q-10248"
    assert step.description.startswith("### Quote Q-10248 for AROUT\n\n")
    assert step.description.endswith("Approve the discount to send the quote, or decline it with a reason for sales.")
    assert (step.order_id, step.tags) == ("10248", ["order:10248"])
