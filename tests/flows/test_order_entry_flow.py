"""Order entry end to end on a Prefect server: the run waits for a rep's form and is resumed
through the Prefect API, as the UI or `handoff complete` would do it."""

import contextvars
import json
import time
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client

from flows.order_entry import order_entry
from handoff.core.db import session
from handoff.core.intake import submit_orders
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.routing.router import NotAllowed
from handoff.core.settings import settings
from handoff.runtime.steps import complete_step
from handoff.runtime.steps import waiting_steps

pytestmark = pytest.mark.usefixtures("prefect_harness", "catalogue", "reps", "sandbox")


@pytest.fixture(autouse=True)
def quick_polling(monkeypatch):
    monkeypatch.setattr(settings, "pause_poll_seconds", 1)


def receive(order_id, quantity=10, due="2024-03-15", customer="AROUT", product=1, price=18.0):
    """AROUT: credit limit 20,000 and not on hold in the CRM stand-in, so credit passes."""
    order = {
        "order_id": order_id,
        "customer_id": customer,
        "order_date": "2024-03-01",
        "due_date": due,
        "lines": [{"product_id": product, "quantity": quantity, "unit_price": price, "discount": 0}],
    }
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == [order_id]


def start_in_background(pool, order_id) -> Future:
    return pool.submit(contextvars.copy_context().run, order_entry, order_id, return_state=True)


def wait_for_step(order_id, timeout=60):
    """The order's step, once its run has paused for the form (the step is listed a moment
    before: the run notes its pause key, then pauses)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for step in waiting_steps():
            if step.order_id == order_id:
                with get_client(sync_client=True) as client:
                    if client.read_flow_run(UUID(step.flow_run_id)).state.is_paused():
                        return step
        time.sleep(0.2)
    raise AssertionError(f"no step waiting for order {order_id}")


def status(order_id):
    with session() as s:
        order = s.get(Order, order_id)
        return order.status, order.reason


def test_a_small_clean_order_is_accepted_without_a_person():
    receive("S-1", quantity=2)
    state = order_entry("S-1", return_state=True)
    assert state.is_completed()
    assert status("S-1") == ("accepted", None)
    assert not [s for s in waiting_steps() if s.order_id == "S-1"]


def test_a_large_order_waits_for_its_rep_and_resumes_with_the_form():
    receive("L-1", quantity=400)  # 7,200 ≥ the large-order threshold
    with ThreadPoolExecutor(1) as pool:
        run = start_in_background(pool, "L-1")
        step = wait_for_step("L-1")
        assert step.work_type == "order-approval" and step.assignee is not None

        # The waiting run names its assignee, so reps find their own work in the UI.
        with get_client(sync_client=True) as client:
            waiting = client.read_flow_run(UUID(step.flow_run_id))
        assert step.assignee in waiting.name
        assert any(t.startswith("assignee:") for t in waiting.tags)
        deadline = time.monotonic() + 30  # the step is listed as soon as its key is kept, just before the pause
        while not waiting.state.is_paused() and time.monotonic() < deadline:
            time.sleep(0.3)
            with get_client(sync_client=True) as client:
                waiting = client.read_flow_run(UUID(step.flow_run_id))
        assert waiting.state.is_paused()

        with session() as s:
            item = s.get(WorkItem, step.item_id)
            rep = s.get(Worker, item.assignee_id)
            assert rep.skill_levels["order-entry"] >= item.required_skills["order-entry"]
            assert "L-1" in item.title

        complete_step(step.item_id, {"completed_by": step.assignee, "decision": "approve", "note": "ok"})
        state = run.result(timeout=60)
    assert state.is_completed()
    assert status("L-1") == ("accepted", None)
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.outcome, item.completed_by) == ("completed", "approve", step.assignee)
        assert item.completed_at is not None and item.answer["note"] == "ok"
    with get_client(sync_client=True) as client:
        assert "assignee:" not in " ".join(client.read_flow_run(UUID(step.flow_run_id)).tags)


def test_a_rejection_ends_the_order_with_the_reps_reason():
    receive("R-1", due="2024-02-01")  # due before it was ordered: a checklist error
    with ThreadPoolExecutor(1) as pool:
        run = start_in_background(pool, "R-1")
        step = wait_for_step("R-1")
        complete_step(
            step.item_id,
            {"completed_by": step.assignee, "decision": "reject", "note": "customer must confirm a new date"},
        )
        assert run.result(timeout=60).is_completed()
    assert status("R-1") == ("rejected", "customer must confirm a new date")


def test_someone_else_cannot_complete_the_step_and_it_stays_assigned():
    receive("N-1", quantity=400)
    with ThreadPoolExecutor(1) as pool:
        run = start_in_background(pool, "N-1")
        step = wait_for_step("N-1")
        with session() as s:
            other = next(w.name for w in s.query(Worker).all() if w.name != step.assignee and w.role == "rep")
        with pytest.raises(NotAllowed, match="only the assignee or a supervisor"):
            complete_step(step.item_id, {"completed_by": other, "decision": "approve", "note": ""})
        with session() as s:
            item = s.get(WorkItem, step.item_id)
            assert item.state == "assigned" and item.assignee.name == step.assignee

        # A rejection without a reason is a bad form, named by field.
        with pytest.raises(Exception, match="note"):
            complete_step(step.item_id, {"completed_by": step.assignee, "decision": "reject", "note": " "})

        complete_step(step.item_id, {"completed_by": "Andrew Fuller", "decision": "approve", "note": "supervisor"})
        assert run.result(timeout=60).is_completed()
    assert status("N-1")[0] == "accepted"
    with session() as s:
        audit = [
            (e.actor, e.action) for e in s.query(AuditEvent).filter_by(entity="work_item", entity_id=str(step.item_id))
        ]
    assert ("Andrew Fuller", "completed") in audit


def test_a_completion_from_the_ui_by_the_wrong_person_is_refused_and_asked_again():
    """The UI resumes the run directly (no CLI check): the flow itself refuses and waits again."""
    from prefect.flow_runs import resume_flow_run
    from prefect.input import read_flow_run_input

    from handoff.runtime.prefect_patches import pause_keyset

    receive("U-1", quantity=400)
    with ThreadPoolExecutor(1) as pool:
        run = start_in_background(pool, "U-1")
        step = wait_for_step("U-1")
        with get_client(sync_client=True) as client:  # the keys the run waits on, from its paused state
            keyset = pause_keyset(client.read_flow_run(UUID(step.flow_run_id)).state)
        while read_flow_run_input(key=keyset["schema"], flow_run_id=UUID(step.flow_run_id)) is None:
            time.sleep(0.2)
        resume_flow_run(
            UUID(step.flow_run_id), run_input={"completed_by": "Robert King", "decision": "approve", "note": "x"}
        )

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the run pauses again on a new key
            again = [s for s in waiting_steps() if s.order_id == "U-1" and s.input_key != step.input_key]
            if again:
                break
            time.sleep(0.2)
        assert again, "the run did not ask again after a refused completion"
        with session() as s:
            item = s.get(WorkItem, step.item_id)
            assert item.state == "assigned" and item.assignee.name == step.assignee
            refused = s.query(AuditEvent).filter_by(entity_id=str(step.item_id), action="completion-refused").one()
            # The name typed in the form is not who the audit names: nothing proved who sent it.
            assert refused.actor == "unverified" and refused.details["claimed_by"] == "Robert King"
            assert "no proof of who sent it" in refused.details["reason"]
        complete_step(step.item_id, {"completed_by": step.assignee, "decision": "approve", "note": "mine"})
        assert run.result(timeout=60).is_completed()
    assert status("U-1")[0] == "accepted"
