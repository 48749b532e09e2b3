"""Business outcomes are results, not failures: a declined credit check, a refused order line or
a taken meeting slot ends its task run Completed, and the flow branches on the value. Failed in
the Prefect UI means something broke.

Task runs are read back through the Prefect client, as the UI shows them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from uuid import UUID

import pytest
from prefect import flow
from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter
from prefect.client.schemas.filters import TaskRunFilterFlowRunId

from flows.handoff_meeting import handoff_meeting
from flows.order_entry import order_entry
from flows.provisioning import provisioning
from handoff.core.db import session
from handoff.core.intake import submit_orders
from handoff.core.models import Order
from tasks.http import BusinessRejection

pytestmark = pytest.mark.usefixtures("prefect_harness", "catalogue", "reps", "sandbox")

ON_HOLD = "BLAUS"  # on credit hold in the CRM stand-in (sandbox.reference)


def receive(order_id, lines, customer="AROUT"):
    order = {
        "order_id": order_id,
        "customer_id": customer,
        "order_date": "2030-03-01",
        "due_date": "2030-03-15",
        "lines": [{"product_id": p, "quantity": q, "unit_price": price, "discount": 0} for p, q, price in lines],
    }
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == [order_id]


def task_runs(flow_run_id: UUID, expected: list[str], timeout: float = 30) -> list[tuple[str, str]]:
    """(task run name, state type) of each task run of the flow run, once the server has every
    expected one (a name listed twice: two runs) and all are final: task run states reach the
    server as events, a moment after the run."""
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])), limit=200
            )
        states = [(run.name, run.state.type.value if run.state else "NONE") for run in runs]
        seen = Counter(name for name, _ in states)
        settled = all(s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for _, s in states)
        if (not Counter(expected) - seen and settled) or time.monotonic() > deadline:
            return states
        time.sleep(0.3)


def state_of(states: list[tuple[str, str]], name: str) -> list[str]:
    return [state for run, state in states if run == name]


def not_completed(states: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, state) for name, state in states if state != "COMPLETED"]


# --- the check can see a failed task run (so its silence below means something) -----------------


@task(task_run_name="refuse-politely")
def refuse_politely() -> None:
    raise BusinessRejection("crm", "declined the old way", status_code=422)


@flow(name="probe-a-business-rejection-raised")
def rejection_raised() -> str:
    try:
        refuse_politely()
    except BusinessRejection:
        return "caught"
    return "not raised"


def test_a_rejection_raised_in_a_task_shows_as_a_failed_task_run():
    state = rejection_raised(return_state=True)
    assert state.result() == "caught"
    states = task_runs(state.state_details.flow_run_id, ["refuse-politely"])
    assert state_of(states, "refuse-politely") == ["FAILED"]


# --- the procedures ------------------------------------------------------------------------------


def test_a_declined_credit_check_completes_and_the_credit_review_decides(responder, sandbox):
    receive("D-1", [(1, 10, 18.0)], customer=ON_HOLD)
    state = order_entry("D-1", return_state=True)
    assert state.result() == "accepted"  # the stand-in credit reviewer extends credit
    assert [a[0] for a in responder.answered] == ["credit-review"]
    assert sandbox.ledger("crm", "check_credit")[0]["response"]["decision"] == "declined"

    states = task_runs(state.state_details.flow_run_id, ["credit-check-D-1", "accept-order-D-1"])
    assert state_of(states, "credit-check-D-1") == ["COMPLETED"]
    assert not_completed(states) == []


def test_a_declined_credit_check_that_the_reviewer_rejects_ends_the_order_without_a_failure(responder):
    responder.overrides["credit-review"] = lambda step, answer: {"decision": "reject", "note": "on hold"}
    receive("D-2", [(1, 10, 18.0)], customer=ON_HOLD)
    state = order_entry("D-2", return_state=True)
    assert state.is_completed() and state.result() == "rejected"
    with session() as s:
        assert s.get(Order, "D-2").status == "rejected"
    states = task_runs(state.state_details.flow_run_id, ["credit-check-D-2", "reject-order-D-2"])
    assert state_of(states, "credit-check-D-2") == ["COMPLETED"]
    assert not_completed(states) == []


def test_a_refused_line_completes_and_operations_decide(responder):
    # 1 Chai, 5 Gumbo Mix (discontinued: provisioning refuses it)
    receive("D-3", [(1, 3, 18.0), (5, 1, 21.35)])
    state = provisioning("D-3", return_state=True)
    assert state.result() == "provisioned"
    assert [a[0] for a in responder.answered] == ["provisioning-exception"]
    states = task_runs(state.state_details.flow_run_id, ["reserve-D-3-1", "reserve-D-3-2", "drop-line-D-3-2"])
    assert state_of(states, "reserve-D-3-2") == ["COMPLETED"]
    assert not_completed(states) == []


def test_a_taken_meeting_slot_completes_and_the_next_free_one_is_booked(responder, sandbox, monkeypatch):
    import flows.handoff_meeting as meeting_flow
    from tasks.calendar import book_meeting
    from tasks.calendar import find_slots

    taken = []

    def found_then_taken(after, duration_minutes, attendees, count=1):
        slots = find_slots.fn(after, duration_minutes, attendees, count)
        if not taken:  # another account's meeting takes the first slot found
            taken.append(book_meeting.fn("handoff:OTHER:1", "another account", attendees, slots[0].start, slots[0].end))
        return slots

    monkeypatch.setattr(meeting_flow, "find_slots", found_then_taken)
    state = handoff_meeting("AROUT", return_state=True)
    assert state.result() == "signed"
    assert len(sandbox.ledger("calendar", "book_meeting")) == 2
    states = task_runs(state.state_details.flow_run_id, ["book-meeting-handoff:AROUT:1"] * 2)
    assert state_of(states, "book-meeting-handoff:AROUT:1") == ["COMPLETED", "COMPLETED"]
    assert not_completed(states) == []
