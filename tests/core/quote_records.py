"""Quotations as records, for tests that start from a quote already with the customer."""

from __future__ import annotations

import json
from datetime import timedelta

from handoff.core.db import session
from handoff.core.intake import submit_quote_requests
from handoff.core.models import Quote
from handoff.core.models import QuoteRequest
from handoff.core.models import QuoteState
from handoff.core.sla import business_today


def requested(request_id: str) -> None:
    """A request for quotation as intake stores it (not announced: no Prefect server needed)."""
    rfq = {
        "request_id": request_id,
        "customer_id": "ALFKI",
        "request_date": "2030-03-01",
        "due_date": "2030-04-15",
        "lines": [{"product_id": 1, "quantity": 10, "discount": 0.05}],
    }
    assert submit_quote_requests([(json.dumps(rfq), rfq)], source="test", announce=False).accepted == [request_id]


def sent_quote(request_id: str, valid_days: int = 30) -> None:
    """A request whose quote (version 1) is with the customer."""
    requested(request_id)
    with session() as s:
        s.add(
            Quote(
                id=f"RFQ-{request_id}-v1",
                request_id=request_id,
                version=1,
                customer_id="ALFKI",
                lines=[{"product_id": 1, "quantity": 10, "unit_price": 18.0, "discount": 0.05}],
                list_total=180.0,
                discount=0.05,
                total=171.0,
                status=QuoteState.SENT,
                valid_until=business_today() + timedelta(days=valid_days),
            )
        )
        s.get(QuoteRequest, request_id).status = QuoteState.SENT
