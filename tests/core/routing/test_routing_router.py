"""The live router against a real (SQLite) database: who gets what, capacity, completion
rights, presence and shifts, and the audit trail every change leaves."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from handoff.core.models import AuditEvent
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkItemState
from handoff.core.routing import router
from handoff.core.routing.router import NotAllowed

# The router's guarantees come from the database (conditional UPDATEs): both databases it runs on.
pytestmark = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


def audit_actions(s, item_id) -> list[str]:
    return list(
        s.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity == "work_item", AuditEvent.entity_id == str(item_id))
            .order_by(AuditEvent.id)
        )
    )


def test_an_item_needing_level_3_never_goes_to_level_2_or_to_a_rep_without_the_skill(s, now, make_worker, make_item):
    make_worker("junior", {"credit-review": 2})
    make_worker("outsider", {"order-approval": 5})
    it = make_item({"credit-review": 3}, work_type="credit-review")
    assert router.route_item(s, it.id, now) is None
    assert it.state == WorkItemState.OPEN and it.assignee_id is None
    qualified = make_worker("qualified", {"credit-review": 3})
    assert router.route_item(s, it.id, now).name == "qualified"
    s.refresh(it)
    assert it.state == WorkItemState.ASSIGNED and it.assignee_id == qualified.id and it.assigned_at == now
    assert audit_actions(s, it.id) == ["assigned"]


def test_a_rep_at_capacity_gets_nothing_new(s, now, make_worker, make_item):
    ann = make_worker("ann", {"order-approval": 3}, capacity=2)
    items = [make_item() for _ in range(4)]
    got = [router.route_item(s, it.id, now) for it in items]
    assert [w.name if w else None for w in got] == ["ann", "ann", None, None]
    s.refresh(ann)
    assert ann.open_items == 2
    assert router.route_for_worker(s, ann.id, now) == []
    s.refresh(ann)
    assert ann.open_items == 2


def test_an_urgent_high_value_item_is_assigned_before_an_older_trivial_one(s, now, make_worker, make_item):
    trivial = make_item(created=now - timedelta(hours=2), due_in=timedelta(days=5), title="trivial")
    urgent = make_item(due_in=timedelta(hours=1), priority=2, value=50_000, title="urgent")
    ann = make_worker("ann", {"order-approval": 3}, capacity=1)
    taken = router.route_for_worker(s, ann.id, now)
    assert [a.item_id for a in taken] == [urgent.id]
    s.refresh(trivial)
    assert trivial.state == WorkItemState.OPEN


def test_route_open_items_serves_the_most_urgent_first_when_capacity_is_scarce(s, now, make_worker, make_item):
    relaxed = [make_item(due_in=timedelta(days=4)) for _ in range(3)]
    pressing = make_item(due_in=timedelta(minutes=30), value=10_000)
    make_worker("ann", {"order-approval": 1}, capacity=1)
    done = router.route_open_items(s, now)
    assert [a.item_id for a in done] == [pressing.id]
    assert all(s.get(type(r), r.id).state == WorkItemState.OPEN for r in relaxed)


def test_the_least_over_qualified_rep_gets_routine_work(s, now, make_worker, make_item):
    make_worker("expert", {"order-approval": 5})
    make_worker("fitting", {"order-approval": 2})
    it = make_item({"order-approval": 2})
    assert router.route_item(s, it.id, now).name == "fitting"


def test_a_non_assignee_may_not_complete_and_the_item_stays_open_and_assigned(s, now, make_worker, make_item):
    ann = make_worker("ann", {"order-approval": 3})
    make_worker("bob", {"order-approval": 3})
    it = make_item()
    router.route_item(s, it.id, now)
    s.refresh(it)
    holder = s.get(Worker, it.assignee_id).name
    other = "bob" if holder == "ann" else "ann"
    with pytest.raises(
        NotAllowed, match=f"assigned to {holder}; only the assignee or a supervisor may complete it, not {other}"
    ):
        router.complete_item(s, it.id, by=other, outcome="approve", now=now)
    with pytest.raises(NotAllowed, match="not a known worker"):
        router.complete_item(s, it.id, by="mallory", outcome="approve", now=now)
    s.refresh(it)
    assert it.state == WorkItemState.ASSIGNED and s.get(Worker, it.assignee_id).name == holder
    assert (
        it.completed_at is None
        and ann.open_items + s.scalar(select(Worker.open_items).where(Worker.name == "bob")) == 1
    )


def test_the_assignee_completes_frees_capacity_and_is_given_the_next_item(s, now, make_worker, make_item):
    ann = make_worker("ann", {"order-approval": 3}, capacity=1)
    first, second = make_item(due_in=timedelta(hours=1)), make_item(due_in=timedelta(hours=6))
    router.route_open_items(s, now)
    done = router.complete_item(s, first.id, by="ann", outcome="approve", note="fine", now=now + timedelta(minutes=10))
    assert done.state == WorkItemState.COMPLETED and done.completed_by == "ann" and done.outcome == "approve"
    s.refresh(second)
    s.refresh(ann)
    assert second.state == WorkItemState.ASSIGNED and second.assignee_id == ann.id and ann.open_items == 1
    assert audit_actions(s, first.id) == ["assigned", "completed"]
    with pytest.raises(NotAllowed, match="already completed"):
        router.complete_item(s, first.id, by="ann", outcome="approve", now=now)


def test_a_supervisor_may_complete_someone_elses_item(s, now, make_worker, make_item):
    ann = make_worker("ann", {"order-approval": 3})
    make_worker("sue", {"order-approval": 5}, role="supervisor", capacity=0)
    it = make_item()
    assert router.route_item(s, it.id, now).name == "ann"
    done = router.complete_item(s, it.id, by="sue", outcome="reject", note="duplicate", now=now)
    assert done.completed_by == "sue" and done.state == WorkItemState.COMPLETED
    s.refresh(ann)
    assert ann.open_items == 0


def test_going_offline_hands_back_not_started_work_which_is_rerouted(s, now, make_worker, make_item):
    ann = make_worker("ann", {"order-approval": 3}, capacity=3)
    waiting, begun = make_item(), make_item()
    router.route_for_worker(s, ann.id, now)
    router.start_item(s, begun.id, by="ann", now=now)
    bob = make_worker("bob", {"order-approval": 3}, presence=Presence.OFFLINE)
    change = router.set_presence(s, "ann", "offline", now)
    assert change.reclaimed == [waiting.id] and change.rerouted == {}  # bob is offline too
    s.refresh(waiting)
    assert waiting.state == WorkItemState.OPEN and waiting.assignee_id is None
    s.refresh(begun)
    assert begun.state == WorkItemState.STARTED and begun.assignee_id == ann.id  # started work stays
    s.refresh(ann)
    assert ann.open_items == 1
    # Coming online pulls the waiting work.
    change = router.set_presence(s, "bob", Presence.AVAILABLE, now)
    assert change.pulled == [waiting.id]
    s.refresh(waiting)
    assert waiting.assignee_id == bob.id
    assert audit_actions(s, waiting.id) == ["assigned", "reclaimed", "assigned"]
    presence_events = s.scalars(select(AuditEvent).where(AuditEvent.action == "presence")).all()
    assert [(e.from_state, e.to_state) for e in presence_events] == [("available", "offline"), ("offline", "available")]


def test_offline_work_goes_straight_to_another_eligible_rep(s, now, make_worker, make_item):
    make_worker("ann", {"order-approval": 3}, capacity=1)
    it = make_item()
    router.route_item(s, it.id, now)
    make_worker("bob", {"order-approval": 3})
    change = router.set_presence(s, "ann", "offline", now)
    assert change.rerouted == {it.id: "bob"}


def test_away_keeps_work_but_gets_nothing_new(s, now, make_worker, make_item):
    make_worker("ann", {"order-approval": 3})
    first = make_item()
    router.route_item(s, first.id, now)
    router.set_presence(s, "ann", "away", now)
    second = make_item()
    assert router.route_item(s, second.id, now) is None
    s.refresh(first)
    assert first.state == WorkItemState.ASSIGNED


def test_working_hours_and_days_decide_who_is_available_now(s, now, make_worker, make_item):
    # 10:00 UTC on a Wednesday is 19:00 in Tokyo (off shift), 11:00 in Berlin (on shift).
    make_worker("tokyo", {"order-approval": 3}, timezone="Asia/Tokyo", shift_start="09:00", shift_end="17:00")
    make_worker("weekender", {"order-approval": 3}, work_days="56")
    it = make_item()
    assert router.route_item(s, it.id, now) is None
    make_worker("berlin", {"order-approval": 3}, timezone="Europe/Berlin", shift_start="09:00", shift_end="17:00")
    assert router.route_item(s, it.id, now).name == "berlin"


def test_a_shift_that_opens_or_closes_changes_who_is_available_from_that_minute(s, now, make_worker, make_item):
    """The index works out availability once a minute, again only for the shifts that opened or
    closed; a worker whose shift or presence changes is seen at once, in the same minute."""
    berlin = make_worker(
        "berlin", {"order-approval": 3}, timezone="Europe/Berlin", shift_start="09:00", shift_end="17:00"
    )
    make_worker("tokyo", {"order-approval": 3}, timezone="Asia/Tokyo", shift_start="09:00", shift_end="17:00")
    wednesday = datetime(2026, 12, 2)  # Berlin is UTC+1, Tokyo UTC+9 in December
    first, second, late = make_item(), make_item(), make_item()
    assert router.route_item(s, first.id, wednesday.replace(hour=7, minute=59)).name == "tokyo"  # 08:59 in Berlin
    assert router.route_item(s, second.id, wednesday.replace(hour=8)).name == "berlin"  # 17:00 in Tokyo: closed
    assert router.route_item(s, late.id, wednesday.replace(hour=16)) is None  # 17:00 in Berlin
    berlin.shift_end = "18:00"  # the same minute: the changed row moves berlin to the new shift
    s.flush()
    assert router.route_item(s, late.id, wednesday.replace(hour=16)).name == "berlin"
    berlin.presence = "offline"
    s.flush()
    third = make_item()
    assert router.route_item(s, third.id, wednesday.replace(hour=16, minute=1)) is None
    berlin.presence = "available"
    s.flush()
    assert router.route_item(s, third.id, wednesday.replace(hour=16, minute=1)).name == "berlin"


def test_an_escalated_item_may_go_one_level_lower(s, now, make_worker, make_item):
    make_worker("junior", {"credit-review": 2})
    it = make_item({"credit-review": 3}, work_type="credit-review")
    assert router.route_item(s, it.id, now) is None
    it.escalated = True
    s.flush()
    assert router.route_item(s, it.id, now).name == "junior"


def test_presence_of_an_unknown_worker_is_refused(s, now):
    with pytest.raises(router.UnknownWorker):
        router.set_presence(s, "nobody", "offline", now)


def test_an_item_without_requirements_may_go_to_anyone(s, now, make_worker, make_item):
    make_worker("newcomer", {})
    it = make_item({})
    assert router.route_item(s, it.id, now).name == "newcomer"


def test_a_rep_with_room_gets_what_the_policy_picks_from_the_whole_queue(s, now, make_worker, make_item):
    """route_for_worker decides from the live index exactly as the push policy does over the
    whole queue read afresh through the ORM (urgency's mean effort is the whole queue's)."""
    import random

    from handoff.core.models import WorkItem
    from handoff.core.routing.index import RoutingIndex
    from handoff.core.routing.router import POLICY
    from handoff.core.routing.router import as_routable_item
    from handoff.core.routing.router import as_routable_rep
    from handoff.core.routing.router import epoch

    rng = random.Random(11)
    kinds = [
        {"order-approval": 1},
        {"order-approval": 3},
        {"credit-review": 2},
        {"provisioning": 2},
        {"order-approval": 1, "credit-review": 1},
        {},
    ]
    for _ in range(120):
        make_item(
            rng.choice(kinds),
            due_in=timedelta(minutes=rng.uniform(-120, 3000)),
            effort=rng.choice([60, 300, 900, 7200]),
            priority=rng.choice([0.5, 1, 2]),
            value=rng.choice([0, 500, 20_000]),
            escalated=rng.random() < 0.2,
        )
    ann = make_worker("ann", {"order-approval": 2, "credit-review": 1}, capacity=6)

    # what the policy picks with every open item in view
    rep = as_routable_rep(ann, now)
    queue = s.scalars(select(WorkItem).where(WorkItem.state == WorkItemState.OPEN)).all()
    index = RoutingIndex(items=[as_routable_item(it) for it in queue], reps=[rep])
    expected = []
    for _ in range(6):
        item = POLICY.item_for(rep, index.items, epoch(now))
        expected.append(int(item.id))
        index.items.remove(item.id)
        rep.open_items += 1

    assert [a.item_id for a in router.route_for_worker(s, ann.id, now)] == expected


def test_urgency_weighs_the_whole_queues_effort_even_when_a_rep_sees_part_of_it(s, now, make_worker, make_item):
    # Long jobs the rep cannot do make the queue's mean effort large, which widens urgency's
    # look-ahead: then the weightier item due in an hour outranks the lighter one due in ten
    # minutes (over the rep's two short items alone, it would be the other way round).
    for _ in range(50):
        make_item({"provisioning": 3}, work_type="provisioning-visit", effort=8 * 3600, due_in=timedelta(days=2))
    weighty = make_item(priority=3, due_in=timedelta(hours=1), effort=300)
    make_item(priority=1, due_in=timedelta(minutes=10), effort=300)
    ann = make_worker("ann", {"order-approval": 2}, capacity=1)

    assert [a.item_id for a in router.route_for_worker(s, ann.id, now)] == [weighty.id]


def test_a_claim_lost_on_the_rep_after_the_item_was_read_from_the_database_tries_the_next_rep(
    s, now, make_worker, make_item, monkeypatch
):
    # The index saw the item taken (ITEM_GONE: so route_item reads it from the database), then
    # the chosen rep's room went (REP_FULL): route_item must try again, not trip over the index row.
    from handoff.core.routing import assign
    from handoff.core.routing.claims import Claim

    make_worker("ann", {"order-approval": 3})
    make_worker("bob", {"order-approval": 3})
    it = make_item()
    fake = [Claim.ITEM_GONE, Claim.REP_FULL]
    real = assign.claim
    monkeypatch.setattr(assign, "claim", lambda *a: fake.pop(0) if fake else real(*a))
    got = router.route_item(s, it.id, now)
    assert not fake and got is not None
    s.refresh(it)
    assert it.state == WorkItemState.ASSIGNED and it.assignee_id == got.id


def test_claim_many_takes_what_is_still_open_and_the_rep_room_for_exactly_that(s, now, make_worker, make_item):
    from handoff.core.routing.claims import claim_many

    ann = make_worker("ann", {"order-approval": 3}, capacity=3)
    a, b, c = make_item(), make_item(), make_item()
    b.state = WorkItemState.COMPLETED  # finished meanwhile: not hers to take
    s.flush()
    taken = claim_many(s, ann.id, [(a.id, a.version), (b.id, b.version), (c.id, c.version + 7)], now)
    assert taken == [a.id]  # c was changed since it was seen (another version)
    s.refresh(ann), s.refresh(a), s.refresh(c)
    assert ann.open_items == 1 and a.assignee_id == ann.id and a.state == WorkItemState.ASSIGNED
    assert c.state == WorkItemState.OPEN and c.assignee_id is None


def test_a_claim_that_falls_short_leaves_only_what_it_took_and_audits_that_once(s, now, make_worker, make_item):
    """A claim that falls short (an item gone, or no room for everything it would take) leaves
    exactly what it took: an audit row per item taken and none for the rest, every version of
    what it did not take as it was."""
    from types import SimpleNamespace

    from handoff.core.routing.claims import assignment_event
    from handoff.core.routing.claims import claim_many

    ann = make_worker("ann", {"order-approval": 3}, capacity=2)
    a, b, c = make_item(), make_item(), make_item()
    b.state = WorkItemState.COMPLETED
    s.flush()
    rep = SimpleNamespace(id=ann.id, extra={"name": "ann"})
    versions = {it.id: it.version for it in (a, b, c)}

    def events(*items):
        return [assignment_event(it.id, rep, "test") for it in items]

    # Three asked, one gone: the other two fit her two places.
    assert claim_many(s, ann.id, [(it.id, it.version) for it in (a, b, c)], now, events(a, b, c)) == [a.id, c.id]
    assert [audit_actions(s, it.id) for it in (a, b, c)] == [["assigned"], [], ["assigned"]]
    s.refresh(ann), s.refresh(a), s.refresh(c)
    assert ann.open_items == 2 and (a.version, c.version) == (versions[a.id] + 1, versions[c.id] + 1)

    # Full now: a claim for two more takes nothing, writes nothing and leaves them as they were.
    d, e = make_item(), make_item()
    before = [(d.version, e.version)]
    assert claim_many(s, ann.id, [(d.id, d.version), (e.id, e.version)], now, events(d, e)) is None
    s.refresh(ann), s.refresh(d), s.refresh(e)
    assert ann.open_items == 2 and [audit_actions(s, it.id) for it in (d, e)] == [[], []]
    assert (d.state, d.assignee_id, e.state) == (WorkItemState.OPEN, None, WorkItemState.OPEN)
    assert [(d.version, e.version)] == before

    # A claim inside the caller's own savepoint.
    with s.begin_nested():
        bob = make_worker("bob", {"order-approval": 3})
        assert claim_many(s, bob.id, [(d.id, d.version)], now, events(d)) == [d.id]
    s.flush()
    s.refresh(d)
    assert d.assignee_id == bob.id and audit_actions(s, d.id) == ["assigned"]


@pytest.mark.committed  # its own transaction: the rolled-back fixture's savepoints are subtransactions too
def test_a_transaction_making_many_claims_makes_no_subtransactions(s, now, make_worker, make_item):
    """Claims that fall short are undone without savepoints: on PostgreSQL each savepoint that
    writes is a subtransaction with an id of its own (held, as a lock on it, until the
    transaction ends), and past 64 in one transaction every other session's snapshot slows
    down. Seventy claims in one transaction, all but the first falling short (the item the rep
    before took), and one more with no room, leave it with its own id alone."""
    from sqlalchemy import text

    from handoff.core.routing.claims import claim_many

    reps = [make_worker(f"r{k}", {"order-approval": 3}, capacity=1) for k in range(70)]
    items = [make_item() for _ in range(72)]
    seen = {it.id: it.version for it in items}
    for k, rep in enumerate(reps):  # each asks for its own item and the one the rep before took
        asked = [(items[k].id, seen[items[k].id])] + ([(items[k - 1].id, seen[items[k - 1].id])] if k else [])
        assert claim_many(s, rep.id, asked, now) == [items[k].id]
    assert claim_many(s, reps[0].id, [(items[70].id, seen[items[70].id])], now) is None  # full: put back
    s.refresh(items[70])
    assert (items[70].state, items[70].version) == (WorkItemState.OPEN, seen[items[70].id])
    if s.get_bind().dialect.name == "postgresql":
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND pid = pg_backend_pid()"
        assert s.execute(text(held)).scalar() == 1
    for rep in reps:
        s.refresh(rep)
        assert rep.open_items == 1


@pytest.mark.parametrize(
    "case, capacity, open_items, presence, gone, expected",
    [
        # The rep has room for all three asked; one is gone: the place taken for it is given back.
        ("room for all, one gone", 3, 0, Presence.AVAILABLE, 1, "two"),
        # Every item gone, the rep with room: nothing changes, "last assigned" included.
        ("room for all, all gone", 3, 0, Presence.AVAILABLE, 3, "none"),
        # Room for one only: not for the three asked, nor for the two still open.
        ("room for one, one gone", 2, 1, Presence.AVAILABLE, 1, "full"),
        # The rep left and every item is gone.
        ("rep away, all gone", 3, 0, Presence.OFFLINE, 3, "none"),
    ],
)
def test_a_claim_that_falls_short_is_undone_exactly(
    s, now, make_worker, make_item, case, capacity, open_items, presence, gone, expected
):
    """However a claim falls short, what it keeps is exactly what still holds, and every write
    it made for the rest is reversed: the rep's places and "last assigned", the items' state
    and version, the audit rows."""
    from types import SimpleNamespace

    from handoff.core.routing.claims import assignment_event
    from handoff.core.routing.claims import claim_many

    earlier = now - timedelta(hours=3)
    ann = make_worker("ann", {"order-approval": 3}, capacity=capacity, open_items=open_items, presence=presence)
    ann.last_assigned_at = earlier
    items = [make_item() for _ in range(3)]
    for it in items[:gone]:
        it.state = WorkItemState.COMPLETED
    s.flush()
    seen = {it.id: it.version for it in items}
    rep = SimpleNamespace(id=ann.id, extra={"name": "ann"})
    events = [assignment_event(it.id, rep, "test") for it in items]
    taken = claim_many(s, ann.id, [(it.id, seen[it.id]) for it in items], now, events)
    open_ids = [it.id for it in items[gone:]]
    kept = {"two": open_ids, "none": [], "full": None}[expected]
    assert taken == kept, case
    s.refresh(ann)
    places = len(kept or [])
    assert ann.open_items == open_items + places
    assert ann.last_assigned_at == (now if places else earlier)
    for it in items:
        s.refresh(it)
        mine = it.id in (kept or [])
        assert [audit_actions(s, it.id)] == [["assigned"] if mine else []]
        if it.id in open_ids:
            assert (it.state, it.assignee_id) == (
                (WorkItemState.ASSIGNED, ann.id) if mine else (WorkItemState.OPEN, None)
            )
            assert it.version == seen[it.id] + (1 if mine else 0)


def test_claim_many_changes_nothing_when_the_rep_has_no_room_for_them_all(s, now, make_worker, make_item):
    from handoff.core.routing.claims import claim_many

    ann = make_worker("ann", {"order-approval": 3}, capacity=2, open_items=1)
    a, b = make_item(), make_item()
    seen = {a.id: a.version, b.id: b.version}
    assert claim_many(s, ann.id, [(a.id, a.version), (b.id, b.version)], now) is None
    for it in (a, b):
        s.refresh(it)
        assert it.state == WorkItemState.OPEN and it.assignee_id is None and it.version == seen[it.id]
    s.refresh(ann)
    assert ann.open_items == 1


def test_a_rep_with_several_places_is_filled_in_one_call_in_the_policys_order(s, now, make_worker, make_item):
    items = [make_item(due_in=timedelta(hours=h)) for h in (30, 2, 9, 1, 50)]
    ann = make_worker("ann", {"order-approval": 3}, capacity=3)
    taken = router.route_for_worker(s, ann.id, now)
    assert [a.item_id for a in taken] == [items[3].id, items[1].id, items[2].id]  # most urgent first
    s.refresh(ann)
    assert ann.open_items == 3
    assert [audit_actions(s, a.item_id) for a in taken] == [["assigned"]] * 3


def validation_few_may_do(now, make_worker, make_item, capacity: int):
    """A validator who may do validation and leads, one more busy validator and four busy
    lead reps, all on shift; a lead and a validation due a second apart: (validator, lead,
    validation)."""
    validator = make_worker("validator", {"validation": 1, "leads": 1}, capacity=capacity)
    make_worker("v2", {"validation": 1}, capacity=1, open_items=1)
    for i in range(4):
        make_worker(f"o{i}", {"leads": 1}, capacity=1, open_items=1)  # busy, on shift
    lead = make_item({"leads": 1}, work_type="leads", created=now - timedelta(hours=1), due_in=timedelta(hours=4))
    validation = make_item(
        {"validation": 1},
        work_type="validation",
        created=now - timedelta(hours=1),
        due_in=timedelta(hours=4, seconds=1),
    )
    return validator, lead, validation


def test_the_live_router_applies_the_team_rules_the_simulator_measures(s, now, make_worker, make_item):
    """Work two of six reps on shift may do goes to one of those two before equally urgent
    shared work, live as in the policy (the live index knows the team)."""
    validator, lead, validation = validation_few_may_do(now, make_worker, make_item, capacity=1)
    taken = router.route_for_worker(s, validator.id, now)
    assert [a.item_id for a in taken] == [validation.id]
    s.refresh(lead)
    assert lead.state == WorkItemState.OPEN


def test_a_reps_worklist_ranks_their_work_as_the_router_does(s, now, make_worker, make_item):
    """The urgency a rep sees is the one that ranked their work, team rules included: with
    the validation only two of six may do and the lead anybody may do, the validator's list
    puts the validation first (by the plain score the earlier lead would lead)."""
    from handoff.core.clock import epoch
    from handoff.core.routing import live
    from handoff.core.routing.worklist import worklist

    validator, lead, validation = validation_few_may_do(now, make_worker, make_item, capacity=2)
    assert [a.item_id for a in router.route_for_worker(s, validator.id, now)] == [validation.id, lead.id]
    shown = worklist(s, "validator", now)
    assert [e.item_id for e in shown] == [validation.id, lead.id]
    assert shown[0].urgency > shown[1].urgency
    index = live.index_for(s)  # the plain score, without the team, would have put the lead first
    plain = index.scores([index.active[i].routable for i in (lead.id, validation.id)], epoch(now))
    assert plain[0] > plain[1]


def test_claim_many_counts_an_item_asked_for_twice_once_and_answers_in_the_order_asked(s, now, make_worker, make_item):
    """A repeated id must not take two places, and the ids come back in the caller's order (the
    order the policy picked them, which the audit follows)."""
    from handoff.core.routing.claims import claim_many

    ann = make_worker("ann", {"order-approval": 3}, capacity=3)
    a, b = make_item(), make_item()
    assert claim_many(s, ann.id, [(b.id, b.version), (a.id, a.version), (b.id, b.version)], now) == [b.id, a.id]
    s.refresh(ann)
    assert ann.open_items == 2
    # Nothing left to take: the rep's row is not touched (no place taken, no "last assigned").
    before = ann.last_assigned_at
    assert claim_many(s, ann.id, [(a.id, a.version)], now + timedelta(minutes=1)) == []
    s.refresh(ann)
    assert ann.open_items == 2 and ann.last_assigned_at == before


def test_claim_round_takes_each_item_on_claims_terms_and_each_rep_only_with_room_for_all_theirs(
    s, now, make_worker, make_item
):
    """A watch round's claims in batches: an item changed since it was seen stays as it is, a
    rep without room for everything the round gave them gets none of it (their items left open
    at the version seen), and the others are taken with one place each."""
    from handoff.core.routing.claims import claim_round

    ann = make_worker("ann", {"order-approval": 3}, capacity=3)
    bob = make_worker("bob", {"order-approval": 3}, capacity=2, open_items=1)
    cy = make_worker("cy", {"order-approval": 3}, capacity=3, presence=Presence.OFFLINE)
    a1, a2, stale, b1, b2, c1 = (make_item() for _ in range(6))
    seen = {it.id: it.version for it in (b1, b2, c1)}
    plan = [
        (a1.id, a1.version, ann.id),
        (a2.id, a2.version, ann.id),
        (stale.id, stale.version + 1, ann.id),  # changed since it was seen
        (b1.id, b1.version, bob.id),  # bob has one place, the round gives him two
        (b2.id, b2.version, bob.id),
        (c1.id, c1.version, cy.id),  # cy went offline
    ]
    taken, full = claim_round(s, plan, now)
    assert taken == {a1.id: ann.id, a2.id: ann.id} and full == {bob.id, cy.id}
    for w, places in ((ann, 2), (bob, 1), (cy, 0)):
        s.refresh(w)
        assert w.open_items == places
    for it in (a1, a2):
        s.refresh(it)
        assert it.state == WorkItemState.ASSIGNED and it.assignee_id == ann.id and it.assigned_at == now
    for it in (stale, b1, b2, c1):
        s.refresh(it)
        assert it.state == WorkItemState.OPEN and it.assignee_id is None and it.assigned_at is None
    assert [it.version for it in (b1, b2, c1)] == [seen[b1.id], seen[b2.id], seen[c1.id]]


def test_claim_round_in_several_batches_gives_an_item_listed_twice_one_place(s, now, make_worker, make_item):
    """More claims than one batch holds (the last batch padded), and one item asked for twice
    for two reps: it goes to one of them and takes exactly one place."""
    from handoff.core.routing.claims import ROUND_BATCH
    from handoff.core.routing.claims import claim_round

    reps = [make_worker(f"r{k}", {"order-approval": 3}, capacity=8) for k in range(70)]
    items = [make_item() for _ in range(ROUND_BATCH + 45)]
    plan = [(it.id, it.version, reps[k % 60].id) for k, it in enumerate(items)]
    twice = items[0]
    plan.append((twice.id, twice.version, reps[65].id))
    taken, full = claim_round(s, plan, now)
    assert not full and set(taken) == {it.id for it in items}
    assert taken[twice.id] in (reps[0].id, reps[65].id)
    places = {r.id: 0 for r in reps}
    for rep_id in taken.values():
        places[rep_id] += 1
    for r in reps:
        s.refresh(r)
        assert r.open_items == places[r.id]
    s.refresh(twice)
    assert twice.assignee_id == taken[twice.id] and twice.version == 1


def test_audit_rows_written_in_bulk_are_stored_exactly_as_the_orm_stores_them(s):
    """The router writes its audit rows in one statement (on PostgreSQL, the rows as one JSON
    document); what lands must be what an ORM-written row holds, to the microsecond and the
    byte of the details' JSON, whatever the text holds."""
    from sqlalchemy import text

    from handoff.core.routing.claims import record_events

    details = {"assignee": 'Zoë "the" rep\\', "urgency": 0.25, "nested": {"a": [1, None, "\n\t"]}, "why": "[/]"}
    row = dict(
        at=datetime(2026, 12, 1, 9, 30, 0, 5),
        actor="system:router",
        entity="work_item",
        entity_id="7",
        action="assigned",
        from_state=None,
        to_state="assigned",
        details=details,
    )
    s.add(AuditEvent(**row))
    s.flush()
    record_events(s, [row, row | {"at": datetime(2026, 12, 1, 9, 30), "from_state": "open"}])
    stored = s.execute(
        text("SELECT at, from_state, CAST(details AS TEXT) FROM audit_events WHERE entity_id = '7' ORDER BY id")
    ).all()
    assert len(stored) == 3 and stored[1] == stored[0]
    assert stored[2][1:] == ("open", stored[0][2])
    read = s.execute(select(AuditEvent.at, AuditEvent.details).where(AuditEvent.entity_id == "7")).all()
    assert [tuple(r) for r in read] == [(row["at"], details)] * 2 + [(datetime(2026, 12, 1, 9, 30), details)]
