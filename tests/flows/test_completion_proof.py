"""No path completes a step as someone else: answers sent straight to Prefect's API (as the UI's
Resume dialog does) are refused by the flow unless they carry handoff's proof for that item,
attempt, person and answer. Each refusal is audited with its reason and the step is asked again,
still assigned; then the assignee completes it through the worklist, and the run moves on.
"""

from __future__ import annotations

import contextvars
import re
import time
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run
from prefect.input import read_flow_run_input
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.identity import completion_proof
from handoff.core.identity import sign_in
from handoff.core.models import AuditEvent
from handoff.core.models import WorkItem
from handoff.runtime import prefect_patches
from handoff.runtime.steps import waiting_steps
from handoff.runtime.worklist import create_worklist_app
from tests.flows.test_order_entry_flow import receive
from tests.flows.test_order_entry_flow import start_in_background
from tests.flows.test_order_entry_flow import status
from tests.flows.test_order_entry_flow import wait_for_step

pytestmark = pytest.mark.usefixtures("prefect_harness", "catalogue", "reps", "sandbox")

ANSWER = {"decision": "approve", "note": "looks fine"}


@pytest.fixture(autouse=True)
def quick_polling(monkeypatch):
    from handoff.core.settings import settings

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)


def wait_for_form(step, timeout: float = 45) -> None:
    """Until the run is paused for this step and has saved its form (the keys read from its state)."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            keyset = prefect_patches.pause_keyset(client.read_flow_run(UUID(step.flow_run_id)).state)
            if keyset and read_flow_run_input(key=keyset["schema"], flow_run_id=UUID(step.flow_run_id)) is not None:
                return
            assert time.monotonic() < deadline, f"the run never showed the form for {step.input_key}"
            time.sleep(0.2)


def refused_and_asked_again(step, run_input: dict, reason: str, timeout: float = 45):
    """Send `run_input` straight to Prefect; the flow must refuse it for `reason` and ask again."""
    wait_for_form(step)
    resume_flow_run(UUID(step.flow_run_id), run_input=run_input)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        again = [s for s in waiting_steps() if s.item_id == step.item_id and s.input_key != step.input_key]
        if again:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the run did not ask again after: {reason}")
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert item.state == "assigned" and item.assignee.name == step.assignee  # still theirs
        refusal = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_id == str(step.item_id), AuditEvent.action == "completion-refused")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert re.search(reason, refusal.details["reason"]), refusal.details
        assert refusal.actor == "unverified"  # never the name typed in the form
    return again[0]


def test_forged_replayed_and_tampered_answers_are_refused_then_the_worklist_completes_it():
    receive("P-1", quantity=400)
    with ThreadPoolExecutor(1) as pool:
        run = start_in_background(pool, "P-1")
        first = wait_for_step("P-1")
        rep = first.assignee
        named = {**ANSWER, "completed_by": rep}

        # 1. The assignee's name typed in the UI's Resume dialog (or sent to the API): no proof.
        step = refused_and_asked_again(first, named, "no proof of who sent it")
        # 2. A proof made with some other key.
        forged = URLSafeSerializer("guessed", salt="handoff.completion").dumps({"item": step.item_id, "by": rep})
        step = refused_and_asked_again(step, {**named, "completion_proof": forged}, "forged or damaged")
        # 3. A real proof, replayed from the first attempt.
        old = completion_proof.sign_completion(step.item_id, first.input_key, rep, named)
        step = refused_and_asked_again(step, {**named, "completion_proof": old}, "earlier attempt.*replay")
        # 4. A real proof for this attempt, with the answer changed after signing.
        current = completion_proof.sign_completion(step.item_id, step.input_key, rep, named)
        tampered = {**named, "decision": "reject", "note": "changed in transit", "completion_proof": current}
        step = refused_and_asked_again(step, tampered, "altered after it was signed")
        # 5. A real proof for this attempt and answer, but with someone else's name in the form.
        signed_for_rep = completion_proof.sign_completion(
            step.item_id, step.input_key, rep, {**named, "completed_by": "Andrew Fuller"}
        )
        step = refused_and_asked_again(
            step, {**named, "completed_by": "Andrew Fuller", "completion_proof": signed_for_rep}, "signed for|altered"
        )

        # The assignee signs in to the worklist and completes it: the run moves on.
        with session() as s:
            sign_in.set_password(s, rep, "the rep's own password", actor="test")
        app = TestClient(create_worklist_app(), follow_redirects=False)
        login_page = app.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
        assert (
            app.post("/login", data={"csrf_token": csrf, "name": rep, "password": "the rep's own password"}).status_code
            == 303
        )
        # Anyone who reaches Prefect's API can rewrite the step's text there; reps never read that copy.
        wait_for_form(step)
        with get_client(sync_client=True) as client:
            keyset = prefect_patches.pause_keyset(client.read_flow_run(UUID(step.flow_run_id)).state)
            client.delete_flow_run_input(UUID(step.flow_run_id), keyset["description"])
            client.create_flow_run_input(
                UUID(step.flow_run_id), keyset["description"], '"Pre-approved by a supervisor: choose approve."'
            )
        item_page = app.get(f"/items/{step.item_id}").text
        assert "Refused:" in item_page and "Order P-1" in item_page  # the re-asked step says why
        assert "Pre-approved" not in item_page and "Pre-approved" not in app.get("/").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', item_page).group(1)
        wait_for_form(step)
        sent = app.post(f"/items/{step.item_id}", data={"csrf_token": csrf, **ANSWER})
        assert sent.status_code == 303, sent.text
        assert run.result(timeout=60).is_completed()
    assert status("P-1")[0] == "accepted"
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.completed_by, item.outcome) == ("completed", rep, "approve")
        assert "completion_proof" not in item.answer
        trail = [
            (e.actor, e.action, e.details.get("via"))
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.entity_id == str(step.item_id)).order_by(AuditEvent.id)
            )
        ]
    assert [a for a in trail if a[1] == "completion-refused"] == [("unverified", "completion-refused", None)] * 5
    assert (rep, "completed", None) in trail and (rep, "completion-verified", "worklist") in trail


def an_approval(order_id: str):
    """An approval step of its own (no order behind it), titled "Approve <order_id>"."""
    from tasks.human_step import HumanStep

    return HumanStep(
        work_type="order-approval",
        step_key=f"approval-of-{order_id}",
        title=f"Approve {order_id}",
        description=f"### Order {order_id}",
        required_skills={"order-entry": 1},
    )


def test_an_answer_refused_once_stays_refused_when_the_run_starts_again_from_the_top(monkeypatch):
    """A suspended run starts again from the top when it resumes (and a crashed one when it is
    restarted): it used to wait on attempt 0 again, where Prefect hands back attempt 0's stored
    answer — one refused because the item had changed hands — and took it, once its sender held
    the item again, over the answer she gave since (found by an outside tester). A refusal now
    moves the item to the next attempt in the same transaction; a run always carries on there."""
    from prefect import flow

    import tasks.human_step as human_step
    from checklists.forms import OrderApproval
    from handoff.core.models import Worker
    from handoff.runtime.steps import complete_step

    crashed: list[str] = []
    escape = human_step.without_links

    def dies_right_after_the_first_refusal(markdown: str) -> str:
        if markdown.startswith("**Refused:**") and not crashed:
            crashed.append(markdown)
            raise RuntimeError("the process died right after the refusal was recorded")
        return escape(markdown)

    monkeypatch.setattr(human_step, "without_links", dies_right_after_the_first_refusal)

    @flow
    def one_approval() -> str:
        step = an_approval("R-1")
        try:
            return human_step.ask_a_person(step, OrderApproval).decision
        except RuntimeError:  # starts again from the top, in this run: its pauses so far count as fired
            time.sleep(4)
            return human_step.ask_a_person(step, OrderApproval).decision

    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(__import__("contextvars").copy_context().run, one_approval, return_state=True)
        deadline = time.monotonic() + 60
        while not (steps := [s for s in waiting_steps() if s.title == "Approve R-1"]):
            assert time.monotonic() < deadline, "the step never waited"
            time.sleep(0.2)
        [first] = steps
        rep = first.assignee
        wait_for_form(first)
        with session() as s:  # the item changes hands just before the rep's signed answer is recorded
            item = s.get(WorkItem, first.item_id)
            other = s.scalar(select(Worker).where(Worker.name != rep, Worker.role == "rep"))
            item.assignee_id = other.id
        approve = {"decision": "approve", "note": "first thought", "completed_by": rep}
        proof = completion_proof.sign_completion(first.item_id, first.input_key, rep, approve)
        resume_flow_run(UUID(first.flow_run_id), run_input={**approve, completion_proof.PROOF_FIELD: proof})
        while not crashed:  # refused (not hers any more), and the process dies
            assert time.monotonic() < deadline + 30, "the answer was never refused"
            time.sleep(0.1)
        with session() as s:  # back with her before the run starts again
            item = s.get(WorkItem, first.item_id)
            item.assignee_id = s.scalar(select(Worker.id).where(Worker.name == rep))
        deadline = time.monotonic() + 60
        while True:
            with session() as s:
                item = s.get(WorkItem, first.item_id)
                assert item.state != "completed", f"attempt 0's refused answer was taken: {item.outcome}"
                waiting_again = item.input_key != first.input_key
            if waiting_again:
                break
            assert time.monotonic() < deadline, "the run did not wait on the next attempt"
            time.sleep(0.2)
        [again] = [s for s in waiting_steps() if s.item_id == first.item_id]
        wait_for_form(again)
        with session() as s:  # the refused answer is no longer on its way
            assert s.get(WorkItem, first.item_id).answer_sent_at is None
        complete_step(again.item_id, {"decision": "reject", "note": "on reflection"}, by=rep)
        assert run.result(timeout=60).result() == "reject"
    with session() as s:
        item = s.get(WorkItem, first.item_id)
        assert (item.outcome, item.completed_by, item.attempt) == ("reject", rep, 1)
        refusals = s.scalars(
            select(AuditEvent).where(
                AuditEvent.entity_id == str(first.item_id), AuditEvent.action == "completion-refused"
            )
        ).all()
    assert len(refusals) == 1 and refusals[0].actor == rep  # recorded once, not again on the re-run


def test_an_answer_sent_to_a_run_that_died_before_recording_it_is_taken_by_the_restarted_run(monkeypatch):
    """Prefect took the rep's answer; the run's process was killed before it recorded it; the
    run restarted by sla-watch (a new run) asked for it again — the answer lived only in the
    dead run's input, and the rep was not told (found by an outside tester, on the worker
    stack). handoff keeps the signed answer it sent until a run records or refuses it."""
    from prefect import flow

    import tasks.human_step as human_step
    from checklists.forms import OrderApproval
    from handoff.runtime.steps import complete_step

    record = human_step.record_completion
    died: list[int] = []

    def killed_before_recording(*args, **kwargs):
        if not died:
            died.append(args[0])
            raise RuntimeError("the flow-run process was killed")
        return record(*args, **kwargs)

    monkeypatch.setattr(human_step, "record_completion", killed_before_recording)

    @flow
    def one_approval() -> str:
        return human_step.ask_a_person(an_approval("K-1"), OrderApproval).decision

    run = contextvars.copy_context().run
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(run, one_approval, return_state=True)
        deadline = time.monotonic() + 60
        while not (steps := [s for s in waiting_steps() if s.title == "Approve K-1"]):
            assert time.monotonic() < deadline, "the step never waited"
            time.sleep(0.2)
        [step] = steps
        wait_for_form(step)
        complete_step(step.item_id, {"decision": "reject", "note": "not this one"}, by=step.assignee)
        assert first.result(timeout=60).is_failed() and died == [step.item_id]
    # The restart: a new run of the same step takes the answer without asking anyone again.
    restarted = one_approval(return_state=True)
    assert restarted.is_completed() and restarted.result() == "reject"
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.completed_by, item.outcome) == ("completed", step.assignee, "reject")
        assert item.flow_run_id != step.flow_run_id and item.sent_answer is None and item.answer_sent_at is None
