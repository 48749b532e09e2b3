"""The hand-over, arbitrated by the database: whoever's conditional UPDATE matches wins.

Nobody gets an item twice, however many routers run and however stale their in-memory index
is: every hand-over is a conditional UPDATE (`state='open' AND version=?` on the item,
`open_items < capacity AND presence='available'` on the rep) whose row count says who won.
Losers try their next choice. No in-process lock is involved, so this holds across processes
and machines (SQLite serialises writers; PostgreSQL row locks re-check the WHERE clause after
the winner commits).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from handoff.core.db import SQLITE_WRITE_TURN
from handoff.core.models import AuditEvent
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing.driver_sql import PerDatabase
from handoff.core.routing.routable import RoutableRep

ROUTER = "system:router"
ROUTING_LOCK = 0x68616E64  # "hand": the PostgreSQL advisory lock routing transactions take turns on
ACTIVE = (WorkItemState.OPEN, WorkItemState.ASSIGNED, WorkItemState.STARTED)


class NotAllowed(Exception):
    """Someone tried to complete a step that is not theirs."""


class UnknownWorker(LookupError):
    """No worker by that name."""


class Claim(enum.Enum):
    TAKEN = "taken"
    ITEM_GONE = "item-gone"  # another router (or a completion) got there first
    REP_FULL = "rep-full"  # the rep filled up (or left) meanwhile


_TAKE_TURN = {
    "postgresql": PerDatabase(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=ROUTING_LOCK)),
    "sqlite": PerDatabase(SQLITE_WRITE_TURN),
}


def one_router_at_a_time(s: Session) -> None:
    """Routing transactions take turns (PostgreSQL: a transaction-scoped advisory lock).

    Why: a routing transaction locks an item and a rep, then often more of both, in an order
    that depends on urgency; two at once (sla-watch's batch and an order entry routing its new
    item) lock the same rows in opposite orders and deadlock, and PostgreSQL aborts one of them
    (found by tests/core/routing/test_routing_concurrency.py on PostgreSQL). Each takes
    milliseconds, so taking turns costs nothing a back office notices. Every other writer of
    work items and workers takes the same lock through migration 0003's triggers, which is
    what makes the change counter commit-ordered.

    SQLite has one writer at a time; a write that changes nothing takes that turn now. Either
    way the database's turn is taken *before* the process's index lock (live.py), in every
    routing call, so two threads of one process never wait for each other in opposite orders.
    """
    c = s.connection()
    _TAKE_TURN[c.dialect.name].on(c).rowcount(c, {})


def expire(s: Session, cls: type, pk: int) -> None:
    """Our UPDATEs bypass the identity map; make the session re-read what it holds."""
    obj = s.identity_map.get(identity_key(cls, pk))
    if obj is not None:
        s.expire(obj)


# The claim's statements are built once and run on the driver's cursor (driver_sql.py): every
# routing decision runs them, and SQLAlchemy's work per execution cost more than the database's
# (docs/routing-benchmarks.md).
_TAKE_ITEM = PerDatabase(
    update(WorkItem)
    .where(
        WorkItem.id == bindparam("claimed_item"),
        WorkItem.state == WorkItemState.OPEN,
        WorkItem.version == bindparam("seen_version"),
    )
    .values(
        state=WorkItemState.ASSIGNED,
        assignee_id=bindparam("claiming_rep"),
        assigned_at=bindparam("claimed_at"),
        version=WorkItem.version + 1,
    )
    .execution_options(synchronize_session=False)
)
_TAKE_ROOM = PerDatabase(
    update(Worker)
    .where(
        Worker.id == bindparam("claiming_rep"),
        Worker.open_items + bindparam("places") <= Worker.capacity,
        Worker.presence == Presence.AVAILABLE,
    )
    .values(open_items=Worker.open_items + bindparam("places"), last_assigned_at=bindparam("claimed_at"))
    .execution_options(synchronize_session=False)
)
_PUT_ITEM_BACK = PerDatabase(
    update(WorkItem)
    .where(WorkItem.id == bindparam("claimed_item"))
    .values(state=WorkItemState.OPEN, assignee_id=None, assigned_at=None, version=WorkItem.version - 1)
    .execution_options(synchronize_session=False)
)


def claim(s: Session, item_id: int, version: int, worker_id: int, now: datetime) -> Claim:
    """Assign atomically: the item must still be open at this version and the rep must still
    have room and be available. Both UPDATEs run in the caller's transaction."""
    taken = claim_many(s, worker_id, [(item_id, version)], now)
    if taken is None:
        return Claim.REP_FULL
    return Claim.TAKEN if taken else Claim.ITEM_GONE


def claim_many(s: Session, worker_id: int, items: list[tuple[int, int]], now: datetime) -> list[int] | None:
    """Assign several (item id, version) to one rep atomically: the ids of those still open at
    their version, all taken, or None when the rep no longer has room for them all or is not
    available (then nothing changed). A rep filling several places pays one UPDATE of their
    row, not one per item.

    The UPDATEs run on the caller's connection, in its transaction, after flushing the
    session's own pending changes as `Session.execute` would."""
    s.flush()
    c = s.connection()
    take_item = _TAKE_ITEM.on(c)
    taken = [
        item_id
        for item_id, version in items
        if take_item.rowcount(
            c, {"claimed_item": item_id, "seen_version": version, "claiming_rep": worker_id, "claimed_at": now}
        )
    ]
    if not taken:
        return []
    room = {"claiming_rep": worker_id, "places": len(taken), "claimed_at": now}
    held = bool(s.identity_map)  # the session holds ORM objects these UPDATEs went around
    if not _TAKE_ROOM.on(c).rowcount(c, room):
        # Put the items back exactly as they were (same version): this transaction has not
        # committed, so nobody else saw them assigned, and the caller may try another rep.
        _PUT_ITEM_BACK.on(c).run_many(c, [{"claimed_item": item_id} for item_id in taken])
        for item_id in taken if held else ():
            expire(s, WorkItem, item_id)
        return None
    if held:
        for item_id in taken:
            expire(s, WorkItem, item_id)
        expire(s, Worker, worker_id)
    return taken


def assignment_event(item_id: int, rep: RoutableRep, why: str, score: float | None = None) -> dict:
    """The audit row of one assignment (audit.record's shape), for `record_events`."""
    details: dict = {"assignee": rep.extra.get("name", rep.id), "why": why}
    if score is not None:
        details["urgency"] = round(score, 4)
    return dict(
        at=utcnow(),
        actor=ROUTER,
        entity="work_item",
        entity_id=str(item_id),
        action="assigned",
        from_state="open",
        to_state="assigned",
        details=details,
    )


_EVENT_FIELDS = ("at", "actor", "entity", "entity_id", "action", "from_state", "to_state", "details")
_RECORD_EVENTS = PerDatabase(insert(AuditEvent).values({f: bindparam(f) for f in _EVENT_FIELDS}).inline())


def record_events(s: Session, events: list[dict]) -> None:
    """Audit rows written in one statement on the driver's cursor (a watch round assigns
    hundreds; an ORM object and a flush each would cost more than the assignments)."""
    if events:
        c = s.connection()
        _RECORD_EVENTS.on(c).run_many(c, events)


def record_assignment(s: Session, item_id: int, rep: RoutableRep, why: str, score: float | None = None) -> None:
    record_events(s, [assignment_event(item_id, rep, why, score)])


def release_capacity(s: Session, worker_id: int) -> None:
    """One unit of the rep's capacity is free again (an item was completed or taken back)."""
    s.execute(
        update(Worker)
        .where(Worker.id == worker_id, Worker.open_items > 0)
        .values(open_items=Worker.open_items - 1)
        .execution_options(synchronize_session=False)
    )
    expire(s, Worker, worker_id)
