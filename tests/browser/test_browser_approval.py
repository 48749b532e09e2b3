"""The Prefect UI's Resume dialog can no longer decide a step, in a real browser.

Order entry runs in a subprocess against a Prefect server with its UI and pauses for the rep's
OrderApproval form. Headless Chromium does what an impostor can do there: finds the run by the
assignee's tag, opens Resume, types the assignee's name and submits — refused: no proof of who
sent it; the run asks again and its form now says why. Then a proof captured from that earlier
attempt, pasted in (a replay), and a proof for this attempt with the decision changed (tampered):
both refused and asked again, the item still with its rep. Finally the rep signs in to the
worklist and completes it there; the run's page in the Prefect UI shows it Completed. The
handoff database, its audit trail and the Prefect API confirm each step. Screenshots are saved
($HANDOFF_SCREENSHOT_DIR, else the test's tmp_path).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from urllib.parse import quote

import httpx
import pytest

from handoff.core.db import session
from handoff.core.identity import completion_proof
from handoff.core.identity import sign_in
from handoff.core.intake import submit_orders
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import WorkItem
from handoff.runtime.steps import waiting_steps

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.committed,
    pytest.mark.usefixtures("catalogue", "reps"),
]

ORDER_ID = "B-1"
NOTE = "Quantity and price checked with the customer."
STEP_SECONDS = 60  # order entry reaches the rep's step (or asks again)
FLOW_END_SECONDS = 60  # the resumed run finishes
UI_TIMEOUT_MS = 20_000  # any one action or expectation in the page


def receive_large_order(order_id: str) -> None:
    """AROUT has 20,000 of credit and is not on hold; 400 × 18.00 = 7,200 ≥ 5,000 needs a rep."""
    order = {
        "order_id": order_id,
        "customer_id": "AROUT",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "lines": [{"product_id": 1, "quantity": 400, "unit_price": 18.0, "discount": 0}],
    }
    assert submit_orders([(json.dumps(order), order)], source="browser-test", announce=False).accepted == [order_id]


def form_shown(api: str, step) -> dict | None:
    """The step's run, once it has paused AND saved the form's schema under the keys its paused
    state names (prefect_patches.pause_keyset); the UI shows the form only then."""
    run = httpx.get(f"{api}/flow_runs/{step.flow_run_id}", timeout=5)
    if run.status_code != 200 or run.json()["state_type"] != "PAUSED":
        return None
    keyset = run.json()["state"]["state_details"].get("run_input_keyset") or {}
    if "schema" not in keyset or not step.input_key.endswith(run.json()["state"]["state_details"]["pause_key"]):
        return None
    schema = httpx.get(f"{api}/flow_runs/{step.flow_run_id}/input/{keyset['schema']}", timeout=5)
    return run.json() if schema.status_code == 200 else None


def wait_until_paused_for_the_form(api: str, flow, order_id: str):
    """The rep's step, once its run shows the form (before, the UI offers a plain resume)."""
    deadline = time.monotonic() + STEP_SECONDS
    step = None
    while time.monotonic() < deadline:
        if flow.proc.poll() is not None:
            pytest.fail(f"order entry exited ({flow.proc.returncode}) before asking a rep:\n{flow.log_tail()}")
        step = step or next((s for s in waiting_steps() if s.order_id == order_id), None)
        if step is not None and (run := form_shown(api, step)) is not None:
            return step, run
        time.sleep(0.3)
    pytest.fail(f"order {order_id} did not pause for a rep within {STEP_SECONDS} s:\n{flow.log_tail()}")


def asked_again(api: str, flow, step, before: str):
    """The same item, waiting again on a new key (the refused attempt's successor)."""
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        if flow.proc.poll() is not None:
            pytest.fail(f"order entry exited ({flow.proc.returncode}) instead of asking again:\n{flow.log_tail()}")
        again = next((s for s in waiting_steps() if s.item_id == step.item_id and s.input_key != before), None)
        if again is not None and form_shown(api, again) is not None:
            return again
        time.sleep(0.3)
    pytest.fail(f"the run did not ask again within {STEP_SECONDS} s:\n{flow.log_tail()}")


def last_refusal(item_id: int) -> AuditEvent:
    with session() as s:
        return (
            s.query(AuditEvent)
            .filter_by(entity_id=str(item_id), action="completion-refused")
            .order_by(AuditEvent.id.desc())
            .first()
        )


def resume_in_the_dialog(page, name: str, decision: str, note: str, proof: str | None = None):
    """Open the paused run's Resume dialog and send the form as typed."""
    from playwright.sync_api import expect

    page.reload()
    expect(page.get_by_text("Paused", exact=True).first).to_be_visible()
    page.get_by_role("button", name="Open menu").click()
    page.get_by_role("menuitem", name="Resume").click()
    form = page.get_by_role("dialog", name="Resume Flow Run")
    expect(form.get_by_text(f"Order {ORDER_ID}").first).to_be_visible()  # the step's description
    form.get_by_label("Completed By").fill(name)
    form.get_by_role("button", name="Select Decision").click()
    page.get_by_role("option", name=decision, exact=True).click()
    form.get_by_label("Note", exact=True).fill(note)
    if proof is not None:
        form.get_by_label("Completion Proof").fill(proof)
    return form


def test_the_resume_dialog_is_refused_and_the_rep_completes_in_the_worklist(
    ui_server, worklist_server, order_entry_process, chromium, screenshot_dir
):
    from playwright.sync_api import expect

    started = time.monotonic()
    receive_large_order(ORDER_ID)
    flow = order_entry_process(ui_server, ORDER_ID)
    step, waiting_run = wait_until_paused_for_the_form(ui_server.api, flow, ORDER_ID)
    first = step
    rep = step.assignee
    assert step.work_type == "order-approval" and rep
    assignee_tag = next(t for t in waiting_run["tags"] if t.startswith("assignee:"))
    print(f"order {ORDER_ID} waits for {rep} in flow run {step.flow_run_id} ({time.monotonic() - started:.1f} s)")

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)  # expectations wait 5 s by default
    # Only our servers: the UI's analytics calls would just wait on a closed network.
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith((ui_server.url, worklist_server.url)) else route.abort()
        ),
    )
    page = context.new_page()
    try:
        # An impostor opens the UI, filters on the assignee's tag and opens the waiting run.
        page.goto(f"{ui_server.url}/")
        expect(page).to_have_url(re.compile(r"/v2/"))
        page.get_by_role("link", name="Runs", exact=True).click()
        tags = page.get_by_placeholder("All tags")
        tags.fill(assignee_tag)
        tags.press("Enter")
        expect(page).to_have_url(re.compile(r"[?&]tags=" + re.escape(quote(assignee_tag, safe=""))))
        my_run = page.get_by_role("link", name=re.compile(re.escape(f"order-{ORDER_ID} · order-approval · {rep}")))
        expect(my_run).to_be_visible()
        my_run.click()
        expect(page).to_have_url(re.compile(rf"/runs/flow-run/{step.flow_run_id}"))

        # 1. Forged: the assignee's name typed into the Resume dialog.
        form = resume_in_the_dialog(page, rep, "approve", NOTE)
        page.screenshot(path=str(screenshot_dir / "1-resume-dialog-typed-name.png"))
        form.get_by_role("button", name="Resume", exact=True).click()
        expect(page.get_by_text("Flow run resumed")).to_be_visible()
        step = asked_again(ui_server.api, flow, step, step.input_key)
        assert "no proof of who sent it" in last_refusal(step.item_id).details["reason"]

        # The run asks again; its form says why the answer was refused.
        form = resume_in_the_dialog(
            page,
            rep,
            "approve",
            NOTE,
            proof=completion_proof.sign_completion(
                step.item_id, first.input_key, rep, {"completed_by": rep, "decision": "approve", "note": NOTE}
            ),
        )
        expect(form.get_by_text("Refused:").first).to_be_visible()
        page.screenshot(path=str(screenshot_dir / "2-refused-and-asked-again.png"))
        # 2. Replayed: a real proof, from the first attempt.
        form.get_by_role("button", name="Resume", exact=True).click()
        expect(page.get_by_text("Flow run resumed").first).to_be_visible()
        before = step.input_key
        step = asked_again(ui_server.api, flow, step, before)
        assert "earlier attempt" in last_refusal(step.item_id).details["reason"]

        # 3. Tampered: a real proof for this attempt's approval, sent with a rejection.
        proof = completion_proof.sign_completion(
            step.item_id, step.input_key, rep, {"completed_by": rep, "decision": "approve", "note": NOTE}
        )
        form = resume_in_the_dialog(page, rep, "reject", "rejected in transit", proof=proof)
        form.get_by_role("button", name="Resume", exact=True).click()
        expect(page.get_by_text("Flow run resumed").first).to_be_visible()
        before = step.input_key
        step = asked_again(ui_server.api, flow, step, before)
        assert "altered after it was signed" in last_refusal(step.item_id).details["reason"]
        with session() as s:
            item = s.get(WorkItem, step.item_id)
            assert item.state == "assigned" and item.assignee.name == rep  # still theirs, still open

        # The rep signs in to the worklist and completes it there.
        with session() as s:
            sign_in.set_password(s, rep, "the rep's own password", actor="test")
        reps_page = context.new_page()
        reps_page.goto(f"{worklist_server.url}/login")
        reps_page.get_by_label("Your name").fill(rep)
        reps_page.get_by_label("Password").fill("the rep's own password")
        reps_page.get_by_role("button", name="Sign in").click()
        reps_page.goto(f"{worklist_server.url}/items/{step.item_id}")
        expect(reps_page.get_by_text("Refused:").first).to_be_visible()
        reps_page.get_by_label("Decision").select_option("approve")
        reps_page.get_by_label("Note").fill(NOTE)
        reps_page.get_by_role("button", name="Complete").click()
        expect(reps_page.get_by_role("status")).to_contain_text("sent")

        # The run's page in the Prefect UI follows the run until it is done.
        page.reload()
        completed = page.get_by_text("Completed", exact=True).first
        try:
            expect(completed).to_be_visible(timeout=FLOW_END_SECONDS * 1000 // 2)
        except AssertionError:  # the page stopped refreshing: look again, as a person would
            page.reload()
            expect(completed).to_be_visible(timeout=FLOW_END_SECONDS * 1000 // 2)
        page.screenshot(path=str(screenshot_dir / "3-run-completed.png"))
    except Exception:
        try:
            page.screenshot(path=str(screenshot_dir / "failure.png"))
            print(f"failure screenshot: {screenshot_dir / 'failure.png'}")
        except Exception as exc:  # noqa: BLE001 - the original error matters more
            print(f"no failure screenshot: {exc}")
        print(f"--- order entry ---\n{flow.log_tail()}\n--- Prefect server ---\n{ui_server.log_tail()}")
        raise
    finally:
        context.close()
        expect.set_options(timeout=5_000)  # Playwright's default again

    try:
        flow.proc.wait(timeout=FLOW_END_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"order entry did not end within {FLOW_END_SECONDS} s of the completion:\n{flow.log_tail()}")
    assert flow.proc.returncode == 0, flow.log_tail()
    assert "FINAL COMPLETED 'accepted'" in flow.log.read_text()

    # The Prefect API: the run completed and no longer names an assignee.
    run = httpx.get(f"{ui_server.api}/flow_runs/{step.flow_run_id}", timeout=5).json()
    assert run["state_type"] == "COMPLETED"
    assert not [t for t in run["tags"] if t.startswith(("assignee:", "waiting-for:"))]

    # The back office: accepted, completed by the rep who signed in; three refusals, none in their name.
    with session() as s:
        assert s.get(Order, ORDER_ID).status == "accepted"
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.completed_by, item.outcome) == ("completed", rep, "approve")
        assert item.answer == {"completed_by": rep, "decision": "approve", "note": NOTE}
        refusals = s.query(AuditEvent).filter_by(entity_id=str(step.item_id), action="completion-refused").all()
        assert [r.actor for r in refusals] == ["unverified"] * 3
        assert s.query(AuditEvent).filter_by(entity_id=str(step.item_id), action="completed").one().actor == rep
    print(f"screenshots in {screenshot_dir}; {time.monotonic() - started:.1f} s after the order came in")
