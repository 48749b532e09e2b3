"""The router as it was before the live index (commit d471f30): every decision re-reads rows.

Kept only so bench_routing.py can run the read-per-decision path beside the indexed one on the
same data in the same run. Same claims, same audit rows, same policy, and item rows decoded by
the live index's own readmodel.item_rows; only the reads differ (what is read, and how often).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core.clock import as_utc_naive
from handoff.core.clock import epoch
from handoff.core.clock import on_shift
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing.claims import Claim
from handoff.core.routing.claims import claim
from handoff.core.routing.claims import one_router_at_a_time
from handoff.core.routing.claims import record_assignment
from handoff.core.routing.eligibility import effective_requirements
from handoff.core.routing.eligibility import meets
from handoff.core.routing.index import RoutingIndex
from handoff.core.routing.live import POLICY
from handoff.core.routing.readmodel import as_routable_item
from handoff.core.routing.readmodel import as_routable_rep
from handoff.core.routing.readmodel import item_rows
from handoff.core.routing.readmodel import items_where
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep
from handoff.core.routing.urgency import MIN_EFFORT


@dataclass(slots=True)
class ShiftRow:
    timezone: str
    shift_start: str
    shift_end: str
    work_days: str


@dataclass(slots=True)
class ItemKind:
    stored: str | None
    escalated: bool
    required: dict[str, int]
    count: int
    floored_effort: float


def _stored_requirements():
    return cast(WorkItem.required_skills, Text)


def open_item_kinds(s: Session) -> list[ItemKind]:
    s.flush()
    effort = case((WorkItem.effort_seconds < MIN_EFFORT, MIN_EFFORT), else_=WorkItem.effort_seconds)
    rows = (
        s.connection()
        .execute(
            select(_stored_requirements(), WorkItem.escalated, func.count(), func.sum(effort))
            .where(WorkItem.state == WorkItemState.OPEN)
            .group_by(_stored_requirements(), WorkItem.escalated)
        )
        .all()
    )
    return [
        ItemKind(
            raw,
            bool(esc),
            effective_requirements((json.loads(raw) if raw else None) or {}, bool(esc)),
            n,
            float(total or 0.0),
        )
        for raw, esc, n, total in rows
    ]


def open_items(s: Session, kinds: list[ItemKind] | None = None) -> list[tuple[RoutableItem, int]]:
    """Every open item (of the given kinds), read again on every call."""
    s.flush()
    query = items_where(WorkItem.state == WorkItemState.OPEN)
    if kinds is not None:
        if not kinds:
            return []
        query = query.where(
            or_(*(and_(_stored_requirements() == k.stored, WorkItem.escalated == k.escalated) for k in kinds))
        )
    return [(row.routable, row.version) for row in item_rows(s.connection(), query)]


def free_reps(s: Session, now: datetime, skills: Iterable[str] | None = None) -> list[RoutableRep]:
    query = (
        select(
            Worker.id,
            Worker.name,
            Worker.capacity,
            Worker.open_items,
            Worker.last_assigned_at,
            Worker.timezone,
            Worker.shift_start,
            Worker.shift_end,
            Worker.work_days,
            WorkerSkill.skill,
            WorkerSkill.level,
        )
        .outerjoin(WorkerSkill, WorkerSkill.worker_id == Worker.id)
        .where(Worker.presence == Presence.AVAILABLE, Worker.open_items < Worker.capacity)
        .order_by(Worker.id)
    )
    wanted = list(skills) if skills is not None else []
    if wanted:
        query = query.where(WorkerSkill.skill.in_(wanted))
    s.flush()
    reps: dict[int, RoutableRep] = {}
    shift_ok: dict[int, bool] = {}
    for wid, name, capacity, n_open, last, tz, start, end, days, skill, level in s.connection().execute(query):
        rep = reps.get(wid)
        if rep is None:
            shift_ok[wid] = on_shift(ShiftRow(tz, start, end, days), now)
            rep = reps[wid] = RoutableRep(str(wid), {}, capacity, n_open, True, epoch(last), {"name": name})
        if skill is not None:
            rep.skills[skill] = level
    return [rep for wid, rep in reps.items() if shift_ok[wid]]


def route_item(s: Session, item_id: int, now: datetime | None = None) -> Worker | None:
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    item = s.get(WorkItem, item_id, populate_existing=True)
    if item is None or item.state != WorkItemState.OPEN:
        return None
    routable = as_routable_item(item)
    reps = free_reps(s, now, skills=routable.required_skills)
    t = epoch(now)
    while True:
        rep = POLICY.rep_for(routable, reps, t)
        if rep is None:
            return None
        result = claim(s, item.id, item.version, int(rep.id), now)
        if result is Claim.TAKEN:
            record_assignment(s, item.id, rep, "new or released item")
            return s.get(Worker, int(rep.id))
        if result is Claim.ITEM_GONE:
            return None
        reps.remove(rep)


def rep_ready_for_work(
    s: Session, worker_id: int, now: datetime | None = None
) -> tuple[datetime, Worker, RoutableRep] | None:
    """Take the router lock, then (now as naive UTC, the worker, the rep they are now) when
    they can take work (on shift with spare capacity), else None."""
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    worker = s.get(Worker, worker_id, populate_existing=True)
    if worker is None:
        return None
    rep = as_routable_rep(worker, now)
    if not rep.available or rep.spare <= 0:
        return None
    return now, worker, rep


def route_for_worker(s: Session, worker_id: int, now: datetime | None = None) -> list[WorkItem]:
    ready = rep_ready_for_work(s, worker_id, now)
    if ready is None:
        return []
    now, worker, rep = ready
    kinds = open_item_kinds(s)
    fits = [k for k in kinds if meets(rep.skills, k.required)]
    loaded = open_items(s, fits)
    versions = {r.id: v for r, v in loaded}
    index = RoutingIndex(items=(r for r, _ in loaded), reps=[rep])
    others = [k for k in kinds if not meets(rep.skills, k.required)]
    index.items.count_also(sum(k.floored_effort for k in others), sum(k.count for k in others))
    t = epoch(now)
    taken: list[int] = []
    while rep.spare > 0:
        item = POLICY.item_for(rep, index.items, t)
        if item is None:
            break
        score = POLICY.score(item, t, index.items.mean_effort)
        index.items.remove(item.id)
        result = claim(s, int(item.id), versions[item.id], worker.id, now)
        if result is Claim.TAKEN:
            rep.open_items += 1
            record_assignment(s, int(item.id), rep, "rep has spare capacity", score)
            taken.append(int(item.id))
        elif result is Claim.REP_FULL:
            break
    return [s.get(WorkItem, i, populate_existing=True) for i in taken]
