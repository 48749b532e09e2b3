"""Property: whatever arrives — any bytes, any JSON, any CSV — intake ends it as accepted,
quarantined or duplicate orders (at least one outcome), raises nothing, and the database
agrees; every stored order keeps the contract. (The long run: bench/hostile_intake.py.)"""

from hypothesis import given
from intake_payloads import any_bytes
from intake_payloads import check_outcome
from intake_payloads import csv_documents
from intake_payloads import json_documents
from intake_payloads import payloads
from intake_payloads import tally

from handoff.core.db import session
from handoff.core.intake import parse_csv_orders
from handoff.core.intake import parse_json_orders
from handoff.core.intake import submit_orders
from handoff.core.intake.contract import stored_order_violations
from handoff.core.intake.door import content_as_stored
from handoff.core.models import Order


def submit_and_check(kind, raw):
    before = tally()
    read = parse_csv_orders if kind == "csv" else parse_json_orders
    result = submit_orders(read(raw), source="property", announce=False)
    broken = check_outcome(before, result.submitted, result.accepted, result.duplicates, len(result.quarantined))
    with session() as s:
        for order_id in result.accepted:
            broken += [
                f"{order_id} breaks the contract: {v}"
                for v in stored_order_violations(content_as_stored(s.get(Order, order_id)))
            ]
    for rejected in result.quarantined:
        broken += [f"a reason of {len(r['message']):,} characters" for r in rejected.reasons if len(r["message"]) > 600]
    assert broken == [], broken


@given(raw=json_documents())
def test_any_json_document(db, raw):
    submit_and_check("json", raw)


@given(raw=csv_documents())
def test_any_csv_document(db, raw):
    submit_and_check("csv", raw)


@given(raw=any_bytes)
def test_any_bytes_as_json_or_csv(db, raw):
    submit_and_check("json", raw)
    submit_and_check("csv", raw)


@given(payload=payloads())
def test_any_payload_sent_twice_is_all_duplicates_or_quarantined_the_second_time(db, payload):
    kind, raw = payload
    submit_and_check(kind, raw)
    read = parse_csv_orders if kind == "csv" else parse_json_orders
    again = submit_orders(read(raw), source="property", announce=False)
    assert again.accepted == []
