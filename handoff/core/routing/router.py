"""The live router: pushes open work items to reps, backed by the database.

Who gets what is decided by the push policy (policy.py: urgency orders the work, the
least over-qualified free rep gets it); this module turns decisions into database changes:

- `route_item`         an item was created (or released): give it to the best eligible rep now.
- `route_for_worker`   a rep freed capacity or came online: give them the most urgent items
                       they may do, until they are full.
- `route_open_items`   every open item that has an eligible free rep gets one, most urgent first
                       (sla-watch runs this every minute).
- `complete_item`      close an item for the person who did it, free the capacity, refill it.
- `start_item`         the assignee has begun; the item is no longer reclaimed if they leave.
- `set_presence`       available / away / offline; going offline hands back not-started work.
- `reclaim_item`       take a not-started item back from its rep and make it open again.

Nobody gets an item twice, however many routers run: every hand-over is a conditional UPDATE
that the *database* arbitrates (`state='open' AND version=?` on the item, `open_items <
capacity` on the rep) and whose row count says who won. Losers simply try the next choice. No
in-process lock is involved, so this holds across processes and machines (SQLite serialises
writers; PostgreSQL row locks re-check the WHERE clause after the winner commits).

"Available now" = presence available and inside the worker's shift (their time zone, shift
hours and work days). Supervisors are routed work like anyone else with spare capacity; being
the most skilled, the least-over-qualified rule keeps them for the work only they can do
(set a supervisor's capacity to 0 to keep them out of routing entirely).

Every change writes an AuditEvent. Datetimes are naive UTC, as stored.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

import numpy as np
from sqlalchemy import Text, and_, case, cast, func, or_, select, text, type_coerce, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from handoff.core import audit
from handoff.core.models import Presence, WorkItem, WorkItemState, Worker, WorkerSkill, utcnow
from handoff.core.routing.eligibility import as_utc_naive, effective_requirements, meets, on_shift
from handoff.core.routing.index import RoutingIndex
from handoff.core.routing.policy import PushPolicy, RoutableItem, RoutableRep
from handoff.core.routing.urgency import MIN_EFFORT

ROUTER = "system:router"
ROUTING_LOCK = 0x68616E64  # "hand": the PostgreSQL advisory lock routing transactions take turns on
ACTIVE = (WorkItemState.OPEN, WorkItemState.ASSIGNED, WorkItemState.STARTED)
POLICY = PushPolicy()


class NotAllowed(Exception):
    """Someone tried to complete a step that is not theirs."""


class UnknownWorker(LookupError):
    """No worker by that name."""


# --- translating rows into what the policy sees -----------------------------------------


_EPOCH = datetime(1970, 1, 1)


def epoch(dt: datetime | None) -> float:
    """Naive-UTC datetime -> epoch seconds (the policies' clock); None -> 0 (never)."""
    if dt is None:
        return 0.0
    if dt.tzinfo is not None:
        dt = as_utc_naive(dt)
    return (dt - _EPOCH).total_seconds()


def available_now(worker: Worker, now: datetime) -> bool:
    """May this worker receive work at `now`? (presence and shift)"""
    return worker.presence == Presence.AVAILABLE and on_shift(worker, now)


def as_routable_rep(worker: Worker, now: datetime) -> RoutableRep:
    return RoutableRep(
        id=str(worker.id),
        skills=worker.skill_levels,
        capacity=worker.capacity,
        open_items=worker.open_items,
        available=available_now(worker, now),
        last_assigned_at=epoch(worker.last_assigned_at),
        extra={"name": worker.name},
    )


@dataclass(slots=True)
class OpenItem:
    """An open item as loaded for routing: what the policy sees, plus the row version."""

    routable: RoutableItem
    version: int


def as_routable_item(item: WorkItem) -> RoutableItem:
    """What the policy sees of an item. Escalated items ask for one skill level less."""
    return RoutableItem(
        id=str(item.id),
        work_type=item.work_type,
        required_skills=effective_requirements(item.required_skills or {}, bool(item.escalated)),
        created_at=epoch(item.created_at),
        due_at=epoch(item.due_at),
        effort_seconds=item.effort_seconds,
        priority=item.priority,
        value=item.value,
    )


def _stored_epoch(value: str | datetime) -> float:
    """A stored timestamp read raw (SQLite gives ISO text; parsing it in C is much cheaper
    than the ORM's per-value conversion) -> epoch seconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return epoch(value)


@dataclass(slots=True)
class ItemKind:
    """Open items that share a requirement (as stored) and escalation: there are few kinds."""

    stored: str | None  # the requirement as its stored text
    escalated: bool
    required: dict[str, int]  # what a rep must hold (one level less when escalated)
    count: int
    floored_effort: float  # the kind's summed effort, each at least MIN_EFFORT (urgency's p_bar)


def _stored_requirements():  # noqa: ANN202
    return cast(WorkItem.required_skills, Text)


def open_item_kinds(s: Session) -> list[ItemKind]:
    s.flush()
    effort = case((WorkItem.effort_seconds < MIN_EFFORT, MIN_EFFORT), else_=WorkItem.effort_seconds)
    rows = s.connection().execute(
        select(_stored_requirements(), WorkItem.escalated, func.count(), func.sum(effort))
        .where(WorkItem.state == WorkItemState.OPEN)
        .group_by(_stored_requirements(), WorkItem.escalated)).all()
    return [ItemKind(raw, bool(escalated),
                     effective_requirements((json.loads(raw) if raw else None) or {}, bool(escalated)),
                     n, float(total or 0.0))
            for raw, escalated, n, total in rows]


def open_items(s: Session, kinds: list[ItemKind] | None = None) -> list[OpenItem]:
    """Every open item (with `kinds`, only the items of those kinds), read as plain columns:
    thousands of rows must not cost an ORM object each. Requirements are read as stored text and
    decoded once per distinct value (items of one kind share them)."""
    s.flush()  # plain-column reads bypass autoflush: make pending changes visible first
    query = select(
        WorkItem.id, WorkItem.work_type, type_coerce(WorkItem.required_skills, Text),
        type_coerce(WorkItem.created_at, Text), type_coerce(WorkItem.due_at, Text), WorkItem.effort_seconds,
        WorkItem.priority, WorkItem.value, WorkItem.escalated, WorkItem.version,
    ).where(WorkItem.state == WorkItemState.OPEN)
    if kinds is not None:
        if not kinds:
            return []
        query = query.where(or_(*(and_(_stored_requirements() == k.stored, WorkItem.escalated == k.escalated)
                                  for k in kinds)))
    rows = s.connection().execute(query).all()
    decoded: dict[tuple[str, bool], dict[str, int]] = {}
    out = []
    for item_id, work_type, raw, created, due, effort, priority, value, escalated, version in rows:
        key = (raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True), bool(escalated))
        required = decoded.get(key)
        if required is None:
            loaded = json.loads(raw) if isinstance(raw, str) else raw
            required = decoded[key] = effective_requirements(loaded or {}, bool(escalated))
        out.append(OpenItem(
            RoutableItem(str(item_id), work_type, required, _stored_epoch(created), _stored_epoch(due),
                         effort, priority, value),
            version,
        ))
    return out


def free_reps(s: Session, now: datetime, skills: Iterable[str] | None = None) -> list[RoutableRep]:
    """Workers available now with spare capacity, read as plain columns.

    With `skills`, only workers holding at least one of them are read, and only those skills
    (all a decision about an item with those requirements looks at)."""
    query = (
        select(
            Worker.id, Worker.name, Worker.capacity, Worker.open_items, Worker.last_assigned_at,
            Worker.timezone, Worker.shift_start, Worker.shift_end, Worker.work_days,
            WorkerSkill.skill, WorkerSkill.level,
        )
        .outerjoin(WorkerSkill, WorkerSkill.worker_id == Worker.id)
        .where(Worker.presence == Presence.AVAILABLE, Worker.open_items < Worker.capacity)
        .order_by(Worker.id)
    )
    wanted = list(skills) if skills is not None else []
    if wanted:  # an item with no requirements may go to anyone: read everybody
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


@dataclass(slots=True)
class ShiftRow:
    timezone: str
    shift_start: str
    shift_end: str
    work_days: str


# --- the hand-over, arbitrated by the database ---------------------------------------------


class Claim(enum.Enum):
    TAKEN = "taken"
    ITEM_GONE = "item-gone"  # another router (or a completion) got there first
    REP_FULL = "rep-full"  # the rep filled up meanwhile


def one_router_at_a_time(s: Session) -> None:
    """Routing transactions take turns (PostgreSQL: a transaction-scoped advisory lock).

    Why: a routing transaction locks an item and a rep, then often more of both, in an order
    that depends on urgency; two at once (sla-watch's batch and an order entry routing its new
    item) lock the same rows in opposite orders and deadlock, and PostgreSQL aborts one of them
    (found by tests/core/routing/test_routing_concurrency.py on PostgreSQL). Each takes milliseconds,
    so taking turns costs nothing a back office notices. SQLite already has one writer at a time.
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROUTING_LOCK})


def _expire(s: Session, cls: type, pk: int) -> None:
    """Our UPDATEs bypass the identity map; make the session re-read what it holds."""
    obj = s.identity_map.get(identity_key(cls, pk))
    if obj is not None:
        s.expire(obj)


def _claim(s: Session, item_id: int, version: int, worker_id: int, now: datetime) -> Claim:
    """Assign atomically: the item must still be open at this version and the rep must still
    have room and be available. Both UPDATEs run in the caller's transaction."""
    took_item = s.execute(
        update(WorkItem)
        .where(WorkItem.id == item_id, WorkItem.state == WorkItemState.OPEN, WorkItem.version == version)
        .values(state=WorkItemState.ASSIGNED, assignee_id=worker_id, assigned_at=now, version=WorkItem.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not took_item:
        return Claim.ITEM_GONE
    took_room = s.execute(
        update(Worker)
        .where(Worker.id == worker_id, Worker.open_items < Worker.capacity, Worker.presence == Presence.AVAILABLE)
        .values(open_items=Worker.open_items + 1, last_assigned_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not took_room:
        # Put the item back exactly as it was (same version): this transaction has not
        # committed, so nobody else saw it assigned, and the caller may try the next rep.
        s.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id)
            .values(state=WorkItemState.OPEN, assignee_id=None, assigned_at=None, version=WorkItem.version - 1)
            .execution_options(synchronize_session=False)
        )
        _expire(s, WorkItem, item_id)
        return Claim.REP_FULL
    _expire(s, WorkItem, item_id)
    _expire(s, Worker, worker_id)
    return Claim.TAKEN


def _record_assignment(s: Session, item_id: int, rep: RoutableRep, why: str, score: float | None = None) -> None:
    details: dict = {"assignee": rep.extra.get("name", rep.id), "why": why}
    if score is not None:
        details["urgency"] = round(score, 4)
    audit.record(s, ROUTER, "work_item", item_id, "assigned", "open", "assigned", **details)


# --- routing --------------------------------------------------------------------------------


def route_item(s: Session, item_id: int, now: datetime | None = None) -> Worker | None:
    """Push one open item to the best eligible rep now; None if nobody can take it yet."""
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
        result = _claim(s, item.id, item.version, int(rep.id), now)
        if result is Claim.TAKEN:
            _record_assignment(s, item.id, rep, "new or released item")
            return s.get(Worker, int(rep.id))
        if result is Claim.ITEM_GONE:
            return None
        reps.remove(rep)


def route_for_worker(s: Session, worker_id: int, now: datetime | None = None) -> list[WorkItem]:
    """Fill a rep's spare capacity with the most urgent open items they may do."""
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    worker = s.get(Worker, worker_id, populate_existing=True)
    if worker is None:
        return []
    rep = as_routable_rep(worker, now)
    if not rep.available or rep.spare <= 0:
        return []
    # Read only the kinds of item the rep may do; the others still count in urgency's p_bar
    # (the mean effort of the whole queue), so the picks are those made over every item.
    kinds = open_item_kinds(s)
    fits = [k for k in kinds if meets(rep.skills, k.required)]
    loaded = open_items(s, fits)
    versions = {o.routable.id: o.version for o in loaded}
    index = RoutingIndex(items=(o.routable for o in loaded), reps=[rep])
    others = [k for k in kinds if not meets(rep.skills, k.required)]
    index.items.count_also(sum(k.floored_effort for k in others), sum(k.count for k in others))
    t = epoch(now)
    p_bar = index.items.mean_effort
    taken: list[int] = []
    while rep.spare > 0:
        item = POLICY.item_for(rep, index.items, t)
        if item is None:
            break
        score = POLICY.score(item, t, p_bar)
        index.items.remove(item.id)
        result = _claim(s, int(item.id), versions[item.id], worker.id, now)
        if result is Claim.TAKEN:
            rep.open_items += 1
            _record_assignment(s, int(item.id), rep, "rep has spare capacity", score)
            taken.append(int(item.id))
        elif result is Claim.REP_FULL:
            break
    return [s.get(WorkItem, i, populate_existing=True) for i in taken]


@dataclass(slots=True)
class Assignment:
    item_id: int
    worker: str
    urgency: float


def route_open_items(s: Session, now: datetime | None = None) -> list[Assignment]:
    """Give every open item that has an eligible free rep to one, most urgent first."""
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    reps = free_reps(s, now)
    if not reps:
        return []
    loaded = open_items(s)
    if not loaded:
        return []
    t = epoch(now)
    scores = POLICY.score_many(
        np.array([o.routable.priority for o in loaded]),
        np.array([o.routable.value for o in loaded]),
        np.array([o.routable.created_at for o in loaded]),
        np.array([o.routable.due_at for o in loaded]),
        np.array([o.routable.effort_seconds for o in loaded]),
        t,
    )
    index = RoutingIndex(reps=reps)
    free = sum(r.spare for r in reps)
    done: list[Assignment] = []
    for i in np.argsort(-scores, kind="stable"):
        if free <= 0:
            break
        o = loaded[int(i)]
        while (rep := POLICY.rep_for(o.routable, index.reps, t)) is not None:
            result = _claim(s, int(o.routable.id), o.version, int(rep.id), now)
            if result is Claim.TAKEN:
                rep.open_items += 1
                rep.last_assigned_at = t
                free -= 1
                _record_assignment(s, int(o.routable.id), rep, "open item, eligible rep free", float(scores[i]))
                done.append(Assignment(int(o.routable.id), rep.extra["name"], float(scores[i])))
                break
            if result is Claim.ITEM_GONE:
                break
            free -= rep.spare  # full meanwhile: take them out of this round
            rep.open_items = rep.capacity
    return done


# --- the rep's side: start, complete, presence ------------------------------------------------


def check_may_complete(s: Session, item: WorkItem, by: str) -> None:
    """Raise NotAllowed unless `by` may complete the item: its assignee, or a supervisor."""
    if item.state in (WorkItemState.COMPLETED, WorkItemState.CANCELLED):
        raise NotAllowed(f"work item {item.id} is already {item.state}; nothing to complete")
    person = s.scalar(select(Worker).where(Worker.name == by))
    if person is None:
        raise NotAllowed(f"{by!r} is not a known worker; only the assignee or a supervisor may complete work item {item.id}")
    if person.role == "supervisor":
        return
    if item.assignee_id != person.id:
        holder = s.get(Worker, item.assignee_id).name if item.assignee_id else "nobody yet"
        raise NotAllowed(
            f"work item {item.id} is assigned to {holder}; only the assignee or a supervisor "
            f"may complete it, not {by}. It stays {item.state} with {holder}."
        )


class AlreadyCompleted(NotAllowed):
    """Someone else completed the step first: who, and when."""

    def __init__(self, item: WorkItem) -> None:
        self.item_id, self.completed_by, self.completed_at = item.id, item.completed_by, item.completed_at
        when = f"{item.completed_at:%Y-%m-%d %H:%M:%S} UTC" if item.completed_at else "a moment ago"
        super().__init__(f"work item {item.id} was already completed by {item.completed_by or 'someone'} "
                         f"at {when} ({item.outcome or 'done'}); your answer was not used")


def complete_item(
    s: Session, item_id: int, by: str, outcome: str, note: str | None = None, now: datetime | None = None
) -> WorkItem:
    """Close an item for the person who did it; only its assignee or a supervisor may.

    Two completions at once: the database decides (a conditional UPDATE on the item's state and
    version); the other raises AlreadyCompleted naming who completed it and when. Frees the
    assignee's capacity and immediately routes them their next item.
    """
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    item = s.get(WorkItem, item_id, populate_existing=True)
    if item is None:
        raise NotAllowed(f"work item {item_id} does not exist")
    if item.state == WorkItemState.COMPLETED:
        raise AlreadyCompleted(item)
    check_may_complete(s, item, by)
    before, assignee_id = item.state, item.assignee_id
    done = s.execute(
        update(WorkItem)
        .where(WorkItem.id == item.id, WorkItem.version == item.version, WorkItem.state.in_(ACTIVE))
        .values(
            state=WorkItemState.COMPLETED,
            completed_at=now,
            completed_by=by,
            outcome=outcome,
            note=note,
            version=WorkItem.version + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        s.refresh(item)
        if item.state == WorkItemState.COMPLETED:
            raise AlreadyCompleted(item)
        raise NotAllowed(f"work item {item.id} changed meanwhile (now {item.state}); look again and retry")
    if assignee_id is not None:
        _release_capacity(s, assignee_id)
    audit.record(s, by, "work_item", item.id, "completed", before, "completed", outcome=outcome, note=note)
    s.refresh(item)
    if assignee_id is not None:
        route_for_worker(s, assignee_id, now)
    return item


def start_item(s: Session, item_id: int, by: str, now: datetime | None = None) -> WorkItem:
    """The assignee has begun work: the item is theirs until done, even if they go offline."""
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    item = s.get(WorkItem, item_id, populate_existing=True)
    if item is None:
        raise NotAllowed(f"work item {item_id} does not exist")
    person = s.scalar(select(Worker).where(Worker.name == by))
    if person is None or item.assignee_id != person.id or item.state != WorkItemState.ASSIGNED:
        raise NotAllowed(f"work item {item_id} is not assigned to {by} waiting to start (it is {item.state})")
    started = s.execute(
        update(WorkItem)
        .where(WorkItem.id == item.id, WorkItem.version == item.version, WorkItem.state == WorkItemState.ASSIGNED)
        .values(state=WorkItemState.STARTED, started_at=now, version=WorkItem.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not started:
        raise NotAllowed(f"work item {item_id} changed meanwhile; look again")
    audit.record(s, by, "work_item", item.id, "started", "assigned", "started")
    s.refresh(item)
    return item


def _release_capacity(s: Session, worker_id: int) -> None:
    s.execute(
        update(Worker)
        .where(Worker.id == worker_id, Worker.open_items > 0)
        .values(open_items=Worker.open_items - 1)
        .execution_options(synchronize_session=False)
    )
    _expire(s, Worker, worker_id)


def reclaim_item(s: Session, item_id: int, reason: str, now: datetime | None = None) -> bool:
    """Take an assigned, not-started item back from its rep; it becomes open again.

    False if it was started, completed or moved meanwhile (then it is left alone).
    """
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    item = s.get(WorkItem, item_id, populate_existing=True)
    if item is None or item.state != WorkItemState.ASSIGNED or item.assignee_id is None:
        return False
    holder_id = item.assignee_id
    holder = s.get(Worker, holder_id)
    taken_back = s.execute(
        update(WorkItem)
        .where(WorkItem.id == item.id, WorkItem.version == item.version, WorkItem.state == WorkItemState.ASSIGNED)
        .values(state=WorkItemState.OPEN, assignee_id=None, assigned_at=None, version=WorkItem.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken_back:
        return False
    _release_capacity(s, holder_id)
    _expire(s, WorkItem, item.id)
    audit.record(
        s, ROUTER, "work_item", item.id, "reclaimed", "assigned", "open",
        from_worker=holder.name if holder else str(holder_id), reason=reason,
    )
    return True


@dataclass(slots=True)
class PresenceChange:
    worker: str
    before: str
    after: str
    reclaimed: list[int] = field(default_factory=list)  # items taken back (went offline)
    rerouted: dict[int, str] = field(default_factory=dict)  # of those, item -> new rep
    pulled: list[int] = field(default_factory=list)  # items pushed to them (came online)


def set_presence(
    s: Session, name: str, presence: Presence | str, now: datetime | None = None, actor: str | None = None
) -> PresenceChange:
    """Record a rep's presence and act on it.

    offline: their assigned-but-not-started items are reclaimed and routed to others at once.
    away: they keep their items but get nothing new (sla-watch reclaims after a grace period).
    available: they are given work up to their capacity.
    """
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    presence = Presence(presence)
    worker = s.scalar(select(Worker).where(Worker.name == name))
    if worker is None:
        raise UnknownWorker(f"no worker named {name!r}")
    change = PresenceChange(worker=name, before=str(worker.presence), after=str(presence))
    if worker.presence != presence:
        worker.presence = presence
        worker.presence_changed_at = now
        audit.record(s, actor or name, "worker", worker.id, "presence", change.before, change.after)
        s.flush()
    if presence == Presence.OFFLINE:
        held = s.scalars(
            select(WorkItem.id).where(WorkItem.assignee_id == worker.id, WorkItem.state == WorkItemState.ASSIGNED)
        ).all()
        for item_id in held:
            if reclaim_item(s, item_id, f"{name} went offline", now):
                change.reclaimed.append(item_id)
        for item_id in change.reclaimed:
            rep = route_item(s, item_id, now)
            if rep is not None:
                change.rerouted[item_id] = rep.name
    elif presence == Presence.AVAILABLE:
        change.pulled = [it.id for it in route_for_worker(s, worker.id, now)]
    return change
