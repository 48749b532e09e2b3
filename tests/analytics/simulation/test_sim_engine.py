"""The replay engine: dispatch rules, shifts, step order, metrics and reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from handoff.analytics.simulation.calendar import ALWAYS_OPEN
from handoff.analytics.simulation.calendar import DAY
from handoff.analytics.simulation.calendar import DAY_NAMES
from handoff.analytics.simulation.calendar import WeeklyCalendar
from handoff.analytics.simulation.calendar import parse_hours
from handoff.analytics.simulation.calendar import weekday
from handoff.analytics.simulation.engine import RepSpec
from handoff.analytics.simulation.engine import WorkItem
from handoff.analytics.simulation.engine import simulate
from handoff.analytics.simulation.synthetic import synthetic_workload
from handoff.core.routing.policy import PushPolicy

MONDAY = 4 * DAY  # 1970-01-05 00:00 was a Monday
HOUR = 3600.0


def item(i, arrival, handling, due, skill="entry", level=1, **kw) -> WorkItem:
    return WorkItem(f"i{i}", skill, {skill: level}, float(arrival), float(handling), float(due), **kw)


# --- calendar ------------------------------------------------------------------------------------


def test_weekly_calendar_counts_only_opening_hours():
    cal = WeeklyCalendar.from_shift("09:00", "17:00", "01234")
    assert weekday(MONDAY) == 0
    assert cal.describe() == "Mon-Fri 09-17"
    assert cal.weekly_hours() == 40
    # 8 business hours from Friday 15:00 is Monday 15:00 (2 h on Friday, 6 h on Monday).
    friday_15 = MONDAY + 4 * DAY + 15 * HOUR
    assert cal.add_open_seconds(friday_15, 8 * HOUR) == MONDAY + 7 * DAY + 15 * HOUR
    # Before opening, the clock starts at opening time.
    assert cal.add_open_seconds(MONDAY + 2 * HOUR, HOUR) == MONDAY + 10 * HOUR
    assert cal.open_seconds(MONDAY, MONDAY + 7 * DAY) == 40 * HOUR
    assert cal.open_seconds(MONDAY, MONDAY + 3 * 7 * DAY + 10 * HOUR) == 121 * HOUR
    spans = list(cal.intervals(MONDAY + 12 * HOUR, MONDAY + DAY + 10 * HOUR))
    assert spans == [(MONDAY + 12 * HOUR, MONDAY + 17 * HOUR), (MONDAY + DAY + 9 * HOUR, MONDAY + DAY + 10 * HOUR)]
    with pytest.raises(ValueError):
        WeeklyCalendar.from_dict({})


@settings(max_examples=60, deadline=None)
@given(
    hours=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 23 * 4), st.integers(1, 8 * 4)), min_size=1, max_size=6),
    pairs=st.lists(st.tuples(st.floats(-3e7, 3e8), st.floats(0, 4e6)), min_size=1, max_size=20),
)
def test_a_calendar_places_instants_so_that_their_differences_are_its_open_seconds(hours, pairs):
    """Push's business clock in the simulator (`positions`) counts what `open_seconds` counts,
    for any weekly hours, across weeks, either side of the epoch."""
    spans = {}
    for day, start, length in hours:
        spans.setdefault(day, []).append((start / 4, min(start + length, 24 * 4) / 4))
    cal = parse_hours(", ".join(f"{DAY_NAMES[d]} {_hhmm(a)}-{_hhmm(b)}" for d, ds in spans.items() for a, b in ds))
    a = np.array([x for x, _ in pairs])
    b = a + np.array([n for _, n in pairs])
    at = cal.positions(np.concatenate((a, b)))
    assert np.allclose(at[len(a) :] - at[: len(a)], [cal.open_seconds(x, y) for x, y in zip(a, b)], atol=1e-3)
    assert np.all(np.diff(cal.positions(np.sort(a))) >= 0)
    assert np.array_equal(ALWAYS_OPEN.positions(a), a)
    # Adding open time, whole weeks skipped at once (an SLA of ten million hours walked day by
    # day for minutes): exactly that much open time later, however long.
    for x, n in pairs:
        for seconds in (n, n * 997.0, 3.6e10):
            due = cal.add_open_seconds(x, seconds)
            assert float(np.diff(cal.positions(np.array([x, due])))[0]) == pytest.approx(seconds, rel=1e-9, abs=1e-3)


def _hhmm(h: float) -> str:
    return f"{int(h):02d}:{round((h - int(h)) * 60):02d}"


# --- dispatch and metrics -----------------------------------------------------------------------


def test_metrics_on_a_case_worked_by_hand():
    """One always-on rep, FIFO. Items (arrival, handling, due): a (0, 100, 50), b (0, 100, 1000),
    c (500, 50, 520). a runs 0-100 (50 s late), b 100-200 (on time), c 500-550 (30 s late)."""
    items = [
        item("a", 0, 100, 50, value=100.0),
        item("b", 0, 100, 1000, value=300.0),
        item("c", 500, 50, 520, value=0.0),
    ]
    result = simulate(items, [RepSpec("r1", {"entry": 1})], "fifo")
    assert list(result.start) == [0, 100, 500]
    assert list(result.finish) == [100, 200, 550]
    m = result.metrics()
    assert (m.items, m.completed, m.unfinished) == (3, 3, 0)
    assert m.on_time_pct == pytest.approx(100 / 3)
    assert m.mean_lateness_h == pytest.approx((50 + 0 + 30) / 3 / HOUR)
    assert m.value_weighted_lateness_h == pytest.approx((100 * 50) / 400 / HOUR)
    # A value below 0 (a refund, a typo in a log) weighs nothing, as push weighs it: the
    # weighted lateness was negative.
    refund = simulate([*items, item("d", 600, 50, 610, value=-1000.0)], [RepSpec("r1", {"entry": 1})], "fifo")
    assert refund.metrics().value_weighted_lateness_h == pytest.approx((100 * 50) / 400 / HOUR)
    assert m.mean_wait_h == pytest.approx((0 + 100 + 0) / 3 / HOUR)
    assert m.utilisation == pytest.approx(250 / 550)
    assert m.fairness_jain == 1.0
    assert m.on_time_pct_by_type == {"entry": pytest.approx(100 / 3, abs=0.01)}


def test_work_only_goes_to_reps_with_the_skill_at_the_level():
    items = [item(i, i * 10, 30, 10_000, skill="billing" if i % 2 else "entry", level=1 + i % 3) for i in range(30)]
    reps = [
        RepSpec("entry-expert", {"entry": 3}),
        RepSpec("billing-junior", {"billing": 1}),
        RepSpec("billing-senior", {"billing": 3}),
    ]
    for policy in ("push", "fifo", "self"):
        result = simulate(items, reps, policy)
        assert not np.isnan(result.finish).any()
        for it, k in zip(result.items, result.rep_index):
            rep = reps[k]
            assert all(rep.skills.get(s, 0) >= lvl for s, lvl in it.required_skills.items()), (policy, it, rep)


def test_reps_start_work_only_on_shift_and_finish_what_they_hold():
    """Mon-Fri 09-17. Work arriving at night waits for 09:00; an item started at 16:50 that
    takes an hour is finished at 17:50 (the rep finishes work in hand; nothing is interrupted)."""
    cal = WeeklyCalendar.from_shift("09:00", "17:00", "01234")
    items = [
        item(0, MONDAY + 2 * HOUR, 600, MONDAY + 12 * HOUR),  # night arrival
        item(1, MONDAY + 16 * HOUR + 50 * 60, HOUR, MONDAY + DAY + 12 * HOUR),  # late start
        item(2, MONDAY + 16 * HOUR + 55 * 60, 600, MONDAY + DAY + 12 * HOUR),  # must wait for Tuesday
    ]
    result = simulate(items, [RepSpec("r", {"entry": 1}, calendar=cal)], "fifo")
    assert result.start[0] == MONDAY + 9 * HOUR
    assert result.start[1] == MONDAY + 16 * HOUR + 50 * 60
    assert result.finish[1] == MONDAY + 17 * HOUR + 50 * 60
    assert result.start[2] == MONDAY + DAY + 9 * HOUR
    m = result.metrics()
    assert m.on_time_pct == 100.0
    # Busy 600 + 3600 + 600 s over the on-shift time from the first arrival to the end.
    assert result.busy_seconds[0] == pytest.approx(4800)


def test_a_step_waits_for_the_step_before_it():
    items = [
        WorkItem("o1:entry", "entry", {"entry": 1}, 0.0, 100.0, 1000.0),
        WorkItem("o1:ship", "ship", {"ship": 1}, 0.0, 50.0, 1000.0, after="o1:entry"),
        WorkItem("o1:bill", "bill", {"bill": 1}, 0.0, 10.0, 1000.0, after="o1:ship"),
    ]
    reps = [RepSpec("a", {"entry": 1}), RepSpec("b", {"ship": 1, "bill": 1})]
    result = simulate(items, reps, "push")
    start = dict(zip((it.id for it in result.items), result.start))
    finish = dict(zip((it.id for it in result.items), result.finish))
    assert start["o1:ship"] == finish["o1:entry"] == 100
    assert start["o1:bill"] == finish["o1:ship"] == 150
    ready = dict(zip((it.id for it in result.items), result.ready))
    assert ready["o1:bill"] == 150  # waiting time counts from release, not from order arrival


def test_a_rep_with_capacity_two_works_two_items_at_once():
    items = [item(i, 0, 100, 150) for i in range(4)]
    result = simulate(items, [RepSpec("r", {"entry": 1}, capacity=2)], "fifo")
    assert sorted(result.finish) == [100, 100, 200, 200]
    assert result.metrics().on_time_pct == 50.0


def test_unfinished_work_at_the_horizon_counts_as_late():
    items = [item(i, 0, 1000, 500) for i in range(3)]
    result = simulate(items, [RepSpec("r", {"entry": 1})], "fifo", horizon=1500)
    m = result.metrics()
    assert (m.completed, m.unfinished) == (1, 2)
    assert m.on_time_pct == 0.0
    # Lateness: 500 (finished at 1000), and the two unfinished ones at least 1500 - 500.
    assert m.mean_lateness_h == pytest.approx((500 + 1000 + 1000) / 3 / HOUR)
    assert result.end == 1500
    assert result.busy_seconds[0] == pytest.approx(1500)  # the item in hand counts as busy


def test_push_uses_due_dates_and_fifo_does_not():
    """Ten routine items wait when an urgent one arrives: FIFO serves it last (late), push
    serves it next (on time). Checks the simulator hands the policy the real due times."""
    routine = [item(i, i, 300, 100_000) for i in range(10)]
    urgent = item("urgent", 20, 300, 1_000)
    reps = [RepSpec("r", {"entry": 1})]
    by_policy = {}
    for policy in ("fifo", "push"):
        result = simulate(routine + [urgent], reps, policy)
        k = [it.id for it in result.items].index("iurgent")
        by_policy[policy] = result.finish[k]
    assert by_policy["fifo"] > 1_000
    assert by_policy["push"] <= 1_000


def test_push_counts_slack_and_lateness_in_the_opening_hours_it_is_given():
    """Friday 16:00, one rep free (their week: Monday-Thursday 09-17 and Friday from 16:00),
    two items waiting: one due Thursday 17:00, one due Monday 10:00 (both 8 opening hours on
    the office's Monday-Friday 09-17). In opening hours the Monday item has 1.75 h of slack
    and the Thursday one is under one window late: the rep starts the Monday item. On the wall
    clock (the default) the Thursday one is three windows late and goes first. A policy object
    handed in is not changed."""
    office = WeeklyCalendar.from_shift("09:00", "17:00", "01234")
    thursday, friday = MONDAY + 3 * DAY, MONDAY + 4 * DAY
    items = [
        item("thu", thursday + 9 * HOUR, 900, thursday + 17 * HOUR),
        item("mon", friday + 10 * HOUR, 900, MONDAY + 7 * DAY + 10 * HOUR),
    ]
    reps = [RepSpec("r", {"entry": 1}, calendar=parse_hours("Mon-Thu 09-17, Fri 16-17"))]
    policy = PushPolicy()

    def first(**kw) -> str:
        r = simulate(items, reps, policy, start=friday + 15 * HOUR, **kw)
        return min(zip(r.start, (it.id for it in r.items)))[1]

    assert first(business_hours=office) == "imon"
    assert policy.business_time is None
    assert first() == "ithu"


def test_same_seed_same_result_and_the_seed_reaches_the_policy():
    wl = synthetic_workload(n_items=800, arrivals_per_hour=40, seed=3)
    team = wl.team(4, seed=3)
    a = simulate(wl.items, team, "self", seed=5)
    b = simulate(wl.items, team, "self", seed=5)
    c = simulate(wl.items, team, "self", seed=6)
    assert np.array_equal(a.start, b.start) and np.array_equal(a.rep_index, b.rep_index)
    assert a.metrics().as_dict() | {"wall_seconds": 0} == b.metrics().as_dict() | {"wall_seconds": 0}
    # Self-selection hands new work to a random free rep: another seed, other choices.
    assert not np.array_equal(a.rep_index, c.rep_index)


def test_backlog_is_sampled_over_time():
    items = [item(i, 0, 3600, 10 * DAY) for i in range(5)]
    result = simulate(items, [RepSpec("r", {"entry": 1})], "fifo", sample_every=1800)
    assert result.backlog_times[0] == 0
    assert list(result.backlog_waiting[:4]) == [4, 4, 3, 3]
    assert result.metrics().backlog_max == 4


def test_fairness_reflects_uneven_work():
    # Two reps; only one holds the skill the work needs: all the busy time lands on one person.
    items = [item(i, i * 100, 50, 10_000) for i in range(20)]
    result = simulate(items, [RepSpec("a", {"entry": 1}), RepSpec("b", {"other": 1})], "fifo")
    m = result.metrics()
    assert m.fairness_jain == pytest.approx(0.5)
    assert m.busy_cv == pytest.approx(1.0)
    assert m.utilisation_by_rep["b"] == 0.0


def test_inputs_are_checked():
    with pytest.raises(ValueError):
        simulate([item(0, 0, 1, 2), item(0, 1, 1, 2)], [RepSpec("r", {"entry": 1})], "fifo")
    with pytest.raises(ValueError):
        simulate([item(0, 0, 1, 2)], [], "fifo")
    with pytest.raises(ValueError):
        simulate([item(0, 0, 1, 2)], [RepSpec("r", {"entry": 1})], "no-such-policy")
    assert math.isinf(ALWAYS_OPEN.add_open_seconds(0, math.inf))


# --- the fast path changes nothing -------------------------------------------------------------


@pytest.mark.parametrize("policy", ["push", "fifo", "self"])
def test_the_routing_index_gives_the_same_replay_as_the_policies_reference_scan(policy):
    """The engine hands the policies the routing index (numpy columns, cached eligibility); the
    policies' plain-list scan is the reference. With fixed seeds both replays agree to the last
    digit on a multi-skill workload full of ties (one effort estimate per type, as real logs
    have), so speeding up the hot path cannot change a result unnoticed."""
    wl = synthetic_workload(n_items=800, arrivals_per_hour=45, seed=7, skills_per_rep=2)
    for it in wl.items:  # the router sees the type's mean, as for logs: thousands of exact ties
        it.effort_estimate = {"order entry": 300.0, "provisioning": 600.0, "billing query": 240.0}[it.work_type]
    for n in (2, 4):
        team = wl.team(n, seed=3)
        fast = simulate(wl.items, team, policy, seed=11)
        slow = simulate(wl.items, team, policy, seed=11, indexed=False)
        assert np.array_equal(fast.start, slow.start, equal_nan=True)
        assert np.array_equal(fast.rep_index, slow.rep_index)

        def strip(m):
            return m.as_dict() | {"wall_seconds": 0}

        assert strip(fast.metrics()) == strip(slow.metrics())
        assert fast.metrics().backlog_max > 20  # the team is short: the pool holds many ties
