"""No path completes a step as someone else: answers sent straight to Prefect's API (as the UI's
Resume dialog does) are refused by the flow unless they carry handoff's proof for that item,
attempt, person and answer. Each refusal is audited with its reason and the step is asked again,
still assigned; then the assignee completes it through the worklist, and the run moves on.
"""

from __future__ import annotations

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

from handoff.core import identity
from handoff.core.db import session
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
        old = identity.sign_completion(step.item_id, first.input_key, rep, named)
        step = refused_and_asked_again(step, {**named, "completion_proof": old}, "earlier attempt.*replay")
        # 4. A real proof for this attempt, with the answer changed after signing.
        current = identity.sign_completion(step.item_id, step.input_key, rep, named)
        tampered = {**named, "decision": "reject", "note": "changed in transit", "completion_proof": current}
        step = refused_and_asked_again(step, tampered, "altered after it was signed")
        # 5. A real proof for this attempt and answer, but with someone else's name in the form.
        signed_for_rep = identity.sign_completion(
            step.item_id, step.input_key, rep, {**named, "completed_by": "Andrew Fuller"}
        )
        step = refused_and_asked_again(
            step, {**named, "completed_by": "Andrew Fuller", "completion_proof": signed_for_rep}, "signed for|altered"
        )

        # The assignee signs in to the worklist and completes it: the run moves on.
        with session() as s:
            identity.set_password(s, rep, "the rep's own password", actor="test")
        app = TestClient(create_worklist_app(), follow_redirects=False)
        login_page = app.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
        assert (
            app.post("/login", data={"csrf_token": csrf, "name": rep, "password": "the rep's own password"}).status_code
            == 303
        )
        item_page = app.get(f"/items/{step.item_id}").text
        assert "Refused:" in item_page and "Order P-1" in item_page  # the re-asked step says why
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
