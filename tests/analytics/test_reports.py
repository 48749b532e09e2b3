"""The work-in-progress review on a small, known back office.

The scenario is read at NOW, Wednesday 2026-03-11 14:00 UTC, on the default business clock
(09:00-17:00 UTC, Monday to Friday), so business time left is easy to count by hand.
"""

import json
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
import typer
from typer.testing import CliRunner

from handoff.analytics import reports
from handoff.cli.report import register
from handoff.core.db import session
from handoff.core.models import AuditEvent
from handoff.core.models import Defect
from handoff.core.models import Order
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import WorkItem
from handoff.core.sla import BusinessClock
from handoff.core.sla import BusinessHours

NOW = datetime(2026, 3, 11, 14, 0)  # a Wednesday
H = timedelta(hours=1)
CLOCK = BusinessClock(BusinessHours())  # 09:00-17:00 UTC, Mon-Fri, no holidays


@dataclass
class Scenario:
    items: dict[str, int]  # label -> work item id
    defects: dict[str, int]


def worker(name, skills, capacity=3, open_items=0, presence="available"):
    return Worker(
        name=name,
        capacity=capacity,
        open_items=open_items,
        presence=presence,
        skills=[WorkerSkill(skill=k, level=v) for k, v in skills.items()],
    )


def item(
    label,
    work_type,
    skills,
    *,
    created,
    due,
    effort=600.0,
    state="open",
    assignee=None,
    order=None,
    escalated=False,
    completed=None,
):
    return WorkItem(
        work_type=work_type,
        title=f"{work_type} {label}",
        step_key=f"test-{label}",
        order_id=order,
        required_skills=skills,
        due_at=due,
        effort_seconds=effort,
        state=state,
        assignee=assignee,
        created_at=created,
        escalated=escalated,
        completed_at=completed,
        assigned_at=created if assignee else None,
    )


@pytest.fixture
def scenario(db) -> Scenario:
    with session() as s:
        nancy = worker("Nancy Davolio", {"order-entry": 3, "credit": 2}, open_items=3)  # full
        janet = worker("Janet Leverling", {"order-entry": 2, "billing": 3}, open_items=1, presence="offline")
        s.add_all([nancy, janet])
        s.add_all(
            [
                Order(
                    id="O-1",
                    customer_id="ALFKI",
                    order_date=date(2026, 3, 2),
                    due_date=date(2026, 3, 12),
                    status="accepted",
                    source="test",
                ),
                Order(
                    id="O-2",
                    customer_id="BONAP",
                    order_date=date(2026, 3, 2),
                    due_date=date(2026, 3, 10),
                    status="accepted",
                    source="test",
                ),
                Order(
                    id="O-3",
                    customer_id="CHOPS",
                    order_date=date(2026, 3, 2),
                    due_date=date(2026, 3, 12),
                    status="complete",
                    source="test",
                ),
                Order(
                    id="O-4",
                    customer_id="DUMON",
                    order_date=date(2026, 3, 2),
                    due_date=date(2026, 3, 20),
                    status="accepted",
                    source="test",
                ),
            ]
        )
        s.flush()
        active = {
            # waiting 3 h; the reps who could do it are full or offline; 3 business hours left for 15 min
            "waiting": item(
                "waiting", "order-approval", {"order-entry": 2}, created=NOW - 3 * H, due=NOW + 4 * H, effort=900
            ),
            "fresh": item(
                "fresh", "order-approval", {"order-entry": 2}, created=NOW - timedelta(minutes=10), due=NOW + 24 * H
            ),
            # created 6 h ago but reclaimed 10 minutes ago: not waiting long
            "reclaimed": item("reclaimed", "order-approval", {"order-entry": 2}, created=NOW - 6 * H, due=NOW + 24 * H),
            # 1 business hour left, 2 hours of work: at risk (slack -1 h)
            "at-risk": item(
                "at-risk",
                "order-approval",
                {"order-entry": 2},
                created=NOW - H,
                due=NOW + H,
                effort=2 * 3600,
                state="assigned",
                assignee=nancy,
                order="O-1",
            ),
            "overdue": item(
                "overdue",
                "order-approval",
                {"order-entry": 2},
                created=NOW - 5 * H,
                due=NOW - timedelta(minutes=30),
                state="started",
                assignee=nancy,
                escalated=True,
            ),
            "credit": item(
                "credit",
                "credit-review",
                {"credit": 2},
                created=NOW - 2 * H,
                due=NOW + 48 * H,
                state="assigned",
                assignee=nancy,
            ),
            # nobody holds billing:4
            "invoice": item("invoice", "invoice-approval", {"billing": 4}, created=NOW - 26 * H, due=NOW + 48 * H),
            # due Thursday 10:00 = 3 h today + 1 h tomorrow of business time, 6 h of work: slack -2 h
            "visit": item(
                "visit",
                "provisioning-visit",
                {"provisioning": 3},
                created=NOW - 4 * H,
                due=datetime(2026, 3, 12, 10, 0),
                effort=6 * 3600,
                state="assigned",
                assignee=janet,
            ),
            "mystery": item(
                "mystery", "juggling", {"juggling": 1}, created=NOW - timedelta(minutes=5), due=NOW + 24 * H
            ),
        }
        done = {
            # today: 4 done, 3 on time
            "c1": item(
                "c1",
                "order-approval",
                {"order-entry": 2},
                created=NOW - 5 * H,
                due=NOW - 2 * H,
                state="completed",
                completed=NOW - 4 * H,
            ),
            "c2": item(
                "c2",
                "order-approval",
                {"order-entry": 2},
                created=NOW - 4 * H,
                due=NOW - timedelta(hours=3, minutes=30),
                state="completed",
                completed=NOW - 3 * H,
            ),
            "c3": item(
                "c3",
                "credit-review",
                {"credit": 2},
                created=NOW - 3 * H,
                due=NOW - 2 * H,
                state="completed",
                completed=NOW - 2 * H,
            ),  # exactly on the due time: on time
            "c4": item(
                "c4",
                "credit-review",
                {"credit": 2},
                created=NOW - 2 * H,
                due=NOW + 2 * H,
                state="completed",
                completed=NOW - H,
            ),
            # earlier this week
            "c5": item(
                "c5",
                "order-approval",
                {"order-entry": 2},
                created=datetime(2026, 3, 9, 8, 0),
                due=datetime(2026, 3, 9, 9, 0),
                state="completed",
                completed=datetime(2026, 3, 9, 10, 0),
            ),
            "c6": item(
                "c6",
                "invoice-approval",
                {"billing": 2},
                created=datetime(2026, 3, 4, 12, 0),
                due=datetime(2026, 3, 6, 12, 0),
                state="completed",
                completed=datetime(2026, 3, 5, 0, 30),
            ),
            # outside the 7 days (Thursday 5 - Wednesday 11), and after NOW
            "c7": item(
                "c7",
                "order-approval",
                {"order-entry": 2},
                created=datetime(2026, 3, 4, 12, 0),
                due=datetime(2026, 3, 6, 12, 0),
                state="completed",
                completed=datetime(2026, 3, 4, 23, 59),
            ),
            "c8": item(
                "c8",
                "order-approval",
                {"order-entry": 2},
                created=NOW - H,
                due=NOW + 2 * H,
                state="completed",
                completed=NOW + H,
            ),
        }
        s.add_all([*active.values(), *done.values()])
        s.flush()
        ids = {label: it.id for label, it in {**active, **done}.items()}

        s.add_all(
            [
                AuditEvent(
                    at=NOW - timedelta(minutes=10),
                    actor="system:router",
                    entity="work_item",
                    entity_id=str(ids["reclaimed"]),
                    action="reclaimed",
                    from_state="assigned",
                    to_state="open",
                ),
                AuditEvent(
                    at=NOW - timedelta(minutes=20),
                    actor="Janet Leverling",
                    entity="work_item",
                    entity_id=str(ids["at-risk"]),
                    action="completion-refused",
                    details={"reason": "work item is assigned to Nancy Davolio"},
                ),
                AuditEvent(
                    at=NOW - 48 * H,
                    actor="Janet Leverling",
                    entity="work_item",  # too old to matter
                    entity_id=str(ids["credit"]),
                    action="completion-refused",
                    details={"reason": "old"},
                ),
            ]
        )
        defects = {
            "open": Defect(
                key="defect-1",
                found_at=NOW - 2 * H,
                order_id="O-1",
                work_type="order-entry",
                checklist="order",
                failures=[
                    {"rule": "value_is_more_than_zero", "field": "quantity", "lines": [2]},
                    {"rule": "value_is_more_than_zero", "field": "quantity", "lines": [3]},
                    {"rule": "due_date_after_order_date", "field": None},
                ],
                fix_item_id=ids["at-risk"],
            ),
            "resolved": Defect(
                key="defect-2",
                found_at=NOW - 24 * H,
                order_id="O-2",
                work_type="billing",
                checklist="invoice",
                failures=[{"rule": "totals_match"}],
                resolved_at=NOW - H,
                resolved_by="Janet Leverling",
            ),
            "old-resolved": Defect(
                key="defect-3",
                found_at=NOW - 240 * H,
                order_id="O-4",
                work_type="billing",
                checklist="invoice",
                failures=[],
                resolved_at=NOW - 216 * H,
                resolved_by="Nancy Davolio",
            ),
            "old-open": Defect(
                key="defect-4",
                found_at=NOW - 480 * H,
                order_id=None,
                work_type="provisioning",
                checklist="provisioning",
                failures=["circuit id missing"],
            ),
            "future": Defect(
                key="defect-5", found_at=NOW + H, order_id="O-4", work_type="billing", checklist="invoice", failures=[]
            ),
        }
        s.add_all(defects.values())
        s.flush()
        return Scenario(items=ids, defects={k: d.id for k, d in defects.items()})


def review(**kwargs) -> reports.WipReview:
    with session() as s:
        return reports.build_review(s, NOW, clock=CLOCK, **kwargs)


# --- queues ------------------------------------------------------------------------------------


def test_teams_come_from_the_required_skills():
    assert reports.team_for({"order-entry": 2}) == "customer service"
    assert reports.team_for({"provisioning": 3, "billing": 1}) == "operations"
    assert reports.team_for({"sales": 2}) == "account management"  # the handoff meeting's sign-offs
    assert reports.team_for({"operations": 2}) == "account management"
    assert reports.team_for({"juggling": 1}) == "other"
    assert reports.team_for({}) == "other"


def test_queue_sizes_oldest_age_and_where_items_sit(scenario):
    queues = {(q.team, q.work_type): q for q in review().queues}
    assert list(queues) == [
        ("billing", "invoice-approval"),
        ("customer service", "order-approval"),
        ("customer service", "credit-review"),
        ("operations", "provisioning-visit"),
        ("other", "juggling"),
    ]
    approvals = queues[("customer service", "order-approval")]
    assert (approvals.size, approvals.unassigned, approvals.assigned, approvals.started) == (5, 3, 1, 1)
    assert approvals.oldest_item_id == scenario.items["reclaimed"]
    assert approvals.oldest_age_seconds == 6 * 3600
    assert approvals.where == {"unassigned": 3, "Nancy Davolio": 2}
    assert approvals.where_text == "3 unassigned, Nancy Davolio 2"
    assert (approvals.escalated, approvals.past_due) == (1, 1)

    invoices = queues[("billing", "invoice-approval")]
    assert (invoices.size, invoices.oldest_age_seconds, invoices.where_text) == (1, 26 * 3600, "1 unassigned")
    assert queues[("operations", "provisioning-visit")].where_text == "Janet Leverling 1"
    assert queues[("customer service", "credit-review")].where == {"Nancy Davolio": 1}
    # completed items are not queued
    assert sum(q.size for q in queues.values()) == 9


# --- problem cases -----------------------------------------------------------------------------


def test_problem_cases_form_the_action_list(scenario):
    ids = scenario.items
    cases = review().problems
    assert [c.subject for c in cases] == [
        f"work item {ids['overdue']}",  # past due first
        f"work item {ids['waiting']}",  # then waiting with no rep, soonest due first
        f"work item {ids['invoice']}",
        f"work item {ids['at-risk']}",  # a refused completion
        "order O-1",  # open defects
    ]
    by_subject = {c.subject: c for c in cases}

    overdue = by_subject[f"work item {ids['overdue']}"]
    assert overdue.problems == [reports.PAST_DUE, reports.ESCALATED]
    assert overdue.holder == "Nancy Davolio" and overdue.team == "customer service"
    assert "30 min ago" in overdue.details[0]

    waiting = by_subject[f"work item {ids['waiting']}"]
    assert waiting.problems == [reports.NO_ELIGIBLE_REP]
    assert waiting.details == ["unassigned for 3.0 h: 1 at work could do it, all at capacity"]
    invoice = by_subject[f"work item {ids['invoice']}"]
    assert invoice.details == ["unassigned for 26.0 h: nobody on the team holds billing:4"]

    refused = by_subject[f"work item {ids['at-risk']}"]
    assert refused.problems == [reports.COMPLETION_REFUSED]
    assert "Janet Leverling was refused" in refused.details[0] and "assigned to Nancy Davolio" in refused.details[0]

    order = by_subject["order O-1"]
    assert order.problems == [reports.OPEN_DEFECTS] and len(order.details) == 1
    assert f"fix item {ids['at-risk']} assigned with Nancy Davolio" in order.details[0]
    assert "quantity: value is more than zero (2×)" in order.details[0]


def test_the_waiting_threshold_is_a_parameter(scenario):
    ids = scenario.items
    subjects = {c.subject for c in review(waiting_minutes=8).problems}
    assert f"work item {ids['fresh']}" in subjects and f"work item {ids['reclaimed']}" in subjects
    assert f"work item {ids['mystery']}" not in subjects  # waiting 5 minutes
    subjects = {c.subject for c in review(waiting_minutes=27 * 60).problems}
    assert f"work item {ids['invoice']}" not in subjects


# --- jobs likely to be late --------------------------------------------------------------------


def test_late_jobs_overdue_first_then_by_slack(scenario):
    ids = scenario.items
    jobs = review().late_jobs
    assert [(j.kind, j.ref) for j in jobs] == [
        ("order", "O-2"),  # promised for yesterday: 14 h overdue
        ("work item", str(ids["overdue"])),  # 30 min overdue
        ("work item", str(ids["visit"])),  # 4 business hours left, 6 needed
        ("work item", str(ids["at-risk"])),  # 1 business hour left, 2 needed
        ("order", "O-1"),  # promised for tomorrow
    ]
    o2, overdue, visit, at_risk, o1 = jobs
    assert o2.overdue and o2.overdue_seconds == 14 * 3600 and o2.business_seconds_left is None
    assert overdue.overdue and overdue.overdue_seconds == 1800 and overdue.reason == "overdue by 30 min"
    assert not visit.overdue and visit.business_seconds_left == 4 * 3600 and visit.slack_seconds == -2 * 3600
    assert visit.team == "operations" and visit.holder == "Janet Leverling"
    assert at_risk.business_seconds_left == 3600 and at_risk.slack_seconds == -3600
    # the order is due at the end of Thursday: 3 h today + 8 h tomorrow; its open work needs 2 h
    assert not o1.overdue and o1.business_seconds_left == 11 * 3600 and o1.effort_seconds == 2 * 3600
    assert o1.due_at == datetime(2026, 3, 13)
    # complete orders, and orders due later, are not listed; nor are items with time to spare
    refs = {j.ref for j in jobs}
    assert not refs & {"O-3", "O-4", str(ids["waiting"]), str(ids["credit"])}


def test_a_weekend_does_not_count_as_time_left(db):
    friday = datetime(2026, 3, 13, 16, 0)
    with session() as s:
        s.add(
            item(
                "monday",
                "order-approval",
                {"order-entry": 1},
                created=friday - H,
                due=datetime(2026, 3, 16, 9, 30),
                effort=2 * 3600,
            )
        )
        s.flush()
        jobs = reports.late_jobs(s, friday, clock=CLOCK)
    # 1 h on Friday + 30 min on Monday < 2 h of work, though 65 wall-clock hours remain
    assert len(jobs) == 1 and jobs[0].business_seconds_left == 5400


# --- defect log ----------------------------------------------------------------------------------


def test_defect_log_lists_recent_and_open_defects(scenario):
    d = scenario.defects
    log = review().defects
    assert [row.id for row in log] == [d["open"], d["resolved"], d["old-open"]]
    first, resolved, old = log
    assert (first.order_id, first.work_type, first.checklist) == ("O-1", "order-entry", "order")
    assert first.failed_rules == "quantity: value is more than zero (2×); due date after order date"
    assert first.failure_count == 3 and first.fix_item_id == scenario.items["at-risk"]
    assert first.fix_item_state == "assigned" and not first.resolved
    assert resolved.resolved and resolved.resolved_by == "Janet Leverling" and resolved.resolved_at == NOW - H
    assert old.order_id is None and old.failed_rules == "circuit id missing" and not old.resolved


def test_a_defect_resolved_after_now_is_still_open_then(scenario):
    with session() as s:
        log = reports.defect_log(s, NOW - 2 * H)
    resolved = next(row for row in log if row.id == scenario.defects["resolved"])
    assert not resolved.resolved and resolved.resolved_by is None


# --- on-time % ----------------------------------------------------------------------------------


def test_on_time_today_and_last_seven_days(scenario):
    on_time = {t.scope: t for t in review().on_time}
    assert list(on_time) == ["all", "credit-review", "invoice-approval", "order-approval"]
    overall = on_time["all"]
    # today c1..c4: 3 of 4 on time (c3 exactly at its due time counts); c8 completes after NOW
    assert (overall.today_completed, overall.today_on_time, overall.today_pct) == (4, 3, 75.0)
    # 7 days (Thu 5 - Wed 11): c1..c6, on time c1, c3, c4, c6; c7 was completed on the 4th
    assert (overall.week_completed, overall.week_on_time, overall.week_pct) == (6, 4, 66.7)
    approvals = on_time["order-approval"]
    assert (approvals.today_completed, approvals.today_on_time, approvals.today_pct) == (2, 1, 50.0)
    assert (approvals.week_completed, approvals.week_on_time, approvals.week_pct) == (3, 1, 33.3)
    invoices = on_time["invoice-approval"]
    assert (invoices.today_completed, invoices.today_pct, invoices.week_pct) == (0, None, 100.0)
    assert on_time["credit-review"].today_pct == 100.0


def test_on_time_with_nothing_completed(db):
    with session() as s:
        (overall,) = reports.on_time(s, NOW, clock=CLOCK)
    assert (overall.scope, overall.today_completed, overall.today_pct, overall.week_pct) == ("all", 0, None, None)


# --- history and chart -------------------------------------------------------------------------


def test_history_reconstructs_the_backlog_and_daily_on_time(scenario):
    with session() as s:
        hist = reports.history(s, NOW, days=3, clock=CLOCK)
    backlog = hist.backlog["open"]
    # at NOW: the 9 active items, and c8 (completed only after NOW)
    assert backlog.iloc[-1] == 10 and backlog.index[-1] == NOW
    # at midnight only the invoice (created Tuesday noon) was waiting
    assert backlog.loc[datetime(2026, 3, 11, 0, 0)] == 1
    assert backlog.loc[datetime(2026, 3, 9, 0, 0)] == 0
    daily = hist.daily
    assert list(daily.index) == [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)]
    assert list(daily["completed"]) == [1, 0, 4]
    assert list(daily["on_time"]) == [0, 0, 3]
    assert daily.loc[date(2026, 3, 11), "on_time_pct"] == 75.0 and daily.loc[date(2026, 3, 9), "on_time_pct"] == 0.0
    assert daily["on_time_pct"].isna().tolist() == [False, True, False]
    assert list(daily["backlog_end"]) == [0, 1, 10]


def test_chart_is_a_png(scenario, tmp_path):
    with session() as s:
        hist = reports.history(s, NOW, days=7, clock=CLOCK)
    path = reports.save_chart(hist, tmp_path / "charts", NOW)
    assert path == tmp_path / "charts" / "wip-review-20260311-1400.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert reports.save_chart(hist, tmp_path / "exact.png", NOW) == tmp_path / "exact.png"


def test_chart_goes_under_home_by_default(db):
    from handoff.core.settings import settings

    with session() as s:
        hist = reports.history(s, NOW, days=2, clock=CLOCK)
    path = reports.save_chart(hist, None, NOW)
    assert path.parent == settings.home / "reports" and path.exists()


# --- presenting ------------------------------------------------------------------------------


def test_json_and_summary(scenario):
    r = review()
    data = json.loads(json.dumps(reports.to_jsonable(r)))
    assert data["now"] == "2026-03-11T14:00:00"
    assert data["on_time"][0]["today_pct"] == 75.0
    text = reports.summary_markdown(r, chart_uri="data:image/png;base64,AAAA")
    assert "On time today: 75.0 %" in text and "66.7 %" in text and "(data:image/png;base64,AAAA)" in text
    frames = r.frames()
    assert len(frames["queues"]) == 5 and frames["late_jobs"]["ref"].tolist()[0] == "O-2"


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command keeps `report` a named subcommand
    register(app)
    return app


def test_cli_report_prints_the_review(scenario, tmp_path):
    chart = tmp_path / "wip.png"
    result = CliRunner().invoke(
        cli_app(), ["report", "--now", "2026-03-11T14:00:00", "--chart", str(chart)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "On time today: 75.0 % (3 of 4)" in out and "last 7 days: 66.7 % (4 of 6)" in out
    assert "3 unassigned, Nancy Davolio 2" in out
    assert "Jobs likely to be late (5)" in out and "Problem cases (5)" in out and "Defect log (3)" in out
    assert "nobody on the team holds billing:4" in out
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_cli_report_json(scenario):
    result = CliRunner().invoke(cli_app(), ["report", "--now", "2026-03-11T14:00:00", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [q["work_type"] for q in data["queues"]][:2] == ["invoice-approval", "order-approval"]
    assert data["queues"][1]["where"] == {"unassigned": 3, "Nancy Davolio": 2}
    assert [j["ref"] for j in data["late_jobs"]][0] == "O-2"
    assert data["on_time"][0]["week_pct"] == 66.7 and data["chart"] is None


def test_cli_report_shows_markup_and_escapes_in_ids_as_text(scenario):
    """An order id or customer id accepted at the intake (printable, so allowed) that looks like
    Rich markup broke `handoff report` for everyone (MarkupError); a terminal escape is shown."""
    with session() as s:
        s.add(
            Order(
                id="[/red]O-9",
                customer_id="[bold]\x1b[31mACME",
                order_date=date(2026, 3, 2),
                due_date=date(2026, 3, 10),
                status="accepted",
                source="test",
            )
        )
    result = CliRunner().invoke(cli_app(), ["report", "--now", "2026-03-11T14:00:00"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "[/red]O-9" in result.output and "\x1b" not in result.output


def test_cli_report_refuses_times_and_places_it_cannot_use(scenario, tmp_path):
    not_png = tmp_path / "notes.txt"
    not_png.write_text("mine")
    for args, hint in (
        (["--now", "9999-12-31"], "--now"),
        (["--now", "0001-01-01"], "--now"),
        (["--waiting-minutes", "inf"], "--waiting-minutes"),
        (["--chart", str(not_png)], "--chart"),
    ):
        result = CliRunner().invoke(cli_app(), ["report", *args], env={"COLUMNS": "250"})
        assert result.exit_code == 2 and hint in result.output and isinstance(result.exception, SystemExit), (
            args,
            result.output,
        )
    assert not_png.read_text() == "mine"
