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
