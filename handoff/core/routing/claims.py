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
import functools
import json
from collections import Counter
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
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
from handoff.core.routing.changes import COUNTER_NOW
from handoff.core.routing.changes import stamp_in_bulk
from handoff.core.routing.driver_sql import DriverStatement
from handoff.core.routing.driver_sql import PerDatabase
from handoff.core.routing.driver_sql import run_together
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
    run_together(c, [(_TAKE_TURN[c.dialect.name].on(c), {})])  # on PostgreSQL, BEGIN in the same round trip


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
_LAST_ASSIGNED = PerDatabase(select(Worker.last_assigned_at).where(Worker.id == bindparam("claiming_rep")))
# A claim falling short gives back the places it took for items it did not get; with none
# taken, the rep's "last assigned" goes back to the value read before (passed as the driver
# returned it: the statement's parameters are not typed, so nothing converts it).
_GIVE_BACK_ROOM = {
    False: PerDatabase(text("UPDATE workers SET open_items = open_items - :places WHERE id = :claiming_rep")),
    True: PerDatabase(
        text(
            "UPDATE workers SET open_items = open_items - :places, last_assigned_at = :last_assigned "
            "WHERE id = :claiming_rep"
        )
    ),
}
_PUT_ITEM_BACK = PerDatabase(
    update(WorkItem)
    .where(WorkItem.id == bindparam("claimed_item"))
    .values(state=WorkItemState.OPEN, assignee_id=None, assigned_at=None, version=WorkItem.version - 1)
    .execution_options(synchronize_session=False)
)


# A claim is tried in one go: the rep's "last assigned" as it is, the item UPDATEs, the rep's
# UPDATE and the audit rows, sent together (one round trip on PostgreSQL,
# driver_sql.run_together). When every part holds (nearly always) that is the whole claim. When
# one does not, what it wrote is undone by writes that reverse it (`_settle_short_claim`),
# keeping what still holds. Not by a savepoint: on PostgreSQL every savepoint that writes is a
# subtransaction of its own until the transaction ends, and a transaction with more than 64
# slows every other session's snapshots (a watch round reclaiming a team's items at the end
# of a shift makes dozens of claims). The reversing writes are exact: the rows a claim
# changed stay locked by its transaction until it ends, and a claim is made under the routing
# turn (`one_router_at_a_time`: the router's decisions and a supervisor's reassign take it
# first; every other writer of items and reps takes it through migration 0003's triggers), so
# nothing changes the rep between the claim's read and its writes.


def claim(s: Session, item_id: int, version: int, worker_id: int, now: datetime, event: dict | None = None) -> Claim:
    """Assign atomically: the item must still be open at this version and the rep must still
    have room and be available. Both UPDATEs (and `event`'s audit row, if the item is taken)
    run in the caller's transaction."""
    taken = claim_many(s, worker_id, [(item_id, version)], now, [event] if event is not None else None)
    if taken is None:
        return Claim.REP_FULL
    return Claim.TAKEN if taken else Claim.ITEM_GONE


def claim_many(
    s: Session, worker_id: int, items: list[tuple[int, int]], now: datetime, events: list[dict] | None = None
) -> list[int] | None:
    """Assign several (item id, version) to one rep atomically: the ids of those still open at
    their version, all taken, in the order asked; or None when the rep no longer has room for
    them all or is not available (then nothing changed). A rep filling several places pays
    one UPDATE of their row, not one per item. `events`: the audit row of each item's
    assignment (`assignment_event`), in `items`' order, written for those taken.

    The statements run on the caller's connection, in its transaction, after flushing the
    session's own pending changes as `Session.execute` would; the caller holds the routing
    turn (`one_router_at_a_time`)."""
    s.flush()
    c = s.connection()
    if not items:
        return []
    asked: dict[int, int] = {}  # an item asked for twice is claimed once, in the first place asked
    audit: dict[int, dict] = {}
    for k, (item_id, version) in enumerate(items):
        asked.setdefault(item_id, version)
        if events:
            audit.setdefault(item_id, events[k])
    outcome = run_together(
        c,
        [
            (_LAST_ASSIGNED.on(c), {"claiming_rep": worker_id}),
            *((_TAKE_ITEM.on(c), _item_claim(item_id, version, worker_id, now)) for item_id, version in asked.items()),
            (_TAKE_ROOM.on(c), _room_claim(worker_id, len(asked), now)),
            *_writing_events(c, list(audit.values()), saying_ids=True),
        ],
    )
    read, changed, roomy, written = (
        outcome[0],
        outcome[1 : 1 + len(asked)],
        outcome[1 + len(asked)],
        outcome[2 + len(asked) :],
    )
    won = [item_id for item_id, took in zip(asked, changed) if took]
    taken: list[int] | None = won
    if len(won) < len(asked) or not roomy:
        last_assigned = read[0][0] if read else None
        taken = _settle_short_claim(c, worker_id, len(asked), won, bool(roomy), last_assigned, now)
        kept = {audit[item_id]["entity_id"] for item_id in taken or () if item_id in audit}
        gone = [{"event_id": event_id} for rows in written for event_id, entity_id in rows if entity_id not in kept]
        _UNWRITE_EVENT.on(c).run_many(c, gone)
    if s.identity_map:  # the session holds ORM objects these UPDATEs went around
        for item_id in asked:
            expire(s, WorkItem, item_id)
        expire(s, Worker, worker_id)
    return taken


def _settle_short_claim(
    c: Connection,
    worker_id: int,
    asked: int,
    won: list[int],
    roomy: bool,
    last_assigned: object,  # as the driver returned it
    now: datetime,
) -> list[int] | None:
    """What a claim that fell short keeps, its other writes reversed: the items it won, if the
    rep has room for that many (the places it took for the rest given back, or the places for
    them taken now); otherwise nothing (None if any item was still open but the rep had no
    room), every row as it was."""
    if roomy:  # places for every item asked were taken: give back those of the items gone
        back = {"claiming_rep": worker_id, "places": asked - len(won)}
        _GIVE_BACK_ROOM[not won].on(c).rowcount(c, back if won else back | {"last_assigned": last_assigned})
        return won
    if not won:
        return []
    if len(won) < asked and _TAKE_ROOM.on(c).rowcount(c, _room_claim(worker_id, len(won), now)):
        return won  # fewer places than asked, and they fit
    # Put the items back exactly as they were (same version): this transaction has not
    # committed, so nobody else saw them assigned, and the caller may try another rep.
    _PUT_ITEM_BACK.on(c).run_many(c, [{"claimed_item": item_id} for item_id in won])
    return None


def _item_claim(item_id: int, version: int, worker_id: int, now: datetime) -> dict:
    return {"claimed_item": item_id, "seen_version": version, "claiming_rep": worker_id, "claimed_at": now}


def _room_claim(worker_id: int, places: int, now: datetime) -> dict:
    return {"claiming_rep": worker_id, "places": places, "claimed_at": now}


# A round's claims (sla-watch routing a backlog) go in batches: one statement for many items,
# one for their reps, each joined to the rows it is given (`wanted`). Batches are padded to a
# power of two with rows that match nothing, so each database compiles a handful of statements,
# not one per batch size.
ROUND_BATCH = 256
_NOTHING = -1  # an id no row has: the padding rows' item and rep
_IN_BATCH = {
    "take items": (
        ("item", "seen", "rep"),
        "UPDATE work_items SET state = :assigned, assignee_id = wanted.rep, assigned_at = :claimed_at, "
        "version = work_items.version + 1 FROM wanted "
        "WHERE work_items.id = wanted.item AND work_items.state = :open AND work_items.version = wanted.seen "
        "RETURNING work_items.id, work_items.assignee_id",
        {"assigned": str(WorkItemState.ASSIGNED), "open": str(WorkItemState.OPEN)},
    ),
    "take room": (
        ("rep", "places"),
        "UPDATE workers SET open_items = workers.open_items + wanted.places, last_assigned_at = :claimed_at "
        "FROM wanted WHERE workers.id = wanted.rep AND workers.open_items + wanted.places <= workers.capacity "
        "AND workers.presence = :available RETURNING workers.id",
        {"available": str(Presence.AVAILABLE)},
    ),
}


@functools.cache
def _in_batch(name: str, rows: int) -> PerDatabase:
    columns, sql, fixed = _IN_BATCH[name]
    values = ", ".join("(" + ", ".join(f":{col}{k}" for col in columns) + ")" for k in range(rows))
    stamped = sql.replace(" SET ", f" SET change_seq = {COUNTER_NOW}, ", 1)  # SQLite's (`stamp_in_bulk`)
    return PerDatabase(
        text(f"WITH wanted({', '.join(columns)}) AS (VALUES {values}) {stamped}").bindparams(
            # written as the ORM writes the claim's timestamp (both columns are the same DateTime)
            bindparam("claimed_at", type_=WorkItem.__table__.c.assigned_at.type),
            *(bindparam(key, value) for key, value in fixed.items()),
        )
    )


# On PostgreSQL the rows go as one array per column, unnested into `wanted`: one statement for
# the whole round, and a short one. The VALUES form has three parameters per row, which psycopg
# parses out of the statement's text again at every execution (it caches statements of at
# most 50 parameters): a third of a second of a 100,000-item round's first pass.
_ARRAY_OF = {"item": "BIGINT[]", "seen": "INTEGER[]", "rep": "BIGINT[]", "places": "INTEGER[]"}


@functools.cache
def _in_arrays(name: str) -> PerDatabase:
    columns, sql, fixed = _IN_BATCH[name]
    arrays = ", ".join(f"CAST(:{col} AS {_ARRAY_OF[col]})" for col in columns)
    return PerDatabase(
        text(f"WITH wanted({', '.join(columns)}) AS (SELECT * FROM unnest({arrays})) {sql}").bindparams(
            bindparam("claimed_at", type_=WorkItem.__table__.c.assigned_at.type),
            *(bindparam(key, value) for key, value in fixed.items()),
        )
    )


def _run_in_batches(c: Connection, name: str, rows: list[tuple[int, ...]], now: datetime) -> list[tuple]:
    """Run one of `_IN_BATCH`'s statements over `rows` (in the order given), ROUND_BATCH at a
    time (on PostgreSQL all at once, as arrays); the rows they return."""
    columns = _IN_BATCH[name][0]
    if c.dialect.name == "postgresql":
        arrays = {col: [row[k] for row in rows] for k, col in enumerate(columns)}
        return _in_arrays(name).on(c).rows(c, {"claimed_at": now, **arrays})
    stamp_in_bulk(c)
    padding = (_NOTHING,) * len(columns)
    found: list[tuple] = []
    for start in range(0, len(rows), ROUND_BATCH):
        batch = rows[start : start + ROUND_BATCH]
        size = 1 << (len(batch) - 1).bit_length()
        params: dict = {"claimed_at": now}
        for k, row in enumerate(batch + [padding] * (size - len(batch))):
            params.update((f"{col}{k}", value) for col, value in zip(columns, row))
        found += _in_batch(name, size).on(c).rows(c, params)
    return found


def claim_round(s: Session, plan: list[tuple[int, int, int]], now: datetime) -> tuple[dict[int, int], set[int]]:
    """Claim many (item id, version, rep id) at once, each on the same terms as `claim`: the
    item still open at that version, and the rep with room for every item they get here and
    available. Returns (item id -> rep id of those taken, the reps that had no room: their
    items stay open as they were).

    One statement per batch of items and one per batch of their reps, instead of two per
    item: a first sla-watch round over a never-routed backlog makes ten thousand assignments
    (docs/routing-benchmarks.md). An item listed twice goes to one of its reps, once."""
    if not plan:
        return {}, set()
    s.flush()
    c = s.connection()
    # In id order: the rows (and their index entries) are then visited in the order they are
    # stored, which on SQLite took a 10,000-item round's claims from 0.44 to 0.17 s.
    taken: dict[int, int] = dict(_run_in_batches(c, "take items", sorted(plan), now))
    places = Counter(taken.values())
    roomy = {row[0] for row in _run_in_batches(c, "take room", sorted(places.items()), now)}
    full = set(places) - roomy
    back = [item_id for item_id, rep_id in taken.items() if rep_id in full]
    if back:  # as in claim_many: put back exactly as they were; this transaction has not committed
        _PUT_ITEM_BACK.on(c).run_many(c, [{"claimed_item": item_id} for item_id in back])
        for item_id in back:
            del taken[item_id]
    if s.identity_map:  # the session holds ORM objects these UPDATEs went around
        for item_id, _, _ in plan:
            expire(s, WorkItem, item_id)
        for rep_id in places:
            expire(s, Worker, rep_id)
    return taken, full


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
# A claim's audit rows say which rows they are, so that a claim falling short can take back
# those of the items it did not get (`_UNWRITE_EVENT`).
_RECORD_EVENT_SAYING_ID = PerDatabase(
    insert(AuditEvent).values({f: bindparam(f) for f in _EVENT_FIELDS}).returning(AuditEvent.id, AuditEvent.entity_id)
)
_UNWRITE_EVENT = PerDatabase(delete(AuditEvent).where(AuditEvent.id == bindparam("event_id")))


# PostgreSQL: every row in one INSERT, the rows as one JSON array (psycopg's executemany sends
# a statement per row, and its text arrays quote each string by regular expression: 0.5 and
# 0.8 s for the 13,000 audit rows of a 100,000-item round's first pass; this, ~0.1 s).
_EVENT_TYPES = {"at": "TIMESTAMP", "details": "JSON"}
_EVENTS_FROM_JSON = (
    f"INSERT INTO audit_events ({', '.join(_EVENT_FIELDS)}) SELECT {', '.join(_EVENT_FIELDS)} "
    "FROM json_to_recordset(CAST(:rows AS JSON)) AS given("
    + ", ".join(f"{f} {_EVENT_TYPES.get(f, 'VARCHAR')}" for f in _EVENT_FIELDS)
    + ")"
)
_EVENTS_IN_ONE = {
    False: PerDatabase(text(_EVENTS_FROM_JSON)),
    True: PerDatabase(text(f"{_EVENTS_FROM_JSON} RETURNING id, entity_id")),
}


def record_events(s: Session, events: list[dict]) -> None:
    """Audit rows written in one statement on the driver's cursor (a watch round assigns
    hundreds; an ORM object and a flush each would cost more than the assignments), each
    value stored as the ORM stores it (a naive UTC timestamp, the details' JSON text)."""
    if not events:
        return
    c = s.connection()
    if c.dialect.name == "postgresql":
        run_together(c, _writing_events(c, events))
    else:
        _RECORD_EVENTS.on(c).run_many(c, events)


def _writing_events(c: Connection, events: list[dict], saying_ids: bool = False) -> list[tuple[DriverStatement, dict]]:
    """The statements that write these audit rows, for `run_together`: on PostgreSQL one (the
    rows as JSON), elsewhere one per row. `saying_ids`: each returns (audit id, entity id) of
    the rows it wrote."""
    if not events:
        return []
    if c.dialect.name == "postgresql":
        rows = json.dumps([{**e, "at": e["at"].isoformat()} for e in events])
        return [(_EVENTS_IN_ONE[saying_ids].on(c), {"rows": rows})]
    return [((_RECORD_EVENT_SAYING_ID if saying_ids else _RECORD_EVENTS).on(c), event) for event in events]


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
