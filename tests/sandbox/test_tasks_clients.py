"""The client modules against the real sandbox over HTTP (task bodies via `.fn()`, no Prefect)."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest

from tasks import activation
from tasks import billing
from tasks import calendar
from tasks import crm
from tasks import provisioning
from tasks.http import BusinessRejection
from tasks.http import Conflict
from tasks.http import Declined
from tasks.http import NotFound

MONDAY_NINE = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def run_order(order_id: str, customer_id: str, lines: list[tuple[int, int, float]]) -> dict[str, object]:
    """Every side-effecting call one order makes, in the order a pipeline would make them."""
    total = round(sum(quantity * price for _, quantity, price in lines), 2)
    crm.check_credit.fn(order_id, customer_id, total)
    crm.send_quote.fn(
        f"Q-{order_id}",
        customer_id,
        [{"product_id": p, "quantity": q, "unit_price": u} for p, q, u in lines],
        total,
        date.today() + timedelta(days=30),
    )
    verified = []
    for line_no, (product_id, quantity, _) in enumerate(lines, start=1):
        reservation = provisioning.reserve.fn(order_id, line_no, product_id, quantity)
        job = provisioning.provision.fn(order_id, line_no, reservation.id)
        if job.needs_technician:
            job = provisioning.complete_visit.fn(job.id, technician="Robert King", notes="cold room fitted")
        switched_on = activation.activate.fn(order_id, job.resource_id)
        check = activation.verify.fn(switched_on.id)
        if not check.verified:
            check = activation.verify.fn(switched_on.id, attempt=2)
        verified.append(check.verified)
    account = billing.open_account.fn(customer_id)
    invoice_lines = [
        {"description": f"product {p}", "quantity": q, "unit_price": u, "amount": round(q * u, 2)} for p, q, u in lines
    ]
    invoice = billing.issue_invoice.fn(account.id, order_id, invoice_lines, "USD", 0.0, total)
    meeting = calendar.book_meeting.fn(
        f"handoff:{account.id}:{order_id}",
        f"Handoff {customer_id}",
        ["sales", f"ops-{order_id}"],
        MONDAY_NINE,
        MONDAY_NINE + timedelta(hours=1),
    )
    return {"account": account.id, "invoice": invoice.id, "meeting": meeting.id, "verified": verified}


ORDER = ("10248", "VINET", [(11, 12, 14.0), (10, 2, 31.0)])  # line 2: Ikura, Seafood → technician
EXPECTED_KEYS = {
    ("crm", "credit-check:10248:230.00"),
    ("crm", "quote:Q-10248"),
    ("provisioning", "reserve:10248:1"),
    ("provisioning", "reserve:10248:2"),
    ("provisioning", "provision:10248:1"),
    ("provisioning", "provision:10248:2"),
    ("provisioning", "complete-visit:JOB-000002"),
    ("activation", "activate:10248:RES-000001"),
    ("activation", "activate:10248:RES-000002"),
    ("activation", "verify:ACT-000001:1"),
    ("activation", "verify:ACT-000001:2"),  # RES-000001 fails its first check
    ("activation", "verify:ACT-000002:1"),
    ("billing", "billing-account:VINET"),
    ("billing", "invoice:10248"),
    ("calendar", "meeting:handoff:BA-000001:10248"),
}


def keys(sandbox):
    return [(e["system"], e["idempotency_key"]) for e in sandbox.ledger()]


def test_an_order_goes_through_every_system_with_keys_made_of_business_ids(sandbox):
    outcome = run_order(*ORDER)
    assert outcome["verified"] == [True, True]
    assert sorted(keys(sandbox)) == sorted(EXPECTED_KEYS)  # each side effect exactly once


def test_running_the_same_order_again_does_nothing_twice(sandbox):
    first = run_order(*ORDER)
    again = run_order(*ORDER)
    assert again == first
    assert sorted(keys(sandbox)) == sorted(EXPECTED_KEYS)
    # The re-run got the recorded answers back (even the failed first check), so it took the same path.
    replays = [(r["path"], r["idempotency_key"]) for r in sandbox.requests() if r["replay"]]
    assert len(replays) == len(EXPECTED_KEYS) == len(set(replays))


def test_reads_return_typed_records(sandbox):
    customer = crm.get_customer.fn("ALFKI")
    assert customer.company_name == "Alfreds Futterkiste" and customer.credit_status in ("ok", "hold")
    reservation = provisioning.reserve.fn("1", 1, 10, 1)
    job = provisioning.provision.fn("1", 1, reservation.id)
    assert provisioning.get_job.fn(job.id) == job and job.needs_technician
    slots = calendar.find_slots.fn(datetime(2030, 1, 5, 12, 0, tzinfo=UTC), 30, ["sales"], count=2)
    assert [s.start for s in slots] == [MONDAY_NINE, MONDAY_NINE + timedelta(minutes=30)]


def test_a_customer_on_credit_hold_is_declined_with_the_reason(sandbox):
    on_hold = sandbox.sandbox.reference.on_hold()[0]
    declined = crm.check_credit.fn("20001", on_hold, 100.0)
    assert isinstance(declined, Declined)
    assert "credit hold" in declined.reason
    assert declined.details["id"] == sandbox.ledger("crm")[0]["response"]["id"]


def test_rejections_come_back_as_results_or_domain_errors(sandbox):
    refused = provisioning.reserve.fn("1", 1, 5, 1)
    assert isinstance(refused, Declined) and "discontinued" in refused.reason
    with pytest.raises(NotFound, match="unknown customer NOBODY"):
        crm.get_customer.fn("NOBODY")
    account = billing.open_account.fn("ALFKI")
    with pytest.raises(BusinessRejection) as wrong_total:
        billing.issue_invoice.fn(
            account.id, "1", [{"description": "x", "quantity": 1, "unit_price": 5.0, "amount": 5.0}], "USD", 1.0, 5.0
        )
    assert wrong_total.value.error == "total_mismatch" and wrong_total.value.status_code == 422
    calendar.book_meeting.fn("a", "Kick-off", ["ops"], MONDAY_NINE, MONDAY_NINE + timedelta(hours=1))
    busy = calendar.book_meeting.fn("b", "Other", ["ops"], MONDAY_NINE, MONDAY_NINE + timedelta(minutes=30))
    assert isinstance(busy, Declined) and busy.details["existing_id"] == "MTG-000001"
    with pytest.raises(Conflict):  # the same meeting's key reused for another time: a bug, not a taken slot
        calendar.book_meeting.fn(
            "a", "Kick-off", ["ops"], MONDAY_NINE + timedelta(hours=2), MONDAY_NINE + timedelta(hours=3)
        )
    assert len(sandbox.ledger()) == 2  # only the account and the first meeting were done
