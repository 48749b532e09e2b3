"""The HTTP door: same validation and quarantine as the CLI, and a bearer token required."""

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from handoff.core.db import session
from handoff.runtime.intake_api import create_intake_app
from handoff.core.models import Order, Quarantine

ORDER = {"order_id": "H-1", "customer_id": "ALFKI", "order_date": "2024-03-01", "due_date": "2024-03-15",
         "lines": [{"product_id": 1, "quantity": 10, "unit_price": 18.0}]}


def client():
    return TestClient(create_intake_app(token="s3cret", announce=False))


def auth(token="s3cret"):
    return {"Authorization": f"Bearer {token}"}


def test_orders_need_a_valid_token(db):
    c = client()
    assert c.post("/orders", json=ORDER).status_code == 401
    assert c.post("/orders", json=ORDER, headers=auth("wrong")).status_code == 401
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0


def test_a_good_order_is_accepted_once(db):
    c = client()
    first = c.post("/orders", json=ORDER, headers=auth())
    assert first.status_code == 201 and first.json()["accepted"] == ["H-1"]
    again = c.post("/orders", json=ORDER, headers=auth())
    assert again.status_code == 201 and again.json()["duplicates"] == ["H-1"]


def test_a_mixed_batch_answers_207_with_the_bad_fields(db):
    bad = {**ORDER, "order_id": "H-2", "due_date": "31/02/2024"}
    response = client().post("/orders", json=[ORDER, bad], headers=auth())
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == ["H-1"]
    [rejected] = body["quarantined"]
    assert rejected["reference"] == "H-2" and rejected["reasons"][0]["field"] == "due_date"
    with session() as s:
        assert s.get(Quarantine, rejected["quarantine_id"]) is not None


def test_a_body_that_is_not_json_is_kept_and_answered_422(db):
    response = client().post("/orders", content=b"order=H-3&qty=2", headers={**auth(), "Content-Type": "text/plain"})
    assert response.status_code == 422
    [rejected] = response.json()["quarantined"]
    with session() as s:
        assert s.get(Quarantine, rejected["quarantine_id"]).raw == "order=H-3&qty=2"
