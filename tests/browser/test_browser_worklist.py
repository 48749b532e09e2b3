"""The reps' worklist in a real browser (headless Debian Chromium through Playwright).

Order entry runs in a subprocess against a Prefect server and pauses for an approval; the
worklist app serves the test's database. A rep signs in, sees only their own items, opens the
step, fills its form and the flow run moves on; a second rep is refused the same item (403); a
supervisor sees the team's work, reassigns an item through the router and completes one as an
override with a reason. Screenshots go to $HANDOFF_SCREENSHOT_DIR (else the test's tmp_path);
`worklist-rep.png` is the README's.
"""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.identity.sign_in import set_password
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing import router
from handoff.core.routing.eligibility import meets
from tests.browser.test_browser_approval import receive_large_order
from tests.browser.test_browser_approval import wait_until_paused_for_the_form

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.committed,
    pytest.mark.usefixtures("catalogue", "reps"),
]

PASSWORD = "a long enough password"
FLOW_END_SECONDS = 90
UI_TIMEOUT_MS = 20_000


@pytest.fixture(autouse=True)
def _expectations_wait_the_default_again():
    yield
    from playwright.sync_api import expect

    expect.set_options(timeout=5_000)


def give_passwords(*names: str) -> None:
    with session() as s:
        for name in names:
            set_password(s, name, PASSWORD, actor="test")


def more_work(n: int = 4) -> None:
    """A few more items without a flow run, routed to whoever the router picks: a real day's list."""
    with session() as s:
        now = utcnow()
        for i in range(n):
            s.add(
                WorkItem(
                    work_type="order-approval",
                    step_key=f"extra-{i}",
                    title=f"Approve order X-{i}",
                    required_skills={"order-entry": 1},
                    due_at=now + timedelta(hours=3 + 5 * i),
                    effort_seconds=300,
                    created_at=now,
                )
            )
        s.flush()
        for item_id in s.scalars(select(WorkItem.id).where(WorkItem.step_key.like("extra-%"))):
            router.route_item(s, item_id)


def sign_in(browser, url: str, name: str):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 860})
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)  # expectations wait 5 s by default; this machine is busy
    page = context.new_page()
    page.goto(f"{url}/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My work, most urgent first")).to_be_visible()
    return context, page


def assigned_to(name: str) -> set[int]:
    with session() as s:
        worker = s.scalar(select(Worker).where(Worker.name == name))
        return set(
            s.scalars(
                select(WorkItem.id).where(
                    WorkItem.assignee_id == worker.id, WorkItem.state.in_(("assigned", "started"))
                )
            )
        )


def wait_for_flow(flow) -> str:
    try:
        flow.proc.wait(timeout=FLOW_END_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"order entry did not end within {FLOW_END_SECONDS} s:\n{flow.log_tail()}")
    return flow.log.read_text()


def test_a_rep_completes_their_item_and_another_rep_is_refused(
    ui_server, worklist_server, order_entry_process, chromium, screenshot_dir
):
    from playwright.sync_api import expect

    receive_large_order("W-1")
    flow = order_entry_process(ui_server, "W-1")
    step, _ = wait_until_paused_for_the_form(ui_server.api, flow, "W-1")
    rep = step.assignee
    with session() as s:
        other = next(w.name for w in s.scalars(select(Worker).order_by(Worker.id)) if w.name != rep and w.role == "rep")
    give_passwords(rep, other)
    more_work()
    mine = assigned_to(rep)

    context, page = sign_in(chromium, worklist_server.url, rep)
    try:
        # Only their own items, most urgent first, each with the time left.
        shown = {int(i) for i in page.locator("[data-item]").evaluate_all("els => els.map(e => e.dataset.item)")}
        assert shown == mine and step.item_id in shown
        expect(page.locator(f'[data-item="{step.item_id}"]')).to_contain_text("Order W-1")
        expect(page.locator(f'[data-item="{step.item_id}"] .left')).to_contain_text("h")
        page.locator(f'[data-item="{step.item_id}"] summary').click()  # the step's description
        expect(page.locator(f'[data-item="{step.item_id}"] .description')).to_contain_text("W-1")
        page.screenshot(path=str(screenshot_dir / "worklist-rep.png"), full_page=True)

        # A second rep is refused the same item.
        other_context, other_page = sign_in(chromium, worklist_server.url, other)
        answer = other_page.goto(f"{worklist_server.url}/items/{step.item_id}")
        assert answer.status == 403
        expect(other_page.get_by_role("alert")).to_contain_text("not yours")
        other_page.screenshot(path=str(screenshot_dir / "worklist-other-rep-refused.png"))
        other_context.close()

        # The rep opens the step and fills its form: a choice, a required note (the model's
        # message shows beside it when missing), then completes it.
        page.locator(f'[data-item="{step.item_id}"] a.title').click()
        expect(page.get_by_role("heading", level=1, name=re.compile("W-1"))).to_be_visible()
        page.get_by_label("Decision").select_option("reject")
        page.get_by_role("button", name="Complete").click()
        expect(page.locator("#e-note")).to_contain_text("a rejection needs a reason")
        page.get_by_label("Decision").select_option("approve")
        page.get_by_label("Note").fill("Checked with the customer.")
        page.screenshot(path=str(screenshot_dir / "worklist-form-filled.png"), full_page=True)
        page.get_by_role("button", name="Complete").click()
        expect(page.get_by_role("status")).to_contain_text(f"Work item {step.item_id} sent")
    except Exception:
        page.screenshot(path=str(screenshot_dir / "failure-rep.png"))
        print(f"--- order entry ---\n{flow.log_tail()}")
        raise
    finally:
        context.close()

    assert "FINAL COMPLETED 'accepted'" in wait_for_flow(flow)
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.completed_by, item.outcome) == ("completed", rep, "approve")
        assert s.get(Order, "W-1").status == "accepted"
        trail = {
            (e.actor, e.action, e.details.get("via"))
            for e in s.scalars(select(AuditEvent).where(AuditEvent.entity_id == str(step.item_id)))
        }
    assert (rep, "completion-verified", "worklist") in trail and (rep, "completed", None) in trail


def test_a_supervisor_reassigns_and_completes_as_an_override(
    ui_server, worklist_server, order_entry_process, chromium, screenshot_dir
):
    from playwright.sync_api import expect

    receive_large_order("W-2")
    flow = order_entry_process(ui_server, "W-2")
    step, _ = wait_until_paused_for_the_form(ui_server.api, flow, "W-2")
    supervisor = "Andrew Fuller"
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        to = next(
            w.name
            for w in s.scalars(select(Worker).order_by(Worker.id))
            if w.role == "rep"
            and w.name != step.assignee
            and w.open_items < w.capacity
            and meets(w.skill_levels, item.required_skills)
        )
    give_passwords(supervisor)
    context, page = sign_in(chromium, worklist_server.url, supervisor)
    try:
        expect(page.get_by_role("heading", name="The team's work")).to_be_visible()
        expect(page.locator(f'[data-team-item="{step.item_id}"]')).to_contain_text(step.assignee)
        page.screenshot(path=str(screenshot_dir / "worklist-supervisor.png"), full_page=True)

        # Reassign through the router, with a reason.
        page.goto(f"{worklist_server.url}/items/{step.item_id}")
        page.get_by_label("To", exact=True).select_option(to)
        page.get_by_label("Why").fill("balancing the load")
        page.get_by_role("button", name="Reassign").click()
        expect(page.get_by_role("status")).to_contain_text(f"Work item {step.item_id} reassigned")
        expect(page.locator(f'[data-team-item="{step.item_id}"]')).to_contain_text(to)

        # Complete it as an override: a reason is required.
        page.goto(f"{worklist_server.url}/items/{step.item_id}")
        page.get_by_label("Decision").select_option("approve")
        page.get_by_label("Note").fill("Approved by the supervisor.")
        page.get_by_role("button", name="Complete as override").click()
        expect(page.locator("#e-override_reason")).to_contain_text("needs a reason")
        page.get_by_label("Reason for the override").fill(f"{to} is out today; the customer is waiting")
        page.screenshot(path=str(screenshot_dir / "worklist-supervisor-override.png"), full_page=True)
        page.get_by_role("button", name="Complete as override").click()
        expect(page.get_by_role("status")).to_contain_text(f"Work item {step.item_id} sent")
    except Exception:
        page.screenshot(path=str(screenshot_dir / "failure-supervisor.png"))
        print(f"--- order entry ---\n{flow.log_tail()}")
        raise
    finally:
        context.close()

    assert "FINAL COMPLETED 'accepted'" in wait_for_flow(flow)
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.completed_by) == (WorkItemState.COMPLETED, supervisor)
        assert item.assignee.name == to
        events = {e.action: e for e in s.scalars(select(AuditEvent).where(AuditEvent.entity_id == str(step.item_id)))}
    assert events["reassigned"].actor == supervisor and events["reassigned"].details["to_worker"] == to
    assert events["override"].actor == supervisor and "out today" in events["override"].details["reason"]
    assert events["completed"].actor == supervisor
