"""What a supervisor does to the work of their team: see it, and hand an item to someone else.

There are no teams in the worker model yet: a supervisor's team is every worker, so they see
every active item. A reassignment goes through the router's own moves — the item is taken back
(`reclaim_item`) and claimed for the chosen rep by the same database-arbitrated hand-over the
router uses — so capacity stays right and two supervisors (or a supervisor and the router)
never give one item twice. Every reassignment is audited with who did it and why; a refused one changes nothing (raise
inside the caller's transaction, which rolls back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core import sla
from handoff.core.clock import as_utc_naive
from handoff.core.clock import epoch
from handoff.core.clock import on_shift
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import find_work_item
from handoff.core.models import utcnow
from handoff.core.routing import router
from handoff.core.routing.claims import claim
from handoff.core.routing.claims import one_router_at_a_time
from handoff.core.routing.eligibility import effective_requirements
from handoff.core.routing.eligibility import meets
from handoff.core.routing.live import index_for


class CannotReassign(Exception):
    """The item or the chosen rep does not allow it; the message says why."""


@dataclass(slots=True)
class TeamItem:
    item_id: int
    title: str
    work_type: str
    state: str
    assignee: str | None
    due_at: datetime
    seconds_left: float  # sla.seconds_left
    urgency: float
    escalated: bool


def team_items(s: Session, limit: int = 200, now: datetime | None = None) -> list[TeamItem]:
    """The team's active items (open, assigned, started), the `limit` most urgent by the score the
    router ranks by (the live index's, as in a rep's worklist). Read as plain columns and scored in
    one vectorised pass, so a floor of 10,000 items costs no ORM object each."""
    now = as_utc_naive(now or utcnow())
    s.flush()
    index = index_for(s)
    with index.session_view(s, now):
        rows = list(index.active.values())  # open, assigned and started, as the router sees them
        if not rows:
            return []
        scores = index.scores([r.routable for r in rows], epoch(now))
    top = [rows[i].id for i in np.argsort(-scores, kind="stable")[:limit]]
    score_of = {r.id: float(sc) for r, sc in zip(rows, scores, strict=True)}
    items = {it.id: it for it in s.scalars(select(WorkItem).where(WorkItem.id.in_(top)))}
    names: dict[int | None, str] = dict(s.execute(select(Worker.id, Worker.name)).all())
    return [
        TeamItem(
            it.id,
            it.title,
            it.work_type,
            str(it.state),
            names.get(it.assignee_id),
            it.due_at,
            sla.seconds_left(now, it.due_at),
            score_of[it.id],
            it.escalated,
        )
        for it in (items[i] for i in top)
    ]


def reassign_item(s: Session, item_id: int, to: str, by: str, reason: str, now: datetime | None = None) -> Worker:
    """Hand an open or assigned (not started) item to the named rep; audited."""
    now = as_utc_naive(now or utcnow())
    supervisor = s.scalar(select(Worker).where(Worker.name == by))
    if supervisor is None or supervisor.role != "supervisor":
        raise CannotReassign(f"only a supervisor may reassign work, not {by}")
    if not reason.strip():
        raise CannotReassign("say why the item changes hands")
    item = find_work_item(s, item_id, populate_existing=True)
    if item is None:
        raise CannotReassign(f"work item {item_id} does not exist")
    target = s.scalar(select(Worker).where(Worker.name == to))
    if target is None:
        raise CannotReassign(f"no worker named {to!r}")
    if item.assignee_id == target.id:
        raise CannotReassign(f"work item {item_id} is already with {to}")
    if item.state == WorkItemState.STARTED:
        raise CannotReassign(f"work item {item_id} is started by its rep; it stays with them")
    if item.state not in (WorkItemState.OPEN, WorkItemState.ASSIGNED):
        raise CannotReassign(f"work item {item_id} is {item.state}; only open or assigned work changes hands")
    needed = effective_requirements(item.required_skills or {}, bool(item.escalated))
    if not meets(target.skill_levels, needed):
        raise CannotReassign(f"{to} lacks the skills work item {item_id} needs ({needed})")
    if not on_shift(target, now):  # accepted, the next watch round took it back ("off shift") within a minute
        raise CannotReassign(
            f"{to} is off shift now ({target.shift_start}–{target.shift_end} {target.timezone}); "
            f"work item {item_id} stays with {item.assignee.name if item.assignee else 'the router'}"
        )
    before = item.assignee.name if item.assignee else None
    one_router_at_a_time(s)  # a hand-over is routing: it takes the router's turn, as a decision does
    if item.state == WorkItemState.ASSIGNED and not router.reclaim_item(s, item_id, f"reassigned by {by}", now):
        raise CannotReassign(f"work item {item_id} changed meanwhile; look again")
    item = s.get(WorkItem, item_id, populate_existing=True)
    if item is None:
        raise CannotReassign(f"work item {item_id} was deleted meanwhile")
    taken = claim(s, item.id, item.version, target.id, now)  # the router's arbitrated hand-over
    if taken is not router.Claim.TAKEN:  # raising rolls the caller's transaction back: nothing moved
        why = "has no spare capacity or is not available" if taken is router.Claim.REP_FULL else "lost the race for it"
        raise CannotReassign(f"{to} {why}; work item {item_id} stays with {before or 'the router'}")
    audit.record(
        s,
        by,
        "work_item",
        item_id,
        "reassigned",
        str(item.state),
        "assigned",
        from_worker=before,
        to_worker=to,
        reason=reason,
    )
    moved_to = s.get(Worker, target.id, populate_existing=True)
    if moved_to is None:
        raise CannotReassign(f"{to} was deleted meanwhile")
    return moved_to


__all__ = ["CannotReassign", "TeamItem", "reassign_item", "team_items"]
