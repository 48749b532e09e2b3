"""The item lifecycle on the rep's side: start, complete, presence, and taking work back.

- `complete_item`      close an item for the person who did it, free the capacity, refill it.
- `start_item`         the assignee has begun; the item is no longer reclaimed if they leave.
- `set_presence`       available / away / offline; going offline hands back not-started work.
- `reclaim_item`       take a not-started item back from its rep and make it open again.
- `cancel_item`        the step is no longer needed (its question was answered elsewhere).

Every change is a conditional UPDATE on the row's version (a concurrent change makes it a
no-op the caller is told about) and writes an AuditEvent. Datetimes are naive UTC, as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.clock import as_utc_naive
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing.assign import route_for_worker
from handoff.core.routing.assign import route_item
from handoff.core.routing.claims import ACTIVE
from handoff.core.routing.claims import ROUTER
from handoff.core.routing.claims import NotAllowed
from handoff.core.routing.claims import UnknownWorker
from handoff.core.routing.claims import expire as _expire
from handoff.core.routing.claims import one_router_at_a_time
from handoff.core.routing.claims import release_capacity as _release_capacity
from handoff.core.routing.eligibility import effective_requirements
from handoff.core.routing.eligibility import meets

__all__ = [
    "ACTIVE",
    "cancel_item",
    "NotAllowed",
    "PresenceChange",
    "UnknownWorker",
    "check_may_complete",
    "complete_item",
    "reclaim_item",
    "set_presence",
    "start_item",
]


# --- the rep's side: start, complete, presence ------------------------------------------------
def _move(s: Session, item: WorkItem, from_states: tuple[WorkItemState, ...], **values: object) -> bool:
    """Change the item only if it is still at the version and in a state the caller read: the
    database decides between two changes at once. False: it changed meanwhile, nothing done."""
    moved = cast(
        CursorResult,
        s.execute(
            update(WorkItem)
            .where(WorkItem.id == item.id, WorkItem.version == item.version, WorkItem.state.in_(from_states))
            .values(**values, version=WorkItem.version + 1)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    return bool(moved)


def check_may_complete(s: Session, item: WorkItem, by: str) -> None:
    """Raise NotAllowed unless `by` may complete the item: its assignee, or a supervisor."""
    if item.state in (WorkItemState.COMPLETED, WorkItemState.CANCELLED):
        raise NotAllowed(f"work item {item.id} is already {item.state}; nothing to complete")
    person = s.scalar(select(Worker).where(Worker.name == by))
    if person is None:
        raise NotAllowed(
            f"{by!r} is not a known worker; only the assignee or a supervisor may complete work item {item.id}"
        )
    if person.role == "supervisor":
        return
    if item.assignee_id != person.id:
        assignee = s.get(Worker, item.assignee_id) if item.assignee_id else None
        holder = assignee.name if assignee is not None else "nobody yet"
        raise NotAllowed(
            f"work item {item.id} is assigned to {holder}; only the assignee or a supervisor "
            f"may complete it, not {by}. It stays {item.state} with {holder}."
        )


class AlreadyCompleted(NotAllowed):
    """Someone else completed the step first: who, and when."""

    def __init__(self, item: WorkItem) -> None:
        self.item_id, self.completed_by, self.completed_at = item.id, item.completed_by, item.completed_at
        when = f"{item.completed_at:%Y-%m-%d %H:%M:%S} UTC" if item.completed_at else "a moment ago"
        super().__init__(
            f"work item {item.id} was already completed by {item.completed_by or 'someone'} "
            f"at {when} ({item.outcome or 'done'}); your answer was not used"
        )


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
    done = _move(
        s, item, ACTIVE, state=WorkItemState.COMPLETED, completed_at=now, completed_by=by, outcome=outcome, note=note
    )
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
    if not _move(s, item, (WorkItemState.ASSIGNED,), state=WorkItemState.STARTED, started_at=now):
        raise NotAllowed(f"work item {item_id} changed meanwhile; look again")
    audit.record(s, by, "work_item", item.id, "started", "assigned", "started")
    s.refresh(item)
    return item


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
    if not _move(s, item, (WorkItemState.ASSIGNED,), state=WorkItemState.OPEN, assignee_id=None, assigned_at=None):
        return False
    _release_capacity(s, holder_id)
    _expire(s, WorkItem, item.id)
    audit.record(
        s,
        ROUTER,
        "work_item",
        item.id,
        "reclaimed",
        "assigned",
        "open",
        from_worker=holder.name if holder else str(holder_id),
        reason=reason,
    )
    return True


ANSWER_IN_FLIGHT = timedelta(minutes=15)  # a sent answer not recorded by then is taken as lost


def answer_in_flight(item: WorkItem, now: datetime | None = None) -> bool:
    """A rep's answer to this item is on its way to its run: sent (handoff.runtime.steps marks
    it before resuming the run), not yet recorded or refused. A run can take minutes to resume,
    and an answer through another channel meanwhile (the customer's own, to a quote) comes
    second, not first. A mark older than ANSWER_IN_FLIGHT is taken as an answer that never
    left (its sender died before sending)."""
    now = as_utc_naive(now or utcnow())
    return item.state in ACTIVE and item.answer_sent_at is not None and item.answer_sent_at > now - ANSWER_IN_FLIGHT


def cancel_item(s: Session, item_id: int, by: str, reason: str, now: datetime | None = None) -> bool:
    """Close an open item nobody needs to do any more (the customer answered the question it
    asks through another channel), so it leaves its rep's worklist and frees their capacity.

    False if it was completed or cancelled meanwhile: a rep who completed it first keeps their
    completion, and a rep completing it after is told it changed (now cancelled)."""
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    item = s.get(WorkItem, item_id, populate_existing=True)
    if item is None or item.state not in ACTIVE:
        return False
    before, holder_id = item.state, item.assignee_id
    if not _move(s, item, ACTIVE, state=WorkItemState.CANCELLED):
        return False
    _expire(s, WorkItem, item.id)
    audit.record(s, by, "work_item", item.id, "cancelled", before, "cancelled", reason=reason)
    if holder_id is not None:
        _release_capacity(s, holder_id)
        route_for_worker(s, holder_id, now)
    return True


@dataclass(slots=True)
class PresenceChange:
    worker: str
    before: str
    after: str
    reclaimed: list[int] = field(default_factory=list)  # items taken back (went offline)
    rerouted: dict[int, str] = field(default_factory=dict)  # of those, item -> new rep
    pulled: list[int] = field(default_factory=list)  # items pushed to them (came online)


def hand_back_work_beyond_skills(s: Session, worker_id: int, now: datetime | None = None) -> dict[int, str | None]:
    """Take back a rep's not-started items they no longer have the skills for (a supervisor
    changed their skills) and route each again now; item id -> who has it now (None: open).
    The router would never have chosen them, and no watch round takes work back for skills:
    they sat with the rep while a qualified one waited."""
    one_router_at_a_time(s)
    now = as_utc_naive(now or utcnow())
    worker = s.get(Worker, worker_id, populate_existing=True)
    if worker is None:
        return {}
    held = s.scalars(
        select(WorkItem).where(WorkItem.assignee_id == worker_id, WorkItem.state == WorkItemState.ASSIGNED)
    ).all()
    beyond = [
        item.id
        for item in held
        if not meets(worker.skill_levels, effective_requirements(item.required_skills or {}, bool(item.escalated)))
    ]
    return _take_back_and_route(s, beyond, f"{worker.name} no longer has the skills it needs", now)


def _take_back_and_route(s: Session, item_ids: list[int], reason: str, now: datetime) -> dict[int, str | None]:
    """Reclaim these assigned items (those started or moved meanwhile stay as they are), then
    route each again; item id -> who has it now (None: open), in the order taken back."""
    taken_back = [item_id for item_id in item_ids if reclaim_item(s, item_id, reason, now)]
    moved: dict[int, str | None] = {}
    for item_id in taken_back:
        rep = route_item(s, item_id, now)
        moved[item_id] = rep.name if rep is not None else None
    return moved


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
        moved = _take_back_and_route(s, list(held), f"{name} went offline", now)
        change.reclaimed = list(moved)
        change.rerouted = {item_id: rep for item_id, rep in moved.items() if rep is not None}
    elif presence == Presence.AVAILABLE:
        change.pulled = [a.item_id for a in route_for_worker(s, worker.id, now)]
    return change
