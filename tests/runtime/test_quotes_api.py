"""The HTTP door for quotations: POST /quotes takes requests for quotation like /orders takes
orders (token, contract, quarantine, duplicates); POST /quotes/{id}/answer takes the customer's
answer, and an acceptance answered twice makes one order."""

from __future__ import annotations

from fastapi.testclient import TestClient
from quote_records import sent_quote
from sqlalchemy import func
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.models import Order
from handoff.core.models import Quarantine
from handoff.core.models import QuoteRequest
from handoff.runtime.intake_api import create_intake_app

RFQ = {
    "request_id": "H-1",
    "customer_id": "ALFKI",
    "request_date": "2030-03-01",
    "due_date": "2030-04-15",
    "lines": [{"product_id": 1, "quantity": 10}],
}


def client():
    return TestClient(create_intake_app(token="s3cret", announce=False))


def auth(token="s3cret"):
    return {"Authorization": f"Bearer {token}"}


def test_requests_need_the_token_and_keep_the_contract(db):
    c = client()
    assert c.post("/quotes", json=RFQ).status_code == 401
    first = c.post("/quotes", json={"requests": [RFQ]}, headers=auth())
    assert first.status_code == 201 and first.json()["accepted"] == ["H-1"]
    assert c.post("/quotes", json=RFQ, headers=auth()).json()["duplicates"] == ["H-1"]
    bad = c.post("/quotes", json={**RFQ, "request_id": "H-2", "lines": []}, headers=auth())
    assert bad.status_code == 422
    [rejected] = bad.json()["quarantined"]
    assert rejected["reasons"] == [{"field": "lines", "message": "must have at least 1 line (got a list of 0 items)"}]
    csv = "request_id,customer_id,request_date,due_date,product_id,quantity\nH-3,ALFKI,2030-03-01,2030-04-15,2,3\n"
    taken = c.post("/quotes", content=csv, headers={**auth(), "Content-Type": "text/csv"})
    assert taken.status_code == 201 and taken.json()["accepted"] == ["H-3"]
    with session() as s:
        assert s.scalar(select(func.count()).select_from(QuoteRequest)) == 2
        assert s.scalar(select(func.count()).select_from(Quarantine)) == 1


def test_the_customer_answers_once_and_an_acceptance_is_one_order(db):
    sent_quote("H-4")
    c = client()
    assert c.post("/quotes/H-4/answer", json={"answer": "accept"}).status_code == 401
    first = c.post("/quotes/H-4/answer", json={"answer": "accept"}, headers=auth())
    again = c.post("/quotes/H-4/answer", json={"answer": "accept"}, headers=auth())
    assert first.status_code == again.status_code == 200
    assert first.json() == {"request_id": "H-4", "state": "accepted", "order_id": "RFQ-H-4", "again": False}
    assert again.json()["again"] is True
    refused = c.post("/quotes/H-4/answer", json={"answer": "decline"}, headers=auth())
    assert refused.status_code == 409 and "was already accepted" in refused.json()["detail"]
    assert c.post("/quotes/nope/answer", json={"answer": "accept"}, headers=auth()).status_code == 404
    for body in ({"answer": "yes"}, {"answer": "accept", "x": 1}, [1], "accept"):
        assert c.post("/quotes/H-4/answer", json=body, headers=auth()).status_code == 422
    assert c.post("/quotes/H-4/answer", content=b"\xff\xfe", headers=auth()).status_code == 422
    twice = b'{"answer": "decline", "answer": "accept"}'  # which one is meant?
    assert c.post("/quotes/H-4/answer", content=twice, headers=auth()).status_code == 422
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
