"""The SLA watch: reclaiming work from absent reps, escalating near-breach items, and the
Prefect flow that runs the cycle."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from handoff.core.models import AuditEvent
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.routing import router
from handoff.core.routing import watch


def test_an_item_whose_rep_goes_offline_is_rerouted_within_one_cycle(s, now, make_worker, make_item):
    ann = make_worker("ann", {"order-approval": 3}, capacity=1)
    it = make_item()
    router.route_item(s, it.id, now)
    bob = make_worker("bob", {"order-approval": 3}, capacity=1)
    # Ann's client drops: presence goes offline without the router being told.
    ann.presence = Presence.OFFLINE
    s.flush()
    report = watch.watch_cycle(s, now + timedelta(minutes=1))
    assert [(r.item_id, r.from_worker, r.rerouted_to) for r in report.reclaims] == [(it.id, "ann", "bob")]
    s.refresh(it)
    s.refresh(ann)
    assert it.state == WorkItemState.ASSIGNED and it.assignee_id == bob.id and ann.open_items == 0


def test_off_shift_and_long_away_reps_lose_not_started_work_short_breaks_do_not(s, now, make_worker, make_item):
    # Off shift at 10:00 UTC: a Tokyo 09-17 rep. Their item was assigned earlier in their day.
    tokyo = make_worker("tokyo", {"order-approval": 3}, timezone="Asia/Tokyo", shift_start="09:00", shift_end="17:00")
    coffee = make_worker("coffee", {"order-approval": 3})
    lunch = make_worker("lunch", {"order-approval": 3})
    items = {w.name: make_item() for w in (tokyo, coffee, lunch)}
    for w in (tokyo, coffee, lunch):
        s.execute(
            WorkItem.__table__.update()
            .where(WorkItem.id == items[w.name].id)
            .values(state="assigned", assignee_id=w.id, assigned_at=now - timedelta(hours=3))
        )
        w.open_items = 1
    started = make_item()
    s.execute(
        WorkItem.__table__.update()
        .where(WorkItem.id == started.id)
        .values(state="started", assignee_id=tokyo.id, started_at=now - timedelta(hours=2))
    )
    tokyo.open_items = 2
    coffee.presence, coffee.presence_changed_at = Presence.AWAY, now - timedelta(minutes=5)
    lunch.presence, lunch.presence_changed_at = Presence.AWAY, now - timedelta(minutes=45)
    s.flush()
    reclaims = watch.reclaim_from_absent_reps(s, now)
    assert sorted(r.from_worker for r in reclaims) == ["lunch", "tokyo"]
    assert {r.item_id for r in reclaims} == {items["tokyo"].id, items["lunch"].id}
    assert any("off shift" in r.reason for r in reclaims) and any("away since" in r.reason for r in reclaims)
    s.expire_all()
    assert s.get(WorkItem, started.id).state == WorkItemState.STARTED
    assert s.get(WorkItem, items["coffee"].id).assignee_id == coffee.id
    # coffee is away (no new work), nobody else is free: the reclaimed items wait, open.
    assert s.get(WorkItem, items["lunch"].id).state == WorkItemState.OPEN


def test_a_near_breach_item_escalates_once_names_a_supervisor_and_widens_its_pool(s, now, make_worker, make_item):
    make_worker("sue", {"credit-review": 5}, role="supervisor", capacity=0)
    make_worker("junior", {"credit-review": 2})
    created = datetime(2026, 11, 25, 9, 0)  # 8 business hours: due 17:00 the same day
    it = make_item({"credit-review": 3}, work_type="credit-review", created=created, due_in=timedelta(hours=8))
    calm = make_item({"credit-review": 3}, work_type="credit-review", created=created, due_in=timedelta(days=2))
    assert watch.escalate_near_breach(s, datetime(2026, 11, 25, 14, 0)) == []  # 3 h of 8 left
    report = watch.watch_cycle(s, datetime(2026, 11, 25, 16, 15))  # 45 minutes left
    assert [e.item_id for e in report.escalations] == [it.id]
    e = report.escalations[0]
    assert e.supervisor == "sue" and e.widened_to == {"credit-review": 2}
    assert e.business_seconds_left == pytest.approx(45 * 60)
    # The session held the item: it sees it escalated without being told to re-read it.
    assert it.escalated and it.required_skills == {"credit-review": 3}  # the record keeps the real need
    # The widened pool: the level-2 rep now gets it in the same cycle.
    assert [a.item_id for a in report.assignments] == [it.id] and report.assignments[0].worker == "junior"
    event = s.scalar(select(AuditEvent).where(AuditEvent.action == "escalated"))
    assert event.entity_id == str(it.id) and event.details["supervisor"] == "sue"
    # Escalation happens once.
    assert watch.escalate_near_breach(s, datetime(2026, 11, 25, 16, 30)) == []
    s.refresh(calm)
    assert not calm.escalated


def test_the_business_clock_does_not_escalate_over_the_weekend(s, make_worker, make_item):
    friday = datetime(2026, 11, 27, 16, 0)  # 8 h SLA -> due Monday 16:00
    it = make_item(created=friday, due_in=timedelta(0))
    it.due_at = datetime(2026, 11, 30, 16, 0)
    s.flush()
    assert watch.escalate_near_breach(s, datetime(2026, 11, 28, 23, 0)) == []  # Saturday night: 7 h left
    assert [e.item_id for e in watch.escalate_near_breach(s, datetime(2026, 11, 30, 15, 0))] == [it.id]


def test_rescore_orders_open_work_by_urgency(s, now, make_item):
    relaxed = make_item(due_in=timedelta(days=3))
    late = make_item(created=now - timedelta(hours=9), due_in=timedelta(hours=8), value=5000)
    result = watch.rescore(s, now)
    assert result.open_items == 2 and result.overdue == 1
    assert [i for i, _ in result.top] == [late.id, relaxed.id]


def test_sla_watch_flow_reroutes_work_of_a_rep_who_went_offline(request, routing_db, now):
    """The Prefect flow itself, once, against the session's test server."""
    try:
        request.getfixturevalue("prefect_harness")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no prefect_harness fixture")
    from flows.sla_watch import sla_watch
    from handoff.core.db import session
    from handoff.core.models import WorkerSkill

    with session() as s:
        ann = Worker(name="ann", capacity=1, skills=[WorkerSkill(skill="order-approval", level=3)])
        s.add(ann)
        s.flush()
        it = WorkItem(
            work_type="order-approval",
            step_key="flow-test-1",
            title="approve order 1",
            required_skills={"order-approval": 2},
            created_at=now,
            due_at=now + timedelta(hours=8),
            effort_seconds=600,
        )
        s.add(it)
        s.flush()
        router.route_item(s, it.id, now)
        s.add(Worker(name="bob", capacity=1, skills=[WorkerSkill(skill="order-approval", level=2)]))
        ann.presence = Presence.OFFLINE
        item_id = it.id
    summary = sla_watch(now=now + timedelta(minutes=1))
    assert summary["reclaimed"] == 1
    with session() as s:
        item = s.get(WorkItem, item_id)
        assert item.state == WorkItemState.ASSIGNED and item.assignee.name == "bob"


def test_work_past_due_shows_late_while_the_business_is_closed(s, make_worker, make_item):
    """Due at Friday's close, an item showed "0.0 h" left, not late, all evening and weekend in
    the worklists (no business time passed), while `handoff report` called it overdue. Past due,
    it is late by the time since, in the rep's and the supervisor's lists alike."""
    from handoff.core.routing.worklist import worklist
    from handoff.core.supervision import team_items

    make_worker("ann", {"order-entry": 3})
    friday = datetime(2026, 11, 27, 9, 0)  # 8 business hours: due Friday 17:00
    it = make_item({"order-entry": 1}, created=friday, due_in=timedelta(hours=8))
    router.route_item(s, it.id, now=friday)
    for now, late_hours in (
        (datetime(2026, 11, 27, 18, 0), 1),  # Friday evening
        (datetime(2026, 11, 28, 12, 0), 19),  # Saturday noon
        (datetime(2026, 11, 30, 8, 59), 63.98),  # Monday, before opening
    ):
        [mine] = worklist(s, "ann", now=now)
        [team] = [t for t in team_items(s, now=now) if t.item_id == it.id]
        assert mine.seconds_left == team.seconds_left == pytest.approx(-late_hours * 3600, abs=60)
    # Not yet due: the business hours left (Friday 16:00 -> 17:00 is one, whatever the wall clock).
    [mine] = worklist(s, "ann", now=datetime(2026, 11, 27, 16, 0))
    assert mine.seconds_left == pytest.approx(3600)


def test_an_item_the_session_holds_reads_escalated_after_escalation(s, make_item):
    """Escalation flags items in one statement around the ORM: a step holding the item must
    not go on seeing it unescalated."""
    created = datetime(2026, 11, 25, 9, 0)
    it = make_item({"credit-review": 3}, work_type="credit-review", created=created, due_in=timedelta(hours=8))
    assert not it.escalated
    assert [e.item_id for e in watch.escalate_near_breach(s, datetime(2026, 11, 25, 16, 15))] == [it.id]
    assert it.escalated
