"""Requests for quotation through the same door as orders.

A customer asks what some lines would cost; sales hands the request over. It comes in through
the channels orders use (`handoff quotes request FILE`, `POST /quotes`), read by the same reader,
held to its own contract (contract.QuoteRequestIn), and decided by the same door: stored,
quarantined with its reasons and bytes, or a reported duplicate (a re-send with other content
is a conflict, quarantined). A stored request is announced with `quote.requested` by the outbox
(handoff.runtime.outbox), which starts its quotation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core.db import session
from handoff.core.intake.contract import QUOTE_REQUEST_FORM
from handoff.core.intake.contract import QuoteRequestIn
from handoff.core.intake.door import Announcer
from handoff.core.intake.door import IntakeResult
from handoff.core.intake.door import Kind
from handoff.core.intake.door import add_new_customer
from handoff.core.intake.door import keep_as_received
from handoff.core.intake.door import submit
from handoff.core.intake.reading import Submission
from handoff.core.models import QuoteRequest
from handoff.core.models import QuoteState


def store_quote_request(s: Session, request_in: QuoteRequestIn, source: str) -> QuoteRequest:
    add_new_customer(s, request_in)
    request = QuoteRequest(
        id=request_in.request_id,
        customer_id=request_in.customer_id,
        request_date=request_in.request_date,
        due_date=request_in.due_date,
        lines=[line.model_dump() for line in request_in.lines],
        status=QuoteState.REQUESTED,
        source=source,
    )
    keep_as_received(s, QUOTE_REQUESTS, request, request_in, source)
    return request


def content_as_stored(request: QuoteRequest) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "customer_id": request.customer_id,
        "request_date": str(request.request_date),
        "due_date": str(request.due_date),
        "lines": list(request.lines),
    }


QUOTE_REQUESTS = Kind(QUOTE_REQUEST_FORM, QuoteRequest, "quote_request", store_quote_request, content_as_stored)


def submit_quote_requests(
    submissions: Iterable[Submission | tuple[Any, Any]], source: str, announce: Announcer | None = None
) -> IntakeResult:
    """Validate, store and announce requests for quotation, each decided on its own (as orders)."""
    return submit(QUOTE_REQUESTS, submissions, source, announce)


def unannounced_quote_requests() -> list[str]:
    with session() as s:
        return list(
            s.scalars(
                select(QuoteRequest.id).where(QuoteRequest.announced_at.is_(None)).order_by(QuoteRequest.received_at)
            )
        )
