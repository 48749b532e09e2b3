"""Prefect's retries with the shared retry condition, run for real: the client tasks inside small
flows on the session's Prefect test server, against the sandbox with faults injected."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import httpx
import pytest
from prefect import flow

from sandbox.faults import Fault
from sandbox.faults import Faults
from tasks import activation
from tasks import billing
from tasks import calendar
from tasks import crm
from tasks import provisioning
from tasks.http import NotFound
from tasks.http import SystemClient
from tasks.http import SystemUnavailable

pytestmark = pytest.mark.usefixtures("prefect_harness", "quick_retries")

MONDAY_NINE = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@flow(name="sandbox-probe-open-account")
def open_account_flow(customer_id: str) -> str:
    return billing.open_account(customer_id).id


def test_transient_failures_are_retried_until_the_call_succeeds(sandbox, monkeypatch):
    answers = iter(
        [
            httpx.Response(503, json={"error": "unavailable", "reason": "billing is down"}),
            httpx.ReadTimeout("timed out"),
            httpx.Response(500, text="oops"),
            httpx.Response(201, json={"id": "BA-000042", "customer_id": "ALFKI", "status": "open"}),
        ]
    )
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        outcome = next(answers)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(
        billing.SYSTEM, "client", lambda: SystemClient("billing", transport=httpx.MockTransport(answer))
    )

    assert open_account_flow("ALFKI") == "BA-000042"
    assert seen == ["billing-account:ALFKI"] * 4  # every retry carries the same key


def test_a_system_that_stays_down_is_tried_six_times_then_the_flow_sees_it(sandbox):
    sandbox.set_faults(down=["billing"])
    with pytest.raises(SystemUnavailable, match="billing is down"):
        open_account_flow("ALFKI")
    assert len(sandbox.requests("billing")) == 1 + 5


@flow(name="sandbox-probe-rejections")
def rejections_flow(on_hold: str) -> list[str]:
    reasons = [provisioning.reserve("1", 1, 5, 1).error]  # discontinued product: 422, Declined
    try:
        crm.get_customer("NOBODY")  # 404
    except NotFound as missing:
        reasons.append(missing.error)
    reasons.append(crm.check_credit("2", on_hold, 10.0).error)  # 201, declined: Declined
    return reasons


def test_rejections_are_not_retried(sandbox):
    reasons = rejections_flow(sandbox.sandbox.reference.on_hold()[0])
    assert reasons == ["product_discontinued", "not_found", "credit_declined"]
    assert [(r["method"], r["status_code"]) for r in sandbox.requests()] == [("POST", 422), ("GET", 404), ("POST", 201)]


def order_steps(run, order_id: str, customer_id: str, lines: list[tuple[int, int, float]]) -> None:
    """One order through every system, as the pipeline's flows will call the clients.

    `run(task, *args)` calls a client task: as a Prefect task in a flow, or its plain `.fn`."""
    total = round(sum(quantity * price for _, quantity, price in lines), 2)
    run(crm.check_credit, order_id, customer_id, total)
    run(
        crm.send_quote,
        f"Q-{order_id}",
        customer_id,
        [{"product_id": p, "quantity": q, "unit_price": u} for p, q, u in lines],
        total,
        date.today() + timedelta(days=30),
    )
    for line_no, (product_id, quantity, _) in enumerate(lines, start=1):
        reservation = run(provisioning.reserve, order_id, line_no, product_id, quantity)
        job = run(provisioning.provision, order_id, line_no, reservation.id)
        if job.needs_technician:
            job = run(provisioning.complete_visit, job.id, "Robert King")
        switched_on = run(activation.activate, order_id, job.resource_id)
        if not run(activation.verify, switched_on.id).verified:
            run(activation.verify, switched_on.id, 2)
    account = run(billing.open_account, customer_id)
    invoice_lines = [
        {"description": f"product {p}", "quantity": q, "unit_price": u, "amount": round(q * u, 2)} for p, q, u in lines
    ]
    run(billing.issue_invoice, account.id, order_id, invoice_lines, "USD", 0.0, total)
    people = ["sales", f"ops-{order_id}"]
    start = run(calendar.find_slots, MONDAY_NINE, 60, people)[0].start
    run(
        calendar.book_meeting,
        f"handoff:{order_id}",
        f"Handoff {customer_id}",
        people,
        start,
        start + timedelta(hours=1),
    )


@flow(name="sandbox-probe-order")
def order_flow(order_id: str, customer_id: str, lines: list[tuple[int, int, float]]) -> None:
    order_steps(lambda task, *args: task(*args), order_id, customer_id, lines)


ORDERS = [
    ("10248", "VINET", [(11, 12, 14.0), (10, 10, 31.0), (72, 5, 34.8)]),  # Ikura needs a technician
    ("10249", "TOMSP", [(14, 9, 18.6), (51, 40, 42.4)]),
]


def side_effects(sandbox) -> Counter:
    return Counter((e["system"], e["idempotency_key"]) for e in sandbox.ledger())


def test_under_injected_faults_every_side_effect_happens_exactly_once(sandbox):
    # What the orders do when nothing goes wrong (plain calls, no Prefect, no retries: quick). A
    # busy machine may take more than the fixture's 1 s to answer a plain call (it did once in a
    # full run), and without faults there is no hang to cut short: wait as long as it takes.
    with pytest.MonkeyPatch.context() as patient:
        for module in (crm, provisioning, activation, billing, calendar):
            patient.setattr(module.SYSTEM, "timeout", httpx.Timeout(30.0))
        for order in ORDERS:
            order_steps(lambda task, *args: task.fn(*args), *order)
    clean = side_effects(sandbox)
    assert set(clean.values()) == {1} and len(clean) == 33  # incl. 2 second verifications

    # The same orders in flows on a bad day: 20 % 5xx, 15 % hangs (half of them after the work).
    sandbox.sandbox.reset(Faults(error_share=0.2, timeout_share=0.15, timeout_after_share=0.5, seed=11))
    for order in ORDERS:
        order_flow(*order)

    assert side_effects(sandbox) == clean  # each side effect exactly once, none missing
    met = Counter(r["fault"] for r in sandbox.requests())
    assert met[Fault.ERROR] >= 3 and met[Fault.TIMEOUT_BEFORE] >= 1 and met[Fault.TIMEOUT_AFTER] >= 1
    # A hang after the work was followed by a retry that got the recorded answer back.
    replayed = {r["idempotency_key"] for r in sandbox.requests() if r["replay"]}
    hung_after = {
        r["idempotency_key"] for r in sandbox.requests() if r["fault"] == Fault.TIMEOUT_AFTER and r["method"] == "POST"
    }
    assert hung_after and hung_after <= replayed
