"""The routing policies on their own (no database): eligibility, capacity, urgency, fairness,
and that the fast index answers exactly what a full scan answers."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from handoff.core.routing.baselines import FifoPolicy
from handoff.core.routing.baselines import SelfSelectionPolicy
from handoff.core.routing.index import ItemPool
from handoff.core.routing.index import RepPool
from handoff.core.routing.index import RoutingIndex
from handoff.core.routing.policy import POLICIES
from handoff.core.routing.policy import PushPolicy
from handoff.core.routing.policy import make_policy
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep
from handoff.core.routing.urgency import AGING_WINDOWS
from handoff.core.routing.urgency import LOOKAHEAD
from handoff.core.routing.urgency import RESCUE_WINDOWS
from handoff.core.routing.urgency import K
from handoff.core.routing.urgency import UrgencyParameters
from handoff.core.routing.urgency import urgency
from handoff.core.routing.urgency import urgency_many
from handoff.core.routing.urgency import weight
from handoff.core.sla import BusinessClock
from handoff.core.sla import BusinessHours

HOUR = 3600.0
DAY = 24 * HOUR
NOW = 1_800_000_000.0


def item(id: str, skills=None, *, age=0.0, due_in=8 * HOUR, effort=900.0, priority=1.0, value=0.0) -> RoutableItem:
    return RoutableItem(
        id=id,
        work_type="order-approval",
        required_skills=skills or {"order-approval": 1},
        created_at=NOW - age,
        due_at=NOW + due_in,
        effort_seconds=effort,
        priority=priority,
        value=value,
    )


def rep(id: str, skills, *, capacity=3, open_items=0, available=True, last=0.0) -> RoutableRep:
    return RoutableRep(
        id=id, skills=skills, capacity=capacity, open_items=open_items, available=available, last_assigned_at=last
    )


def both(reps_or_items, kind: str):
    """The same collection as a plain list and as an index pool."""
    pool = RepPool(reps_or_items) if kind == "reps" else ItemPool(reps_or_items)
    return [list(reps_or_items), pool]


ALL = sorted(POLICIES)


def test_make_policy_builds_the_three_policies():
    assert set(POLICIES) == {"push", "fifo", "self"}
    assert isinstance(make_policy("push"), PushPolicy)
    assert isinstance(make_policy("fifo"), FifoPolicy)
    assert isinstance(make_policy("self"), SelfSelectionPolicy)
    assert all(make_policy(n).name == n for n in ALL)
    with pytest.raises(ValueError, match="push, fifo, self"):
        make_policy("random")


@pytest.mark.parametrize("name", ALL)
def test_an_item_needing_level_3_never_goes_to_level_2_or_to_someone_without_the_skill(name):
    needs = item("i1", {"credit-review": 3})
    junior = rep("junior", {"credit-review": 2, "order-approval": 5})
    outsider = rep("outsider", {"order-approval": 5})
    qualified = rep("qualified", {"credit-review": 3})
    for reps in both([junior, outsider], "reps"):
        assert make_policy(name).rep_for(needs, reps, NOW) is None
    for reps in both([junior, outsider, qualified], "reps"):
        assert make_policy(name).rep_for(needs, reps, NOW) is qualified
    # ...and from the rep's side: the junior is offered nothing they cannot do.
    for items in both([needs], "items"):
        assert make_policy(name).item_for(junior, items, NOW) is None
        assert make_policy(name).item_for(qualified, items, NOW) is needs


@pytest.mark.parametrize("name", ALL)
def test_a_rep_at_capacity_or_unavailable_gets_nothing_new(name):
    waiting = [item("a"), item("b")]
    full = rep("full", {"order-approval": 3}, capacity=2, open_items=2)
    away = rep("away", {"order-approval": 3}, available=False)
    for items in both(waiting, "items"):
        assert make_policy(name).item_for(full, items, NOW) is None
        assert make_policy(name).item_for(away, items, NOW) is None
    for reps in both([full, away], "reps"):
        assert make_policy(name).rep_for(waiting[0], reps, NOW) is None


def test_push_gives_an_urgent_high_value_item_before_an_older_trivial_one():
    trivial = item("trivial", age=2 * HOUR, due_in=5 * DAY, effort=900, value=0)
    urgent = item("urgent", age=0, due_in=1 * HOUR, effort=900, priority=2, value=50_000)
    someone = rep("r", {"order-approval": 3})
    for items in both([trivial, urgent], "items"):
        assert PushPolicy().item_for(someone, items, NOW) is urgent
        # FIFO, for contrast, serves arrival order: the trivial one first.
        assert FifoPolicy().item_for(someone, items, NOW) is trivial


def test_self_selection_takes_the_quickest_item():
    long_hard = item("hard", age=3 * HOUR, effort=4 * HOUR, due_in=HOUR, priority=3)
    quick = item("quick", effort=120, due_in=5 * DAY)
    someone = rep("r", {"order-approval": 3})
    for items in both([long_hard, quick], "items"):
        assert SelfSelectionPolicy().item_for(someone, items, NOW) is quick


def test_push_sends_work_to_the_least_over_qualified_rep_then_to_the_expert():
    needs = item("i", {"order-approval": 2})
    expert = rep("expert", {"order-approval": 5})
    fitting = rep("fitting", {"order-approval": 2})
    for reps in both([expert, fitting], "reps"):
        assert PushPolicy().rep_for(needs, reps, NOW) is fitting
    fitting.open_items = fitting.capacity  # the right-sized rep is full: the expert takes it
    for reps in both([expert, fitting], "reps"):
        assert PushPolicy().rep_for(needs, reps, NOW) is expert


def test_push_spreads_work_least_recently_assigned_first_then_most_spare_capacity():
    a = rep("a", {"order-approval": 3}, last=NOW - 60)
    b = rep("b", {"order-approval": 3}, last=NOW - 600)
    for reps in both([a, b], "reps"):
        assert PushPolicy().rep_for(item("i"), reps, NOW) is b
    a.last_assigned_at = b.last_assigned_at
    a.open_items = 2
    for reps in both([a, b], "reps"):
        assert PushPolicy().rep_for(item("i"), reps, NOW) is b


def test_fifo_gives_new_work_to_the_rep_who_waited_longest():
    busy = rep("busy", {"order-approval": 1}, open_items=1, last=NOW - 5000)
    idle_recent = rep("idle-recent", {"order-approval": 1}, last=NOW - 100)
    idle_long = rep("idle-long", {"order-approval": 1}, last=NOW - 3000)
    for reps in both([busy, idle_recent, idle_long], "reps"):
        assert FifoPolicy().rep_for(item("i"), reps, NOW) is idle_long


def test_self_selection_picks_a_free_eligible_rep_repeatably():
    reps = [rep(f"r{i}", {"order-approval": 2}) for i in range(10)] + [rep("no", {"billing": 5})]
    first = [SelfSelectionPolicy(seed=7).rep_for(item("i"), reps, NOW).id for _ in range(1)]
    picks = [SelfSelectionPolicy(seed=7).rep_for(item("i"), reps, NOW).id for _ in range(5)]
    assert picks == first * 5  # same seed, same choice
    policy = SelfSelectionPolicy(seed=1)
    spread = {policy.rep_for(item("i"), reps, NOW).id for _ in range(200)}
    assert "no" not in spread and len(spread) > 5


def test_a_late_item_overtakes_any_fresh_work_within_a_bounded_number_of_windows():
    """Nothing starves, and the bound is in the item's own SLA windows: a late item's score
    doubles every AGING_WINDOWS windows, so it passes work whose base score is X times its own
    after RESCUE_WINDOWS + AGING_WINDOWS x log2(X) windows late (the old linear aging needed
    weeks for a long, normal item against quick important work)."""
    window = DAY
    slow = RoutableItem(
        "slow", "order-approval", {"order-approval": 1}, created_at=NOW - window, due_at=NOW, effort_seconds=2 * HOUR
    )  # long, normal, due now (cannot be on time any more)
    p_bar = 900.0

    def hot_at(t: float) -> RoutableItem:  # quick, important work falling due at time t
        return RoutableItem(
            "hot",
            "order-approval",
            {"order-approval": 1},
            created_at=t - 4 * HOUR,
            due_at=t + 300,
            effort_seconds=300,
            priority=3,
            value=50_000,
        )

    ratio = urgency(hot_at(NOW), NOW, p_bar) / (weight(1, 0) * p_bar / (2 * HOUR))
    assert ratio > 50  # ATC strongly prefers the quick important item...
    bound = RESCUE_WINDOWS + AGING_WINDOWS * math.log2(ratio)  # windows late, counted from "too late to start"
    span = math.ceil(bound + 3) * 24
    hours = [
        h
        for h in range(0, span)
        if urgency(slow, NOW + h * HOUR, p_bar) > urgency(hot_at(NOW + h * HOUR), NOW + h * HOUR, p_bar)
    ]
    first = hours[0]
    assert hours == list(range(first, span))  # ...and once ahead it stays ahead
    assert (first - 1) * HOUR < bound * window - 2 * HOUR <= first * HOUR  # ...exactly at the bound
    # The old aging (+1 per 8 windows overdue, added to ATC) needed (ratio - 1) x 8 windows.
    assert bound < (ratio - 1) * 8 / 10


def test_overload_a_fresh_item_that_can_still_be_on_time_goes_before_a_just_missed_one():
    """In overload push does not sink capacity into work that is already late while fresh work
    goes late too; the late item waits until it is RESCUE_WINDOWS late, then comes first."""
    someone = rep("r", {"order-approval": 3})
    window = 8 * HOUR
    missed = RoutableItem(
        "missed",
        "order-approval",
        {"order-approval": 1},
        created_at=NOW - window - 60,
        due_at=NOW - 60,
        effort_seconds=900,
    )
    at_risk = RoutableItem(
        "at-risk",
        "order-approval",
        {"order-approval": 1},
        created_at=NOW - 6 * HOUR,
        due_at=NOW + 2 * HOUR,
        effort_seconds=900,
    )
    for items in both([missed, at_risk], "items"):
        assert PushPolicy().item_for(someone, items, NOW) is at_risk
        # The policy before the rework served the hopeless one first (overdue = maximum urgency).
        assert PushPolicy(2, 4 * HOUR, lookahead=0).item_for(someone, items, NOW) is missed
    later = NOW + RESCUE_WINDOWS * window + 900
    fresh_then = RoutableItem(
        "fresh",
        "order-approval",
        {"order-approval": 1},
        created_at=later - 6 * HOUR,
        due_at=later + 900,
        effort_seconds=900,
    )  # due right now
    for items in both([missed, fresh_then], "items"):
        assert PushPolicy().item_for(someone, items, later + 1) is missed


def test_on_a_business_clock_a_weekend_neither_hides_work_due_after_it_nor_ages_late_work():
    """Friday 16:00 on a 09:00-17:00 Monday-Friday clock (NOW is a Friday, 08:00 UTC). An item
    due Monday 10:00 has 1.75 business hours of slack (65.75 on the wall clock): as urgent as
    an item with that slack on a Tuesday. An item due Thursday 17:00 is late by the same
    windows at Monday 09:00 as at Friday 17:00. On the wall clock neither holds, and the two
    items rank the other way round."""
    clock = UrgencyParameters(business_time=BusinessClock(BusinessHours()).positions)
    friday = NOW - 8 * HOUR
    at = lambda day, hour: friday + day * DAY + hour * HOUR  # noqa: E731 (days from Friday)

    def made(id: str, created: float, due: float) -> RoutableItem:
        return RoutableItem(id, "t", {"t": 1}, created_at=created, due_at=due, effort_seconds=900.0)

    p_bar = 900.0
    monday = made("monday", at(0, 10), at(3, 10))  # 8 business hours: Friday 10-17, Monday 09-10
    tuesday = made("tuesday", at(4, 9), at(4, 17))  # 8 business hours, seen at Tuesday 15:00: 1.75 h of slack
    assert urgency(monday, at(0, 16), p_bar, clock) == pytest.approx(urgency(tuesday, at(4, 15), p_bar, clock))
    thursday = made("thursday", at(-1, 9), at(-1, 17))
    assert urgency(thursday, at(3, 9), p_bar, clock) == pytest.approx(urgency(thursday, at(0, 17), p_bar, clock))
    assert urgency(thursday, at(3, 9), p_bar) > 100 * urgency(thursday, at(0, 17), p_bar)  # wall: 8 windows on
    # Ranked at Friday 16:00: in business hours the Monday item leads, on the wall clock the Thursday one.
    assert urgency(monday, at(0, 16), p_bar, clock) > urgency(thursday, at(0, 16), p_bar, clock)
    assert urgency(monday, at(0, 16), p_bar) < urgency(thursday, at(0, 16), p_bar)
    # The columns agree with the single item, and the policy scores with its clock.
    cols = [np.array(c) for c in zip(*[(1.0, 0.0, it.created_at, it.due_at, 900.0) for it in (monday, thursday)])]
    scores = urgency_many(*cols, at(0, 16), p_bar, clock)
    assert np.allclose(scores, [urgency(it, at(0, 16), p_bar, clock) for it in (monday, thursday)], rtol=1e-12)
    for items in both([thursday, monday], "items"):  # the reference scan and the index
        assert PushPolicy(business_time=clock.business_time).item_for(rep("r", {"t": 1}), items, at(0, 16)) is monday
    for items in both([thursday, monday], "items"):
        assert PushPolicy().item_for(rep("r", {"t": 1}), items, at(0, 16)) is thursday


def test_a_just_missed_item_scores_as_a_fresh_one_with_part_of_its_window_left():
    p_bar = 900.0
    window, effort = 4 * HOUR, 900.0
    it = RoutableItem(
        "i", "order-approval", {"order-approval": 1}, created_at=NOW, due_at=NOW + window, effort_seconds=effort
    )
    too_late = NOW + window - effort  # from here on it cannot be finished by the due time
    # Until then the score is ATC alone and rises to its maximum (1.0 for a normal item)...
    for t in (NOW, NOW + HOUR, too_late - 1):
        assert urgency(it, t, p_bar) < 1.0
    assert urgency(it, too_late, p_bar) == pytest.approx(1.0)
    # ...then drops (deferred), is back at 1.0 when RESCUE_WINDOWS late, and doubles every
    # AGING_WINDOWS windows after that, without bound.
    assert urgency(it, too_late + 1, p_bar) == pytest.approx(2 ** (-RESCUE_WINDOWS / AGING_WINDOWS), rel=1e-3)
    assert urgency(it, too_late + RESCUE_WINDOWS * window, p_bar) == pytest.approx(1.0)
    assert urgency(it, too_late + (RESCUE_WINDOWS + 3 * AGING_WINDOWS) * window, p_bar) == pytest.approx(8.0)
    # "One window late" means the same for a short and a long SLA.
    long_sla = RoutableItem(
        "long", "order-approval", {"order-approval": 1}, created_at=NOW, due_at=NOW + 12 * window, effort_seconds=effort
    )
    assert urgency(long_sla, NOW + 12 * window - effort + 24 * window, p_bar) == pytest.approx(
        urgency(it, too_late + 2 * window, p_bar)
    )
    # Far past any float: the score saturates instead of overflowing (ties then go by due date).
    assert math.isfinite(urgency(it, NOW + 1e6 * window, p_bar))
    # Switched off on request (experiments only): late work then stays deferred for ever.
    assert urgency(it, too_late + 100 * DAY, p_bar, UrgencyParameters(aging_windows=math.inf)) < 1.0


def test_a_rep_with_a_scarce_skill_takes_the_work_only_few_may_do_first():
    """The item-side twin of 'least over-qualified rep first': validation that two of six
    reps on shift may do goes before equally urgent shared work with those two."""
    validator = rep("validator", {"validation": 1, "leads": 1})
    others = [rep(f"o{i}", {"leads": 1}, open_items=3) for i in range(4)]  # busy, on shift
    second = rep("v2", {"validation": 1}, open_items=3)
    team = [validator, second, *others]
    lead = RoutableItem("lead", "leads", {"leads": 1}, created_at=NOW - HOUR, due_at=NOW + 3 * HOUR, effort_seconds=900)
    validation = RoutableItem(
        "validation",
        "validation",
        {"validation": 1},
        created_at=NOW - HOUR,
        due_at=NOW + 3 * HOUR + 1,
        effort_seconds=900,
    )
    index = RoutingIndex(items=[lead, validation], reps=team)
    assert PushPolicy().item_for(validator, index.items, NOW) is validation
    assert PushPolicy(team=team).item_for(validator, [lead, validation], NOW) is validation
    # Without the team (or with the rule off) the earlier due date wins.
    assert PushPolicy().item_for(validator, [lead, validation], NOW) is lead
    assert PushPolicy(scarcity=0).item_for(validator, index.items, NOW) is lead
    # Off-shift holders do not count as supply: with only the validator on shift for leads too,
    # nobody else may take the lead either, so scarcity no longer favours the validation.
    for o in others:
        o.available = False
    second.available = False
    assert PushPolicy().item_for(validator, index.items, NOW) is lead
    # A much more urgent shared item still goes first: scarcity weighs, it does not override.
    for o in [*others, second]:
        o.available = True
    urgent_lead = RoutableItem(
        "urgent", "leads", {"leads": 1}, created_at=NOW - 3 * HOUR, due_at=NOW + 1000, effort_seconds=900, priority=3
    )
    index.items.add(urgent_lead)
    assert PushPolicy().item_for(validator, index.items, NOW) is urgent_lead


def test_shared_work_goes_to_the_rep_whose_other_skills_are_least_needed():
    validator = rep("validator", {"validation": 1, "leads": 1}, last=NOW - 9000)  # waited longest
    lead_only = rep("lead-only", {"leads": 1}, last=NOW - 60)
    lead = RoutableItem("lead", "leads", {"leads": 1}, created_at=NOW, due_at=NOW + 4 * HOUR, effort_seconds=300)
    for reps in both([validator, lead_only], "reps"):
        assert PushPolicy().rep_for(lead, reps, NOW) is lead_only
        assert PushPolicy(spare_scarce_skills=False).rep_for(lead, reps, NOW) is validator
    lead_only.open_items = lead_only.capacity  # the specialist is full: the validator takes it
    for reps in both([validator, lead_only], "reps"):
        assert PushPolicy().rep_for(lead, reps, NOW) is validator


def _at(slack: float, window: float, effort: float = 900.0, **kw) -> RoutableItem:
    """An item with `window` from creation to due, scored at NOW with `slack` left."""
    due = NOW + effort + slack
    return RoutableItem(
        "x", "order-approval", {"order-approval": 1}, created_at=due - window, due_at=due, effort_seconds=effort, **kw
    )


def test_the_look_ahead_is_a_fraction_of_the_sla_window():
    p_bar = 900.0
    # The same share of the window left -> the same urgency, whatever the window's length.
    assert urgency(_at(HOUR, 4 * HOUR), NOW, p_bar) == pytest.approx(urgency(_at(12 * HOUR, 48 * HOUR), NOW, p_bar))
    # With LOOKAHEAD x window of slack left an item has e^-1 of its maximum.
    assert urgency(_at(LOOKAHEAD * 10 * HOUR, 10 * HOUR), NOW, p_bar) == pytest.approx(math.exp(-1))
    # Less slack, more urgency; and an item due within the hour of a 8 h SLA already counts.
    scores = [urgency(_at(h * HOUR, 8 * HOUR), NOW, p_bar) for h in (7, 6, 4, 2, 1, 0.5)]
    assert scores == sorted(scores) and scores[-1] > 10 * scores[0] and scores[-2] > 0.4
    # The classic look-ahead (k x p_bar = 30 min) would have scored that item almost 0.
    assert urgency(_at(HOUR, 8 * HOUR), NOW, p_bar, UrgencyParameters(lookahead=0)) < 0.15
    # Very short SLAs fall back to the classic ATC look-ahead of K mean efforts.
    assert urgency(_at(K * p_bar, 1200.0), NOW, p_bar) == pytest.approx(math.exp(-1))


def test_push_ranks_by_deadline_not_by_age_while_work_can_still_be_on_time():
    """The finding: with a look-ahead of k x p_bar (12 minutes) and +1 per 4 h of waiting, push
    served an item due tomorrow before one due within the hour because it had waited longer."""
    waited = item("waited", age=6 * HOUR, due_in=20 * HOUR)
    due_soon = item("due-soon", age=1 * HOUR, due_in=1 * HOUR)
    someone = rep("r", {"order-approval": 3})
    old = PushPolicy(2, 4 * HOUR, lookahead=0)
    for items in both([waited, due_soon], "items"):
        assert PushPolicy().item_for(someone, items, NOW) is due_soon
        assert old.item_for(someone, items, NOW) is waited  # what push used to do (like FIFO)


def test_the_old_urgency_is_reproducible_for_comparisons():
    it = item("i", age=5 * HOUR, due_in=2 * HOUR, effort=600, priority=2, value=3000)
    p_bar = 900.0
    slack = 2 * HOUR - 600
    expected = weight(2, 3000) * (900 / 600) * math.exp(-slack / (2 * 900)) + 5 * HOUR / (4 * HOUR)
    assert PushPolicy(2, 4 * HOUR, lookahead=0).score(it, NOW, p_bar) == pytest.approx(expected)


def test_push_policy_rejects_meaningless_parameters():
    for kwargs in (
        {"k": 0},
        {"lookahead": -0.1},
        {"aging_windows": 0},
        {"aging_seconds": 0},
        {"rescue_windows": -1},
        {"shortest_first": -0.5},
        {"scarcity": -1},
        {"queue_scale": -1},
    ):
        with pytest.raises(ValueError):
            PushPolicy(**kwargs)


def test_priorities_and_values_that_are_no_numbers_neither_break_a_pick_nor_starve_an_item():
    """A log (or a bad row) can carry priority 0, -1, NaN or inf and value inf or NaN: 0 x inf
    was a NaN score, and a NaN score left the rep with no pick at all (the simulator stopped);
    a priority of 0 weighed 0, which no aging lifts, so the item waited while anything else
    was there. Now the weight is finite and positive, and a lowest-priority item that is late
    enough goes first."""
    for priority in (0.0, -1.0, math.nan, math.inf, 1e300):
        for value in (0.0, -50.0, math.nan, math.inf, 1e300):
            assert 0 < weight(priority, value) < math.inf
    odd = [
        item("inf-value", value=math.inf, priority=0.0),
        item("nan-priority", priority=math.nan),
        item("inf-priority", priority=math.inf, value=math.nan),
    ]
    for items in both(odd, "items"):
        assert PushPolicy().item_for(rep("r", {"order-approval": 1}), items, NOW).id == "inf-priority"
    low = item("low", priority=0.0, age=8 * HOUR, due_in=0.0)
    high = item("high", priority=3.0, due_in=200 * HOUR)
    for items in both([low, high], "items"):
        assert PushPolicy().item_for(rep("r", {"order-approval": 1}), items, NOW).id == "high"
    for items in both([low, high], "items"):  # nine windows later the low one has caught up
        assert PushPolicy().item_for(rep("r", {"order-approval": 1}), items, NOW + 9 * 8 * HOUR).id == "low"
    assert 0 < urgency(low, NOW + 9 * 8 * HOUR, 900.0) < math.inf


def test_urgency_formula_and_vectorised_scores_agree():
    assert weight(1.0, 0.0) == 1.0
    assert weight(2.0, 1000.0) == pytest.approx(2 * (1 + math.log(2)))
    # a normal item that has just run out of slack scores 1.0
    due_now = item("d", due_in=900, effort=900)
    assert urgency(due_now, NOW, 900.0) == pytest.approx(1.0)
    rng = random.Random(3)
    items = [
        item(
            str(i),
            age=rng.uniform(0, DAY),
            due_in=rng.uniform(-DAY, 5 * DAY),
            effort=rng.uniform(10, 7200),
            priority=rng.choice([0.5, 1, 2, 3, 0, -1, math.nan, math.inf]),
            value=rng.choice([0, 100, 5000, 80000, -50, math.nan, math.inf, 1e300]),
        )
        for i in range(500)
    ]
    items.append(item("born-late", age=0, due_in=-HOUR))  # due before it was created
    p_bar = 1500.0
    cols = (
        np.array([it.priority for it in items]),
        np.array([it.value for it in items]),
        np.array([it.created_at for it in items]),
        np.array([it.due_at for it in items]),
        np.array([it.effort_seconds for it in items]),
    )
    for params in (
        {},
        {"lookahead": 0.5, "aging_windows": 2.0},
        {"aging_windows": math.inf},
        {"rescue_windows": 0.0, "shortest_first": 0.5},
        {"rescue_windows": 3.0, "aging_windows": 0.25},
        {"k": 20.0, "aging_seconds": 48 * HOUR, "lookahead": 0.0},
        {"business_time": BusinessClock(BusinessHours(start="08:30", timezone="Europe/Berlin")).positions},
    ):
        scalar = [urgency(it, NOW, p_bar, UrgencyParameters(**params)) for it in items]
        vector = urgency_many(*cols, NOW, p_bar, UrgencyParameters(**params))
        assert np.all(np.isfinite(vector)) and np.all(vector >= 0)
        assert np.allclose(scalar, vector, rtol=1e-12)
        # the router and the SLA watch score through the policy: all its parameters, not some
        policy = PushPolicy(**params)
        assert np.allclose(
            [policy.score(it, NOW, p_bar) for it in items], policy.score_many(*cols, NOW, p_bar), rtol=1e-12
        )


def _random_world(seed: int):
    rng = random.Random(seed)
    skills = ["order-approval", "credit-review", "discount-approval", "provisioning-visit", "invoice-approval"]
    items = []
    for i in range(400):
        need = dict((s, rng.choice([1, 1, 2, 3, 4])) for s in rng.sample(skills, rng.choice([1, 1, 2])))
        items.append(
            item(
                f"i{i}",
                need,
                age=rng.uniform(0, DAY),
                due_in=rng.uniform(-HOUR, 4 * DAY),
                effort=rng.choice([300, 600, 900, 1800, 3600]),
                priority=rng.choice([1, 1, 2]),
                value=rng.choice([0, 0, 1000, 20000]),
            )
        )
    reps = [
        rep(
            f"r{j}",
            {s: rng.randint(1, 5) for s in rng.sample(skills, rng.randint(1, 4))},
            capacity=rng.randint(1, 4),
            open_items=rng.randint(0, 2),
            available=rng.random() > 0.2,
            last=NOW - rng.choice([0, 60, 600, 6000]),
        )
        for j in range(40)
    ]
    return rng, items, reps


PUSH_VARIANTS = {
    "push-old": lambda: PushPolicy(2, 4 * HOUR, lookahead=0),
    "push-long-look-ahead": lambda: PushPolicy(lookahead=1.0, aging_windows=1.0),
    "push-no-team-rules": lambda: PushPolicy(scarcity=0, spare_scarce_skills=False),
}


@pytest.mark.parametrize("name", ALL + sorted(PUSH_VARIANTS))
def test_the_index_answers_exactly_what_a_full_scan_answers(name):
    rng, items, reps = _random_world(11)
    index = RoutingIndex(items=items, reps=reps)
    make = PUSH_VARIANTS.get(name, lambda: make_policy(name))
    scan_policy, fast_policy = make(), make()  # same seeds for "self"
    if isinstance(scan_policy, PushPolicy):
        scan_policy.team = reps  # the scan is told the team the index knows
    waiting = list(items)
    decisions = 0
    for step in range(300):
        t = NOW + step * 30
        if rng.random() < 0.5:
            r = rng.choice(reps)
            fast = fast_policy.item_for(r, index.items, t)
            slow = scan_policy.item_for(r, waiting, t)
            assert (fast and fast.id) == (slow and slow.id)
            if fast is not None:
                index.assign(fast.id, r.id, t)
                waiting.remove(fast)
                decisions += 1
        else:
            it = rng.choice(items)
            fast = fast_policy.rep_for(it, index.reps, t)
            slow = scan_policy.rep_for(it, list(index.reps), t)
            assert (fast and fast.id) == (slow and slow.id)
        if rng.random() < 0.3:  # someone finishes an item
            index.release(rng.choice(reps).id)
        if rng.random() < 0.1:  # someone's shift starts or ends: read afresh, never cached
            r = rng.choice(reps)
            r.available = not r.available
        if rng.random() < 0.05:  # someone is trained: rankings built from skills are rebuilt
            r = rng.choice(reps)
            r.skills = {**r.skills, rng.choice(sorted(r.skills)): rng.randint(1, 5)}
            index.reps.update(r)
    assert decisions > 20
    assert len(index.items) == len(waiting)


def test_item_pool_keeps_its_columns_and_mean_effort_in_step():
    pool = ItemPool([item("a", effort=600), item("b", effort=1200)])
    assert len(pool) == 2 and "a" in pool and pool.mean_effort == 900
    pool.remove("a")
    assert "a" not in pool and pool.mean_effort == 1200
    pool.add(item("c", {"billing": 2}, effort=1800))
    pool.update(item("b", {"billing": 4}, effort=600))  # re-read: now needs billing 4
    assert pool.mean_effort == 1200
    assert [it.id for it in pool] == ["c", "b"]
    assert [pool.item_at(int(s)).id for s in pool.eligible_slots({"billing": 3})] == ["c"]
    for i in range(3000):  # growing past the initial capacity keeps everything
        pool.add(item(f"x{i}", effort=60))
    assert len(pool) == 3002 and pool.get("x2999").effort_seconds == 60


def test_rep_pool_rereads_skills_on_update():
    r = rep("r", {"billing": 1})
    pool = RepPool([r])
    assert PushPolicy().rep_for(item("i", {"billing": 3}), pool, NOW) is None
    r.skills = {"billing": 3}
    pool.update(r)
    assert PushPolicy().rep_for(item("i", {"billing": 3}), pool, NOW) is r
    pool.remove("r")
    assert PushPolicy().rep_for(item("i", {"billing": 3}), pool, NOW) is None


def test_in_overload_late_work_ages_on_the_backlog_s_clock_not_the_sla_s():
    """When the queue's wait dwarfs the SLA windows (overload), rescuing every item a few
    windows late would turn push into FIFO among late work; the time scale stretches to the
    wait instead. With a normal queue the same late item is rescued."""
    window = 4 * HOUR
    late = RoutableItem(
        "late", "leads", {"leads": 1}, created_at=NOW - 5 * window, due_at=NOW - 4 * window, effort_seconds=900
    )  # four windows late: past RESCUE_WINDOWS
    fresh = RoutableItem(
        "fresh", "leads", {"leads": 1}, created_at=NOW - 3 * HOUR, due_at=NOW + HOUR, effort_seconds=900
    )
    team = [rep(f"r{i}", {"leads": 1}, capacity=1) for i in range(4)]
    asking = team[0]
    backlog = [
        RoutableItem(f"b{i}", "billing", {"billing": 1}, created_at=NOW, due_at=NOW + DAY, effort_seconds=900)
        for i in range(300)
    ]  # work the team cannot do right now: 300 x 15 min over 4 reps
    calm = RoutingIndex(items=[late, fresh], reps=team)
    assert PushPolicy().item_for(asking, calm.items, NOW) is late
    swamped = RoutingIndex(items=[late, fresh, *backlog], reps=team)
    assert PushPolicy().item_for(asking, swamped.items, NOW) is fresh
    assert PushPolicy(queue_scale=0).item_for(asking, swamped.items, NOW) is late
    # A router that loaded only the asking rep does not know the team: no stretching.
    alone = RoutingIndex(items=[late, fresh, *backlog], reps=[asking])
    assert PushPolicy().item_for(asking, alone.items, NOW) is late


def test_late_work_with_a_long_sla_does_not_lag_behind_in_hours():
    """Aging counts windows, but a long SLA's window is capped at the mean window of the work
    the rep may do: 60 h late on a 48 h SLA is not 'less late' than 3 h on a 2 h SLA."""
    someone = rep("r", {"order-approval": 3})
    short = RoutableItem(
        "short",
        "order-approval",
        {"order-approval": 1},
        created_at=NOW - 5 * HOUR,
        due_at=NOW - 3 * HOUR + 900,
        effort_seconds=900,
    )  # 2 h SLA, 3 h late if started now
    long = RoutableItem(
        "long",
        "order-approval",
        {"order-approval": 1},
        created_at=NOW - 108 * HOUR,
        due_at=NOW - 60 * HOUR + 900,
        effort_seconds=900,
    )  # 48 h SLA, 60 h late
    for items in both([short, long], "items"):
        assert PushPolicy().item_for(someone, items, NOW) is long
        assert PushPolicy(common_clock=False).item_for(someone, items, NOW) is short


@pytest.mark.parametrize("variant", ["push", *sorted(PUSH_VARIANTS)])
def test_filling_several_places_at_once_answers_what_item_for_answers_one_by_one(variant):
    rng, items, reps = _random_world(5)
    make = PUSH_VARIANTS.get(variant, PushPolicy)
    for r in reps[:12]:
        one_by_one, at_once = RoutingIndex(items=items, reps=reps), RoutingIndex(items=items, reps=reps)
        r.open_items, r.available = 0, True
        expected = []
        for _ in range(r.capacity):
            item = make().item_for(r, one_by_one.items, NOW)
            if item is None:
                break
            expected.append((item.id, make().score(item, NOW, one_by_one.items.mean_effort)))
            one_by_one.items.remove(item.id)
        got = make().items_for(r, at_once.items, NOW, r.capacity)
        assert [(it.id, score) for it, score in got] == expected
        assert len(at_once.items) == len(one_by_one.items)


@pytest.mark.parametrize("name", ALL)
def test_a_big_tie_goes_to_the_least_id_as_the_scan_settles_it(name):
    """A log whose rows share one timestamp: every waiting item ties on every field but its id.
    Ties among more than BIG_TIE items are settled on the pool's id column in one pass (the
    key, item by item, made 20,000 such rows a 30-second replay): the same item as the scan."""
    from handoff.core.routing.candidates import BIG_TIE

    ids = [f"case-{k:03d}" for k in range(3 * BIG_TIE)]
    random.Random(5).shuffle(ids)
    same = [item(i, due_in=2 * HOUR) for i in ids]
    ann = rep("ann", {"order-approval": 1}, capacity=1)
    scan = make_policy(name).item_for(ann, list(same), NOW)
    indexed = make_policy(name).item_for(ann, ItemPool(same), NOW)
    assert scan is not None and indexed is not None
    assert indexed.id == scan.id == min(ids)
