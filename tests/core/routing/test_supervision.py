"""The supervisor's view of the team's work and hand-over of an item (handoff.core.supervision)."""

from __future__ import annotations

from datetime import timedelta

from handoff.core.models import WorkItemState
from handoff.core.routing import router
from handoff.core.supervision import reassign_item
from handoff.core.supervision import team_items


def test_the_team_view_lists_active_work_most_urgent_first_with_who_holds_it(s, now, make_worker, make_item):
    make_worker("ann", {"order-approval": 3}, capacity=1)
    later = make_item(due_in=timedelta(days=3), title="later")
    soon = make_item(due_in=timedelta(hours=1), title="soon")
    assert router.route_item(s, soon.id, now).name == "ann"
    team = team_items(s, now=now)
    assert [t.item_id for t in team] == [soon.id, later.id]
    assert {t.item_id: (t.state, t.assignee) for t in team} == {
        soon.id: (str(WorkItemState.ASSIGNED), "ann"),
        later.id: (str(WorkItemState.OPEN), None),
    }
    assert team[0].urgency > team[1].urgency
    assert [t.item_id for t in team_items(s, limit=1, now=now)] == [soon.id]


def test_a_supervisor_hands_an_assigned_item_to_another_rep(s, now, make_worker, make_item):
    make_worker("sue", {}, role="supervisor")
    make_worker("ann", {"order-approval": 3})
    it = make_item()
    assert router.route_item(s, it.id, now).name == "ann"
    bob = make_worker("bob", {"order-approval": 3})
    moved_to = reassign_item(s, it.id, "bob", by="sue", reason="ann is at the dentist", now=now)
    assert moved_to.id == bob.id
    s.refresh(it)
    assert it.state == WorkItemState.ASSIGNED and it.assignee_id == bob.id


def test_a_hand_over_to_a_rep_off_shift_is_refused_not_undone_a_minute_later(s, now, make_worker, make_item):
    """The claim checks presence, not the shift: a hand-over to an "available" rep outside
    their hours was accepted and shown as done, and the next watch round took the item back
    ("off shift") and routed it elsewhere. It is refused, saying why; the item stays."""
    import pytest

    from handoff.core.supervision import CannotReassign

    make_worker("sue", {}, role="supervisor")
    make_worker("ann", {"order-approval": 3})
    it = make_item()
    assert router.route_item(s, it.id, now).name == "ann"
    off_hours = f"{(now.hour + 2) % 24:02d}:00", f"{(now.hour + 3) % 24:02d}:00"
    make_worker("bob", {"order-approval": 3}, shift_start=off_hours[0], shift_end=off_hours[1], work_days="0123456")
    with pytest.raises(CannotReassign, match="bob is off shift now"):
        reassign_item(s, it.id, "bob", by="sue", reason="ann is at the dentist", now=now)
    s.refresh(it)
    assert it.state == WorkItemState.ASSIGNED and it.assignee.name == "ann"


def test_an_item_id_no_database_holds_is_one_that_does_not_exist(s, now, make_worker):
    """Ids past PostgreSQL's 32-bit ids (and past SQLite's 64) are not asked about: asking
    fails outright on either database (a 500 in the worklist, a traceback in the CLI)."""
    import pytest

    from handoff.core.supervision import CannotReassign

    make_worker("sue", {}, role="supervisor")
    make_worker("bob", {"order-approval": 3})
    for item_id in (2**31, 2**63, 0, -1):
        with pytest.raises(CannotReassign, match="does not exist"):
            reassign_item(s, item_id, "bob", by="sue", reason="x", now=now)
