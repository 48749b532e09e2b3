"""Requests for quotation come through the same door as orders: the same reader (JSON and CSV),
their own strict contract with field-level reasons, quarantine keeping the bytes, de-duplication
by request id with conflicts quarantined; and hostile payloads end accepted, quarantined or
duplicate, with the database agreeing."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from intake_payloads import _pairs_deep
from intake_payloads import orders
from intake_payloads import payloads
from intake_payloads import to_json
from sqlalchemy import func
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.intake import parse_csv_orders
from handoff.core.intake import parse_json_orders
from handoff.core.intake import read_quote_request_file
from handoff.core.intake import submit_quote_requests
from handoff.core.intake.contract import QUOTE_REQUEST_FORM
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import Quarantine
from handoff.core.models import QuoteRequest


def a_request(request_id: str = "R-1", quantity: int = 10, **changes) -> dict:
    return {
        "request_id": request_id,
        "customer_id": "ALFKI",
        "request_date": "2030-03-01",
        "due_date": "2030-03-20",
        "lines": [{"product_id": 1, "quantity": quantity, "discount": 0.05}, {"product_id": 2, "quantity": 5}],
        **changes,
    }


def submit_json(raw: str | bytes):
    return submit_quote_requests(parse_json_orders(raw, QUOTE_REQUEST_FORM), source="test", announce=False)


def test_a_good_request_is_stored_with_its_lines_and_audited(db):
    result = submit_json(json.dumps({"requests": [a_request("R-1"), a_request("R-2")]}))
    assert result.accepted == ["R-1", "R-2"] and not result.quarantined
    with session() as s:
        r = s.get(QuoteRequest, "R-1")
        assert (r.status, r.customer_id, str(r.due_date)) == ("requested", "ALFKI", "2030-03-20")
        assert r.lines == [
            {"product_id": 1, "quantity": 10, "discount": 0.05},
            {"product_id": 2, "quantity": 5, "discount": 0.0},
        ]
        assert r.announced_at is None  # the outbox announces it once Prefect confirms
        assert s.scalar(select(AuditEvent.action).where(AuditEvent.entity == "quote_request")) == "received"
        assert s.scalar(select(func.count()).select_from(Order)) == 0  # a request is not an order


def test_a_bad_request_is_quarantined_with_reasons_per_field_and_its_bytes(db):
    raw = json.dumps(
        a_request(
            "R-3",
            due_date="soon",
            lines=[{"product_id": 1, "quantity": -3, "unit_price": 18.0}],
            order_id="x",
        )
    ).encode()
    result = submit_json(raw)
    [rejected] = result.quarantined
    reasons = {r["field"]: r["message"] for r in rejected.reasons}
    assert reasons["due_date"] == 'must be a date written as text YYYY-MM-DD (got "soon")'
    assert reasons["lines.0.quantity"] == "must be more than 0 (got -3)"
    assert reasons["lines.0.unit_price"].startswith("is not a field of a quote request line; the fields are")
    assert reasons["order_id"].startswith("is not a field of a quote request; the fields are request_id")
    with session() as s:
        q = s.get(Quarantine, rejected.quarantine_id)
        assert q.raw_bytes == raw and q.reference == "R-3"
        assert s.get(QuoteRequest, "R-3") is None


def test_the_same_request_again_is_a_duplicate_and_other_content_a_conflict(db):
    assert submit_json(json.dumps(a_request("R-4"))).accepted == ["R-4"]
    assert submit_json(json.dumps(a_request("R-4"))).duplicates == ["R-4"]
    [conflict] = submit_json(json.dumps(a_request("R-4", quantity=12))).quarantined
    assert conflict.reasons[0]["field"] == "request_id"
    assert "quote request R-4 was already received" in conflict.reasons[0]["message"]
    assert {"field": "lines.0.quantity", "message": "was 10, now 12"} in conflict.reasons
    with session() as s:
        assert s.get(QuoteRequest, "R-4").lines[0]["quantity"] == 10  # the first one stands


def test_csv_requests_a_row_per_line_from_a_file(db, tmp_path):
    path = tmp_path / "rfq.csv"
    path.write_text(
        "request_id,customer_id,request_date,due_date,product_id,quantity,discount\n"
        "C-1,ALFKI,2030-03-01,2030-03-20,1,10,0.1\n"
        "C-1,ALFKI,2030-03-01,2030-03-20,2,4,\n"
        "C-2,ALFKI,2030-03-01,2030-03-20,3,x,\n"
    )
    result = submit_quote_requests(read_quote_request_file(path), source="file:rfq.csv", announce=False)
    assert result.accepted == ["C-1"]
    [bad] = result.quarantined
    assert bad.reference == "C-2" and bad.reasons == [
        {"field": "lines.0.quantity", "message": 'must be a whole number (got "x")'}
    ]
    with session() as s:
        assert [l["quantity"] for l in s.get(QuoteRequest, "C-1").lines] == [10, 4]


def test_an_order_csv_is_not_a_request(db):
    [sub] = parse_csv_orders("order_id,customer_id\n1,ALFKI\n", QUOTE_REQUEST_FORM)
    assert sub.problems == [
        {"field": "document", "message": "a CSV of requests needs a header row with a request_id column"}
    ]


def rfq_like(order: dict) -> dict:
    """A hostile order reshaped as a request: the same hostile values under the request's names."""
    names = {"order_id": "request_id", "order_date": "request_date"}
    out = {names.get(k, k): v for k, v in order.items() if k != "total"}
    if isinstance(out.get("lines"), list):
        out["lines"] = [
            {k: v for k, v in l.items() if k != "unit_price"} if isinstance(l, dict) else l for l in out["lines"]
        ]
    return out


@given(st.one_of(orders().map(lambda o: ("json", to_json(_pairs_deep(rfq_like(o))).encode())), payloads()))
def test_any_payload_ends_accepted_quarantined_or_duplicate(db, payload):
    kind, raw = payload
    with session() as s:
        before = (
            s.scalar(select(func.count()).select_from(QuoteRequest)),
            s.scalar(select(func.count()).select_from(Quarantine)),
        )
    read = parse_csv_orders if kind == "csv" else parse_json_orders
    result = submit_quote_requests(read(raw, QUOTE_REQUEST_FORM), source="hostile", announce=False)
    assert result.submitted >= 1
    assert result.submitted == len(result.accepted) + len(result.duplicates) + len(result.quarantined)
    with session() as s:
        requests = s.scalar(select(func.count()).select_from(QuoteRequest))
        kept = s.scalar(select(func.count()).select_from(Quarantine))
        assert requests - before[0] == len(result.accepted)
        assert kept - before[1] == len(result.quarantined)
        assert all(s.get(QuoteRequest, r) is not None for r in result.accepted + result.duplicates)
        assert s.scalar(select(func.count()).select_from(Order)) == 0
