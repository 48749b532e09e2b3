"""The SLA watch: the minute-by-minute re-evaluation that keeps pushed work moving.

Four steps, in this order (flows/sla_watch.py runs each as a Prefect task; tests call them
directly):

1. `rescore`                    urgency changes with the clock: re-score every open item.
2. `escalate_near_breach`       items with < 20 % of their SLA window (or < 1 business hour)
                                left are escalated once: flagged, a supervisor is named in the
                                audit trail, and their pool widens to one skill level lower.
3. `reclaim_from_absent_reps`   assigned-but-not-started items of reps who are offline, off
                                shift, or away for more than AWAY_GRACE go back to routing and
                                are re-routed at once.
4. `route_waiting_work`         every open item that now has an eligible free rep gets one.

"Left" is business time (handoff.core.sla's clock), so a Friday-evening item is not escalated
over the weekend.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import ARRAY
from sqlalchemy import BigInteger
from sqlalchemy import any_
from sqlalchemy import bindparam
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from handoff.core import sla
from handoff.core.clock import as_utc_naive
from handoff.core.clock import epoch
from handoff.core.clock import on_shift
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing.assign import Assignment
from handoff.core.routing.assign import route_item
from handoff.core.routing.assign import route_open_items
from handoff.core.routing.changes import COUNTER_NOW
from handoff.core.routing.changes import stamp_in_bulk
from handoff.core.routing.claims import expire
from handoff.core.routing.claims import one_router_at_a_time
from handoff.core.routing.claims import record_events
from handoff.core.routing.eligibility import effective_requirements
from handoff.core.routing.eligibility import meets
from handoff.core.routing.lifecycle import reclaim_item
from handoff.core.routing.live import index_for
from handoff.core.routing.readmodel import WorkerRow

WATCH = "system:sla-watch"
NEAR_BREACH_FRACTION = 0.2  # escalate with less than this share of the SLA window left...
NEAR_BREACH_SECONDS = 3600.0  # ...or less than one business hour (capped at half the window)
AWAY_GRACE = timedelta(minutes=30)  # "away" is a break; after this it counts as gone


@dataclass(slots=True)
class Rescore:
    open_items: int
    overdue: int
    top: list[tuple[int, float]]  # (item id, urgency), most urgent first


@dataclass(slots=True)
class Escalation:
    item_id: int
    work_type: str
    title: str
    order_id: str | None
    state: str
    supervisor: str | None
    due_at: datetime
    business_seconds_left: float
    widened_to: dict[str, int]


@dataclass(slots=True)
class Reclaim:
    item_id: int
    from_worker: str
    reason: str
    rerouted_to: str | None


@dataclass(slots=True)
class WatchReport:
    rescore: Rescore
    escalations: list[Escalation] = field(default_factory=list)
    reclaims: list[Reclaim] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)


# --- 1. re-score ----------------------------------------------------------------------------


def rescore(s: Session, now: datetime | None = None, top: int = 10) -> Rescore:
    """Urgency of every open item at `now`, as the router ranks it (the live index's columns,
    vectorised); the most urgent few are reported."""
    now = as_utc_naive(now or utcnow())
    t = epoch(now)
    index = index_for(s)
    with index.session_view(s, now):
        if not len(index.items):
            return Rescore(0, 0, [])
        slots, scores = index.open_scores(t)
        due = index.items.columns.due_at[slots]
        best = np.argpartition(-scores, top - 1)[:top] if scores.size > top else np.arange(scores.size)
        best = best[np.lexsort((due[best], -scores[best]))]
        return Rescore(
            open_items=int(scores.size),
            overdue=int((due < t).sum()),
            top=[(int(index.items.item_at(int(slots[i])).id), float(scores[i])) for i in best],
        )


# --- 2. escalate ----------------------------------------------------------------------------


def breach_margin(created_at: datetime, due_at: datetime, now: datetime) -> tuple[float, float]:
    """(business seconds left, the threshold at which the item counts as near breach). The
    window is the item's own created->due span in business time."""
    clock = sla.clock()
    left = clock.seconds_between(now, due_at)
    window = clock.seconds_between(created_at, due_at)
    return left, max(NEAR_BREACH_FRACTION * window, min(NEAR_BREACH_SECONDS, 0.5 * window))


def near_breach(created_at: datetime, due_at: datetime, now: datetime) -> tuple[bool, float]:
    """(is it near breach?, business seconds left); overdue items are always near breach."""
    left, threshold = breach_margin(created_at, due_at, now)
    return (left <= threshold, left)


def pick_supervisor(supervisors: list[Worker], required: dict[str, int], now: datetime) -> Worker | None:
    """The supervisor to notify: one at work now before one who is not, one who knows the
    work before one who does not, then by name (stable)."""
    if not supervisors:
        return None

    def key(w: Worker) -> tuple:
        at_work = w.presence == Presence.AVAILABLE and on_shift(w, now)
        return (not at_work, not meets(w.skill_levels, required), w.name)

    return min(supervisors, key=key)


def _near_breach_candidates(s: Session, now: datetime) -> list[tuple[int, float]]:
    """(item id, business seconds left) of the active, not yet escalated items near breach.

    Business time never runs faster than the wall clock, so an item with `left - threshold`
    business seconds to spare cannot be near breach for at least that much wall time: the
    live index remembers when to look again, and a round only checks the items due a look
    (all of them once; afterwards the few whose time has come). The memory is dropped when
    the SLA configuration (the business clock) changes or the item's times do. Business time
    is counted for all of them at once (`BusinessClock.seconds_between_many`): a first round
    over 10,000 items walked the calendar day by day for each, a second of CPU."""
    t = epoch(now)
    index = index_for(s)
    found: list[tuple[int, float]] = []
    with index.session_view(s, now):
        clock = sla.clock()
        if index.recheck_clock is not clock:
            index.recheck_at.clear()
            index.recheck_clock = clock
        recheck = index.recheck_at
        due_a_look = [r for r in index.active.values() if not r.escalated and recheck.get(r.id, 0.0) <= t]
        if not due_a_look:
            return found
        created = np.fromiter((r.routable.created_at for r in due_a_look), float, len(due_a_look))
        due = np.fromiter((r.routable.due_at for r in due_a_look), float, len(due_a_look))
        ids = np.fromiter((r.id for r in due_a_look), np.int64, len(due_a_look))
        left = clock.seconds_between_many(np.full(due.size, t), due)
        window = clock.seconds_between_many(created, due)
        threshold = np.maximum(NEAR_BREACH_FRACTION * window, np.minimum(NEAR_BREACH_SECONDS, 0.5 * window))
        near = left <= threshold
        later = ~near
        recheck.update(zip(ids[later].tolist(), (t + (left[later] - threshold[later])).tolist()))
        first = np.flatnonzero(near)
        first = first[np.lexsort((ids[first], due[first]))]  # the soonest due first
        found.extend(zip(ids[first].tolist(), left[first].tolist()))
    return found


def escalate_near_breach(s: Session, now: datetime | None = None) -> list[Escalation]:
    """Escalate, once each, the active items close to breaching their SLA."""
    now = as_utc_naive(now or utcnow())
    one_router_at_a_time(s)
    candidates = _near_breach_candidates(s, now)
    if not candidates:
        return []
    left_of = dict(candidates)
    # Flag them conditionally, in one statement, so two watchers never escalate (and notify)
    # twice; what the escalation reports comes back from the same statement (no ORM objects:
    # a first round over a large backlog escalates thousands). On PostgreSQL the ids go as
    # one array: as thousands of parameters psycopg parsed them out of the text each time.
    ids = list(left_of)
    if s.get_bind().dialect.name == "postgresql":
        chosen = WorkItem.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
    else:
        chosen = WorkItem.id.in_(ids)
    stamp: dict[str, Any] = {"change_seq": literal_column(COUNTER_NOW)} if stamp_in_bulk(s.connection()) else {}
    flagged = {
        row.id: row
        for row in s.execute(
            update(WorkItem)
            .where(chosen, WorkItem.escalated.is_(False))
            .values(escalated=True, **stamp)
            .returning(
                WorkItem.id,
                WorkItem.work_type,
                WorkItem.title,
                WorkItem.order_id,
                WorkItem.state,
                WorkItem.due_at,
                WorkItem.required_skills,
            )
            .execution_options(synchronize_session=False)
        )
    }
    if not flagged:
        return []
    if s.identity_map:  # the session may hold some of them: re-read, now escalated
        for item_id in flagged:
            expire(s, WorkItem, item_id)
    supervisors = list(s.scalars(select(Worker).where(Worker.role == "supervisor")))
    escalations: list[Escalation] = []
    events: list[dict] = []
    for item_id, left in candidates:
        item = flagged.get(item_id)
        if item is None:
            continue
        supervisor = pick_supervisor(supervisors, item.required_skills, now)
        widened = effective_requirements(item.required_skills, escalated=True)
        events.append(
            dict(
                at=utcnow(),
                actor=WATCH,
                entity="work_item",
                entity_id=str(item.id),
                action="escalated",
                from_state=str(item.state),
                to_state=str(item.state),
                details=dict(
                    supervisor=supervisor.name if supervisor else None,
                    business_seconds_left=round(left),
                    due_at=item.due_at.isoformat(),
                    widened_to=widened,
                ),
            )
        )
        escalations.append(
            Escalation(
                item_id=item.id,
                work_type=item.work_type,
                title=item.title,
                order_id=item.order_id,
                state=str(item.state),
                supervisor=supervisor.name if supervisor else None,
                due_at=item.due_at,
                business_seconds_left=left,
                widened_to=widened,
            )
        )
    record_events(s, events)
    return escalations


# --- 3. reclaim -----------------------------------------------------------------------------


def absence_reason(worker: Worker | WorkerRow, now: datetime) -> str | None:
    """Why this worker should not hold not-started work now, or None if they may."""
    if worker.presence == Presence.OFFLINE:
        return f"{worker.name} is offline"
    if worker.presence == Presence.AWAY and now - worker.presence_changed_at > AWAY_GRACE:
        return f"{worker.name} has been away since {worker.presence_changed_at:%H:%M} UTC"
    if not on_shift(worker, now):
        return f"{worker.name} is off shift"
    return None


def reclaim_from_absent_reps(s: Session, now: datetime | None = None) -> list[Reclaim]:
    """Take back not-started items from reps who are not at work, and re-route them now."""
    now = as_utc_naive(now or utcnow())
    one_router_at_a_time(s)
    index = index_for(s)
    held: list[tuple[float, int, str, str]] = []
    with index.session_view(s, now):
        for worker_id, item_ids in index.held.items():
            worker = index.workers.get(worker_id)
            if not item_ids or worker is None:
                continue
            reason = absence_reason(worker, now)
            if reason is None:
                continue
            for item_id in item_ids:
                row = index.active.get(item_id)
                if row is not None and row.state == WorkItemState.ASSIGNED:
                    held.append((row.routable.due_at, item_id, worker.name, reason))
    reclaimed = [
        (item_id, name, reason) for _, item_id, name, reason in sorted(held) if reclaim_item(s, item_id, reason, now)
    ]
    result = []
    for item_id, name, reason in reclaimed:
        rep = route_item(s, item_id, now)
        result.append(Reclaim(item_id, name, reason, rep.name if rep else None))
    return result


# --- 4. route -------------------------------------------------------------------------------


def route_waiting_work(s: Session, now: datetime | None = None) -> list[Assignment]:
    """Every open item that now has an eligible free rep gets one, most urgent first."""
    return route_open_items(s, now)


def watch_cycle(s: Session, now: datetime | None = None) -> WatchReport:
    """One full sla-watch cycle in one transaction (the flow runs the steps separately)."""
    now = as_utc_naive(now or utcnow())
    report = WatchReport(rescore=rescore(s, now))
    report.escalations = escalate_near_breach(s, now)
    report.reclaims = reclaim_from_absent_reps(s, now)
    report.assignments = route_waiting_work(s, now)
    return report


def reassigned_since(s: Session, since: datetime) -> list[int]:
    """Items assigned (or re-assigned) since `since` that still wait on a flow run."""
    from handoff.core.models import AuditEvent

    ids = s.scalars(
        select(AuditEvent.entity_id)
        .where(AuditEvent.entity == "work_item", AuditEvent.action == "assigned", AuditEvent.at >= since)
        .distinct()
    ).all()
    if not ids:
        return []
    return list(
        s.scalars(
            select(WorkItem.id).where(
                WorkItem.id.in_([int(i) for i in ids]),
                WorkItem.state == WorkItemState.ASSIGNED,
                WorkItem.flow_run_id.is_not(None),
            )
        )
    )
