"""A rep approves a large order in the Prefect UI, in a real browser.

Order entry runs in a subprocess against a Prefect server with its UI and pauses for the rep's
OrderApproval form. Headless Chromium then does what the rep does: opens the UI, goes to the
runs, filters on the tag that names them, opens their run, resumes it, fills the form in and
submits it — and the run's page shows it Completed. The handoff database and the Prefect API
confirm it. Screenshots of the rep's runs, the filled form and the finished run are saved
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
from handoff.core.intake import submit_orders
from handoff.core.models import Order, WorkItem
from handoff.runtime.steps import waiting_steps

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("catalogue", "reps")]

ORDER_ID = "B-1"
NOTE = "Quantity and price checked with the customer."
STEP_SECONDS = 60  # order entry reaches the rep's step
FLOW_END_SECONDS = 60  # the resumed run finishes
UI_TIMEOUT_MS = 20_000  # any one action or expectation in the page


def receive_large_order(order_id: str) -> None:
    """AROUT has 20,000 of credit and is not on hold; 400 × 18.00 = 7,200 ≥ 5,000 needs a rep."""
    order = {"order_id": order_id, "customer_id": "AROUT", "order_date": "2024-03-01", "due_date": "2024-03-15",
             "lines": [{"product_id": 1, "quantity": 400, "unit_price": 18.0, "discount": 0}]}
    assert submit_orders([(json.dumps(order), order)], source="browser-test", announce=False).accepted == [order_id]


def wait_until_paused_for_the_form(api: str, flow, order_id: str):
    """The rep's step, once its run has paused AND saved the form's schema (the UI shows the
    form only then; before, it offers a plain resume)."""
    deadline = time.monotonic() + STEP_SECONDS
    step = None
    while time.monotonic() < deadline:
        if flow.proc.poll() is not None:
            pytest.fail(f"order entry exited ({flow.proc.returncode}) before asking a rep:\n{flow.log_tail()}")
        step = step or next((s for s in waiting_steps() if s.order_id == order_id), None)
        if step is not None:
            run = httpx.get(f"{api}/flow_runs/{step.flow_run_id}", timeout=5)
            if run.status_code == 200 and run.json()["state_type"] == "PAUSED":
                # the keys the run waits on are in its paused state (prefect_patches.pause_keyset)
                keyset = run.json()["state"]["state_details"]["run_input_keyset"]
                schema = httpx.get(f"{api}/flow_runs/{step.flow_run_id}/input/{keyset['schema']}", timeout=5)
                if schema.status_code == 200:
                    return step, run.json()
        time.sleep(0.3)
    pytest.fail(f"order {order_id} did not pause for a rep within {STEP_SECONDS} s:\n{flow.log_tail()}")


def test_a_rep_approves_a_large_order_in_the_prefect_ui(ui_server, order_entry_process, chromium, screenshot_dir):
    from playwright.sync_api import expect

    started = time.monotonic()
    receive_large_order(ORDER_ID)
    flow = order_entry_process(ui_server, ORDER_ID)
    step, waiting_run = wait_until_paused_for_the_form(ui_server.api, flow, ORDER_ID)
    rep = step.assignee
    assert step.work_type == "order-approval" and rep
    assignee_tag = next(t for t in waiting_run["tags"] if t.startswith("assignee:"))
    assert rep in waiting_run["name"]
    print(f"order {ORDER_ID} waits for {rep} in flow run {step.flow_run_id} ({time.monotonic() - started:.1f} s)")

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)  # expectations wait 5 s by default
    # Only our server: the UI's analytics calls would just wait on a closed network.
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(ui_server.url)
                  else route.abort())
    page = context.new_page()
    try:
        # The rep opens the UI and goes to the runs.
        page.goto(f"{ui_server.url}/")
        expect(page).to_have_url(re.compile(r"/v2/"))
        page.get_by_role("link", name="Runs", exact=True).click()
        expect(page).to_have_url(re.compile(r"/v2/runs"))

        # They filter on their own tag, and open the run waiting for them.
        tags = page.get_by_placeholder("All tags")
        tags.fill(assignee_tag)
        tags.press("Enter")
        expect(page).to_have_url(re.compile(r"[?&]tags=" + re.escape(quote(assignee_tag, safe=""))))
        my_run = page.get_by_role("link", name=re.compile(re.escape(f"order-{ORDER_ID} · order-approval · {rep}")))
        expect(my_run).to_be_visible()
        page.screenshot(path=str(screenshot_dir / "1-runs-waiting-for-the-rep.png"))
        my_run.click()
        expect(page).to_have_url(re.compile(rf"/runs/flow-run/{step.flow_run_id}"))
        expect(page.get_by_text("Paused", exact=True).first).to_be_visible()

        # Resume, and fill the form the flow is waiting for.
        page.get_by_role("button", name="Open menu").click()
        page.get_by_role("menuitem", name="Resume").click()
        form = page.get_by_role("dialog", name="Resume Flow Run")
        expect(form.get_by_text(f"Order {ORDER_ID}")).to_be_visible()  # the step's description
        form.get_by_label("Completed By").fill(rep)
        form.get_by_role("button", name="Select Decision").click()
        page.get_by_role("option", name="approve", exact=True).click()
        form.get_by_label("Note", exact=True).fill(NOTE)
        expect(form.get_by_label("Completed By")).to_have_value(rep)
        expect(form.get_by_role("button", name="Select Decision")).to_contain_text("approve")
        page.screenshot(path=str(screenshot_dir / "2-approval-form-filled.png"))
        form.get_by_role("button", name="Resume", exact=True).click()
        expect(page.get_by_text("Flow run resumed")).to_be_visible()
        expect(form).to_be_hidden()

        # The run's page follows the run until it is done.
        completed = page.get_by_text("Completed", exact=True).first
        try:
            expect(completed).to_be_visible(timeout=FLOW_END_SECONDS * 1000 // 2)
        except AssertionError:  # the page stopped refreshing: look again, as a person would
            print("the run page did not refresh by itself; reloading it")
            page.reload()
            expect(completed).to_be_visible(timeout=FLOW_END_SECONDS * 1000 // 2)
        expect(page.get_by_text("Paused", exact=True)).to_have_count(0)
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
        pytest.fail(f"order entry did not end within {FLOW_END_SECONDS} s of the approval:\n{flow.log_tail()}")
    assert flow.proc.returncode == 0, flow.log_tail()
    assert "FINAL COMPLETED 'accepted'" in flow.log.read_text()

    # The Prefect API: the run completed and no longer names an assignee.
    run = httpx.get(f"{ui_server.api}/flow_runs/{step.flow_run_id}", timeout=5).json()
    assert run["state_type"] == "COMPLETED"
    assert run["name"] == f"order-{ORDER_ID}"
    assert not [t for t in run["tags"] if t.startswith(("assignee:", "waiting-for:"))]

    # The back office: the order is accepted, the work item completed by the rep with the form.
    with session() as s:
        order = s.get(Order, ORDER_ID)
        assert order.status == "accepted"
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.completed_by, item.outcome) == ("completed", rep, "approve")
        assert item.answer == {"completed_by": rep, "decision": "approve", "note": NOTE}
    print(f"screenshots in {screenshot_dir}; {time.monotonic() - started:.1f} s after the order came in")
