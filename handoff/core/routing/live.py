"""The routers' in-memory index, kept in step with the database by a change counter.

Each process keeps, per database, the active work items (open ones in the policy's `ItemPool`,
bucketed and columnar) and every rep (`RepPool`), loaded once. Before a decision it refreshes:
it re-reads only the rows whose `change_seq` is above the highest it has seen (migration 0003:
triggers stamp every changed row from a commit-ordered counter, so nothing committed later can
carry a smaller stamp). A refresh (changes.py) with nothing new is one indexed query per table.

Two views are merged for a decision:

- **committed state**, read on a connection of its own, so the shared index never holds
  anything that may yet roll back;
- **the caller's own uncommitted changes**, read through the caller's session (rows stamped
  above the committed watermark: the caller holds the routing lock or SQLite's write lock, so
  nobody else can have committed them). They are applied for the rest of the transaction (a
  later decision in it reads only what it stamped since: `OwnRows`) and the touched rows re-read
  from committed state once it has ended ("dirty"), as are the rows a call changes
  optimistically (an item it claims, a rep's load).

The index only *proposes*. Every hand-over is still a conditional UPDATE (claims.py), so a
stale index can lose a claim but never assign twice; the loser marks the rows dirty, refreshes
and tries its next choice. `max_staleness` (seconds) lets a process skip refreshes younger than
that; the concurrency tests set it high to prove stale indexes stay safe.

Availability depends on the clock (shifts): it is worked out per distinct shift, once per
minute of `now`, and for a rep whenever their row changes.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core.clock import always_on
from handoff.core.clock import epoch
from handoff.core.clock import in_shift
from handoff.core.clock import zone
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing import changes
from handoff.core.routing.claims import ACTIVE
from handoff.core.routing.driver_sql import DriverStatement
from handoff.core.routing.driver_sql import pipelines
from handoff.core.routing.driver_sql import run_together
from handoff.core.routing.index import ItemPool
from handoff.core.routing.index import RepPool
from handoff.core.routing.policy import PushPolicy
from handoff.core.routing.readmodel import ItemRow
from handoff.core.routing.readmodel import WorkerRow
from handoff.core.routing.readmodel import decode_items
from handoff.core.routing.readmodel import decode_workers
from handoff.core.routing.readmodel import item_rows
from handoff.core.routing.readmodel import items_where
from handoff.core.routing.readmodel import worker_rows
from handoff.core.routing.readmodel import workers_where
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep
from handoff.core.routing.urgency import urgency_columns

if TYPE_CHECKING:  # sla imports routing: a run-time import here would be circular
    from handoff.core.sla import BusinessClock

POLICY = PushPolicy()
FREEZE_FROM = 5_000  # rows: a smaller index costs a full collection little (and a test suite loads hundreds)
OPEN = str(WorkItemState.OPEN)
ACTIVE_STATES = tuple(str(s) for s in ACTIVE)


@dataclass(slots=True)
class OwnRows:
    """The rows one open transaction has laid over the index (`LiveIndex.renew`). Nobody else
    changes them meanwhile: the transaction holds the routing turn (and SQLite's write lock)."""

    transaction: weakref.ref
    items: set[int] = field(default_factory=set)
    workers: set[int] = field(default_factory=set)
    item_stamp: int = -1  # the highest stamps read: what it stamps next is above them
    worker_stamp: int = -1
    counter: int = 0  # SQLite: the change counter as the transaction saw it then
    reread_items: set[int] = field(default_factory=set)  # claims it lost: read again in the transaction
    reread_workers: set[int] = field(default_factory=set)

    def laid(self, items: list[ItemRow], workers: list[WorkerRow], counter: int) -> None:
        self.items.update(row.id for row in items)
        self.workers.update(w.id for w in workers)
        self.item_stamp = max([self.item_stamp, *(row.seq for row in items)])
        self.worker_stamp = max([self.worker_stamp, *(w.seq for w in workers)])
        self.counter = counter
        self.reread_items.clear()
        self.reread_workers.clear()


class LiveIndex:
    """Active items and reps of one database, refreshed from the change counter."""

    def __init__(self, engine: Engine, max_staleness: float = 0.0) -> None:
        self.engine = engine
        self.max_staleness = max_staleness
        self.lock = threading.RLock()
        self.items = ItemPool()  # open items, as the policy sees them
        self.reps = RepPool()
        # The team the items are routed to: push's team rules (work few people on shift may do
        # goes first with those few; the queue's wait stretches the time scale in overload)
        # need it. Without it the live router ran a different policy from the simulated one.
        self.items.team = self.reps
        self.active: dict[int, ItemRow] = {}
        self.held: dict[int, set[int]] = {}  # worker id -> assigned / started item ids
        self.workers: dict[int, WorkerRow] = {}
        self.by_name: dict[str, int] = {}
        self.recheck_at: dict[int, float] = {}  # escalation: not near breach before this (watch.py)
        self.recheck_clock: BusinessClock | None = None  # the business clock recheck_at was computed with
        self.seen_items = self.seen_workers = -1  # watermarks: highest committed stamp read
        self.dirty_items: set[int] = set()
        self.dirty_workers: set[int] = set()
        self.refreshed_at = 0.0
        self.refreshes = 0  # how many refreshes read the database (tests and the bench look)
        self.dialect = engine.dialect.name
        self.counter = self.counter_seen = 0  # the change counter: now, and at the last full read
        self.floor_items = self.floor_workers = -1  # stamps above these are the caller's own (see renew)
        self.reader = changes.CommittedReader(engine)
        self.counter_read = DriverStatement(changes.COUNTER[self.dialect], engine.dialect)
        self.items_changed = DriverStatement(changes.ITEMS_CHANGED, engine.dialect)
        self.workers_changed = DriverStatement(changes.WORKERS_CHANGED, engine.dialect)
        self._minute: int | None = None
        self._shift_ok: dict[tuple, bool] = {}  # per shift (zone, start, end, days): open this minute?
        self._on_shift: dict[tuple, set[int]] = {}  # per shift, the workers who work it
        self.own_rows: OwnRows | None = None  # what the open transaction has laid over the index

    # --- keeping in step --------------------------------------------------------------------

    def load(self) -> None:
        """Read everything once (watermarks first: rows committed meanwhile are read again)."""
        with self.engine.connect() as c:
            changes.require_triggers(c)
            self.counter = self.counter_seen = c.scalar(changes.COUNTER[self.dialect]) or 0
            self.seen_items = c.execute(select(func.coalesce(func.max(WorkItem.change_seq), 0))).scalar_one()
            self.seen_workers = c.execute(select(func.coalesce(func.max(Worker.change_seq), 0))).scalar_one()
            self.floor_items, self.floor_workers = self.seen_items, self.seen_workers
            workers = worker_rows(c, workers_where(Worker.id.is_not(None)))
            items = item_rows(c, items_where(WorkItem.state.in_(ACTIVE_STATES)))
        for w in workers:
            self._put_worker(w)
        opened = []
        for row in items:
            self.active[row.id] = row
            if row.state == OPEN:
                opened.append(row.routable)
            elif row.assignee_id is not None:
                self.held.setdefault(row.assignee_id, set()).add(row.id)
        self.items.add_many(opened)
        for kind in self.items.kinds():  # rank the reps for each kind of work now, not in a decision
            POLICY.ranked_reps(self.reps, kind)
        # and who may do what (the scarce-skill rule's counts: ~60 ms at 5,000 reps)
        self.items.eligible_reps(self.reps)
        self.at(utcnow())  # and who is on shift this minute (~20 ms at 5,000 reps)
        self.refreshed_at = time.monotonic()
        if len(self.active) + len(self.workers) >= FREEZE_FROM:
            # The index is then the bulk of the process's long-lived objects: moved out of the
            # cyclic collector's reach, they no longer make each full collection scan them (one
            # took ~100 ms at 10,000 items, inside whichever decision triggered it). Objects
            # frozen are still freed by reference counting when the index drops them.
            gc.collect()
            gc.freeze()

    def refresh(self, force: bool = False, keep: OwnRows | None = None) -> None:
        """Apply every committed change since the last refresh (and re-read dirty rows).

        Within `max_staleness` of the last refresh (and not forced), only the rows this
        process changed itself are re-read. `keep`: rows an open transaction has laid over the
        index (`renew`), left as it sees them and read again once it has ended."""
        with self.lock:
            for attempt in (1, 2):
                dirty_items, dirty_workers = self.dirty_items, self.dirty_workers
                self.dirty_items, self.dirty_workers = set(), set()
                if keep is not None:
                    self.dirty_items, self.dirty_workers = dirty_items & keep.items, dirty_workers & keep.workers
                    dirty_items, dirty_workers = dirty_items - keep.items, dirty_workers - keep.workers
                try:
                    return self._read_changes(dirty_items, dirty_workers, force, keep)
                except Exception as e:
                    self.dirty_items |= dirty_items  # still to be read: nothing is lost
                    self.dirty_workers |= dirty_workers
                    if attempt == 2 or not self.reader.lost(e):
                        raise

    def _read_changes(self, dirty_items: set[int], dirty_workers: set[int], force: bool, keep: OwnRows | None) -> None:
        """The refresh's reads and their merge (`refresh` retries it once on a broken connection)."""
        if not force and time.monotonic() - self.refreshed_at < self.max_staleness:
            with self.reader.connection() as c:  # stale on purpose: only what the overlay needs
                self.counter = self.counter_read.scalar(c) or 0
                if self.dialect == "sqlite":
                    self.floor_items = self.floor_workers = max(self.counter, self.seen_items, self.seen_workers)
                else:
                    self.floor_items = c.scalar(changes.MAX_ITEM_STAMP) or 0
                    self.floor_workers = c.scalar(changes.MAX_WORKER_STAMP) or 0
                if dirty_items or dirty_workers:
                    self._apply(
                        item_rows(c, changes.ITEMS_BY_ID, {"ids": sorted(dirty_items)}) if dirty_items else [],
                        worker_rows(c, changes.WORKERS_BY_ID, {"ids": sorted(dirty_workers)}) if dirty_workers else [],
                        dirty_items,
                        dirty_workers,
                        advance=False,
                    )
            return
        with self.reader.connection() as c:
            new_items = new_workers = None
            if pipelines(c):  # the counter and what changed in one round trip (PostgreSQL)
                counter, new_items, new_workers = run_together(
                    c,
                    [
                        (self.counter_read, {}),
                        (self.items_changed, {"seen": self.seen_items}),
                        (self.workers_changed, {"seen": self.seen_workers}),
                    ],
                )
                self.counter = (counter[0][0] if counter else 0) or 0
                anything_new = bool(new_items or new_workers) or not self._nothing_new()
            else:
                self.counter = self.counter_read.scalar(c) or 0
                anything_new = not self._nothing_new()
            if not dirty_items and not dirty_workers and not anything_new:
                self.refreshed_at = time.monotonic()
                self.floor_items, self.floor_workers = self.seen_items, self.seen_workers
                return
            items = changes.changed_rows(
                c,
                decode_items,
                self.items_changed,
                changes.ITEMS_BY_ID,
                self.seen_items,
                dirty_items,
                anything_new,
                new_items,
            )
            workers = changes.changed_rows(
                c,
                decode_workers,
                self.workers_changed,
                changes.WORKERS_BY_ID,
                self.seen_workers,
                dirty_workers,
                anything_new,
                new_workers,
            )
        self.counter_seen = self.counter  # only once the rows it stands for are read
        self.refreshes += 1
        self.refreshed_at = time.monotonic()
        if keep is not None:  # their committed versions are older than the transaction's own
            items = [row for row in items if row.id not in keep.items]
            workers = [row for row in workers if row.id not in keep.workers]
        self._apply(items, workers, dirty_items, dirty_workers, advance=True)
        self.floor_items, self.floor_workers = self.seen_items, self.seen_workers

    def _apply(
        self,
        items: list[ItemRow],
        workers: list[WorkerRow],
        dirty_items: set[int],
        dirty_workers: set[int],
        advance: bool,
    ) -> None:
        seen_workers = changes.merge(workers, dirty_workers, self._put_worker, self._drop_worker, self.seen_workers)
        seen_items = changes.merge(items, dirty_items, self._put_item, self._drop_item, self.seen_items)
        if advance:
            self.seen_workers, self.seen_items = seen_workers, seen_items

    @contextmanager
    def session_view(self, s: Session, now: datetime | None = None) -> Iterator[LiveIndex]:
        """The index as the caller's transaction sees it (committed state plus its own
        uncommitted changes), under the process lock. Rows the view changed are re-read from
        committed state at the next refresh."""
        with self.lock:
            self.renew(s, force=False)
            if now is not None:
                self.at(now)
            yield self

    def renew(self, s: Session, force: bool = True) -> None:
        """Refresh from committed state, then lay the caller's own uncommitted rows over it
        (a loser calls this before its next choice).

        A transaction that renews again (sla-watch's steps, a loser's retry) reads only what it
        stamped since, and the refresh leaves the rows it laid before as it sees them: an
        sla-watch round over a 100,000 backlog read its ~13,000 changed rows twice per step.
        Not inside a savepoint, which may roll back what it laid."""
        with self.lock:
            c = s.connection()
            transaction = c.get_transaction()
            own = self.own_rows if self.own_rows is not None and self.own_rows.transaction() is transaction else None
            if own is None or c.in_nested_transaction():
                self.own_rows = own = None
            self.refresh(force, keep=own)
            s.flush()
            if self.dialect == "sqlite":
                stamped = self.counter_read.scalar(c)
                nothing_new = stamped == (own.counter if own is not None else self.counter)
            else:  # a sequence: stamps still uncommitted count too
                stamped, nothing_new = 0, own is None and self.counter <= max(self.floor_items, self.floor_workers)
            reread_items, reread_workers = (own.reread_items, own.reread_workers) if own is not None else (set(), set())
            if nothing_new and not reread_items and not reread_workers:
                return  # the caller's transaction stamped nothing (more)
            since_items, since_workers = self.floor_items, self.floor_workers
            if own is not None:
                since_items, since_workers = max(since_items, own.item_stamp), max(since_workers, own.worker_stamp)
            workers = changes.changed_rows(
                c,
                decode_workers,
                self.workers_changed,
                changes.WORKERS_BY_ID,
                since_workers,
                reread_workers,
                not nothing_new,
            )
            items = changes.changed_rows(
                c, decode_items, self.items_changed, changes.ITEMS_BY_ID, since_items, reread_items, not nothing_new
            )
            for w in workers:
                self._put_worker(w)
                self.dirty_workers.add(w.id)
            for row in items:
                self._put_item(row)
                self.dirty_items.add(row.id)
            if c.in_nested_transaction():
                return
            if own is None:
                own = self.own_rows = OwnRows(weakref.ref(transaction))
            own.laid(items, workers, stamped)

    def _nothing_new(self) -> bool:
        """Has nothing been stamped since the index last read the changed rows?"""
        if self.dialect == "sqlite":
            return self.counter == self.counter_seen
        return self.counter <= max(self.seen_items, self.seen_workers)

    # --- applying rows ----------------------------------------------------------------------

    def _put_item(self, row: ItemRow) -> None:
        old = self.active.get(row.id)
        if old is not None and old.assignee_id is not None:
            self.held.get(old.assignee_id, set()).discard(row.id)
        if row.state not in ACTIVE_STATES:
            self._drop_item(row.id)
            return
        if old is None or (old.routable.created_at, old.routable.due_at) != (
            row.routable.created_at,
            row.routable.due_at,
        ):
            self.recheck_at.pop(row.id, None)
        self.active[row.id] = row
        if row.state == OPEN:
            self.items.add(row.routable)
        else:
            self.items.remove(str(row.id))
            if row.assignee_id is not None:
                self.held.setdefault(row.assignee_id, set()).add(row.id)

    def _drop_item(self, item_id: int) -> None:
        old = self.active.pop(item_id, None)
        if old is not None and old.assignee_id is not None:
            self.held.get(old.assignee_id, set()).discard(item_id)
        self.items.remove(str(item_id))
        self.recheck_at.pop(item_id, None)

    def _put_worker(self, w: WorkerRow) -> None:
        old = self.workers.get(w.id)
        if old is not None and old.name != w.name:
            self.by_name.pop(old.name, None)
        if old is not None:
            self._leave_shift(old)
        self._on_shift.setdefault(_shift(w), set()).add(w.id)
        self.workers[w.id] = w
        self.by_name[w.name] = w.id
        rep = self.reps.get(str(w.id))
        if rep is None or rep.skills != w.skills:
            rep = RoutableRep(str(w.id), dict(w.skills), extra={})
            self.reps.add(rep)  # a skill change rebuilds the pool's skill matrix (rare)
        rep.capacity = w.capacity
        rep.open_items = w.open_items
        rep.last_assigned_at = w.last_assigned_at
        rep.extra["name"] = w.name
        rep.available = self._available(w) if self._minute is not None else False

    def _drop_worker(self, worker_id: int) -> None:
        old = self.workers.pop(worker_id, None)
        if old is not None:
            self.by_name.pop(old.name, None)
            self._leave_shift(old)
        self.reps.remove(str(worker_id))

    def _leave_shift(self, w: WorkerRow) -> None:
        """The worker no longer works this shift (their row changed or is gone); a shift nobody
        works is forgotten."""
        shift = _shift(w)
        workers = self._on_shift.get(shift)
        if workers is not None:
            workers.discard(w.id)
            if not workers:
                del self._on_shift[shift]

    # --- the clock --------------------------------------------------------------------------

    def at(self, now: datetime) -> None:
        """Work out who is available at `now` (once per minute; shifts are whole minutes).
        Only the workers of a shift that opened or closed are looked at again: going through
        all 5,000 reps took ~20 ms, in whichever decision came first in the minute."""
        minute = int(epoch(now) // 60)
        if minute == self._minute:
            return
        before = self._shift_ok
        self._minute, self._shift_ok = minute, {}
        for shift, worker_ids in self._on_shift.items():
            if self._shift_open(shift) == before.get(shift):
                continue  # (a presence change sets availability when its row is put)
            for worker_id in worker_ids:
                rep = self.reps.get(str(worker_id))
                if rep is not None:
                    rep.available = self._available(self.workers[worker_id])

    def _available(self, w: WorkerRow) -> bool:
        return w.presence == Presence.AVAILABLE and self._shift_open(_shift(w))

    def _shift_open(self, shift: tuple) -> bool:
        """Is this shift (zone, start, end, days) on at the index's minute?"""
        ok = self._shift_ok.get(shift)
        if ok is None:
            timezone, start, end, days = shift
            if always_on(start, end, days):
                ok = True
            else:
                utc = datetime(1970, 1, 1) + timedelta(minutes=self._minute or 0)
                ok = in_shift(utc.replace(tzinfo=zone("UTC")).astimezone(zone(timezone)), start, end, days)
            self._shift_ok[shift] = ok
        return ok

    # --- what the decisions read ------------------------------------------------------------

    def rep(self, worker_id: int) -> RoutableRep | None:
        return self.reps.get(str(worker_id))

    def scores(self, items: list[RoutableItem], now: float) -> np.ndarray:
        """The urgency the router ranks by: the push policy's score with the whole open
        queue's mean effort (the pool's p_bar). The worklist shows the same number."""
        return POLICY.score_many(*urgency_columns(items), now, self.items.mean_effort)

    def ranking(self, worker_id: int, items: list[RoutableItem], now: float) -> np.ndarray:
        """The urgency these items rank by for this rep (their worklist): what the push policy
        scores their next pick with, team rules included (`scores` for an unknown rep)."""
        rep = self.rep(worker_id)
        if rep is None:
            return self.scores(items, now)
        return POLICY.ranking_scores(rep, self.items, items, now)

    def open_scores(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(slots, urgency) of every open item, vectorised over the pool's columns."""
        slots = self.items.slots()
        c = self.items.columns
        scores = POLICY.score_many(
            c.priority[slots],
            c.value[slots],
            c.created_at[slots],
            c.due_at[slots],
            c.effort_seconds[slots],
            now,
            self.items.mean_effort,
        )
        return slots, scores

    # --- optimistic changes made by a call (re-read from committed state later) --------------

    def took(self, item_id: int, worker_id: int, now: float) -> None:
        """This call claimed the item for the rep (its transaction may still roll back)."""
        self.items.remove(str(item_id))
        row = self.active.get(item_id)
        if row is not None:
            row.state, row.assignee_id = str(WorkItemState.ASSIGNED), worker_id
            self.held.setdefault(worker_id, set()).add(item_id)
        rep = self.rep(worker_id)
        if rep is not None:
            rep.open_items += 1
            rep.last_assigned_at = now
        self.dirty_items.add(item_id)
        self.dirty_workers.add(worker_id)

    def lost_item(self, item_id: int) -> None:
        """A claim found the item changed: leave it out until its row is read again."""
        self.items.remove(str(item_id))
        self.dirty_items.add(item_id)
        if self.own_rows is not None:
            self.own_rows.reread_items.add(item_id)

    def lost_rep(self, worker_id: int) -> None:
        """A claim found the rep full or gone: no more work for them until their row is read."""
        rep = self.rep(worker_id)
        if rep is not None:
            rep.open_items = max(rep.open_items, rep.capacity)
        self.dirty_workers.add(worker_id)
        if self.own_rows is not None:
            self.own_rows.reread_workers.add(worker_id)


def _shift(w: WorkerRow) -> tuple:
    """The shift a worker works: (zone, start, end, days)."""
    return (w.timezone, w.shift_start, w.shift_end, w.work_days)


# one index per database per process
_INDEXES: OrderedDict[int, tuple[Engine, LiveIndex]] = OrderedDict()
_REGISTRY_LOCK = threading.Lock()
MAX_STALENESS = 0.0  # seconds; the default for new indexes (tests raise it to make indexes stale)


def index_for(s: Session) -> LiveIndex:
    """This process's index of the session's database (loaded on first use)."""
    bind = s.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _REGISTRY_LOCK:
        found = _INDEXES.get(id(engine))
        if found is not None and found[0] is engine:
            _INDEXES.move_to_end(id(engine))
            return found[1]
        index = LiveIndex(engine, MAX_STALENESS)
        index.load()
        _INDEXES[id(engine)] = (engine, index)
        while len(_INDEXES) > 8:
            _close(_INDEXES.popitem(last=False)[1][1])
        return index


def forget_indexes() -> None:
    """Drop every index (the next call loads afresh): for tests and benchmarks."""
    with _REGISTRY_LOCK:
        for _engine, index in _INDEXES.values():
            _close(index)
        _INDEXES.clear()


def _close(index: LiveIndex) -> None:
    """Let go of a dropped index's reading connection (not left for the garbage collector)."""
    with index.lock:
        index.reader.close()
