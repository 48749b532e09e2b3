"""Reading what changed since a routing index last looked (the index itself: live.py).

Triggers stamp every changed work item and worker row from a commit-ordered counter (migration
0003), so a refresh asks only for the rows stamped above its watermark, plus the rows it knows
are dirty. Here are the statements it runs (built once; the hot ones compiled for the driver's
own cursor, driver_sql.py), the connection it reads on, the refusal of a database without the
triggers, and the reading and merging of the changed rows into the index.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.routing.driver_sql import DriverStatement
from handoff.core.routing.readmodel import ItemRow
from handoff.core.routing.readmodel import WorkerRow
from handoff.core.routing.readmodel import items_where
from handoff.core.routing.readmodel import workers_where

SQLITE_TRIGGERS = (
    "work_items_stamp_insert",
    "work_items_stamp_update",
    "workers_stamp_insert",
    "workers_stamp_update",
    "worker_skills_stamp_insert",
    "worker_skills_stamp_delete",
)


# The statements a refresh runs, built once.
ITEMS_CHANGED = items_where(WorkItem.change_seq > bindparam("seen"))
MAX_ITEM_STAMP = select(func.max(WorkItem.change_seq))
MAX_WORKER_STAMP = select(func.max(Worker.change_seq))
ITEMS_BY_ID = items_where(WorkItem.id.in_(bindparam("ids", expanding=True)))
WORKERS_BY_ID = workers_where(Worker.id.in_(bindparam("ids", expanding=True)))
WORKERS_CHANGED = workers_where(Worker.change_seq > bindparam("seen"))
# The last stamp handed out. SQLite's counter row is transactional (its value is what has
# committed, or, read in the writer's own transaction, what it stamped); PostgreSQL's sequence
# is not (it counts stamps still uncommitted too).
_SQLITE_COUNTER = "SELECT seq FROM change_counter WHERE id = 1"
COUNTER = {
    "sqlite": text(_SQLITE_COUNTER),
    "postgresql": text("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM routing_change_seq"),
}


# SQLite: a statement that writes many rows stamps them itself, all with one new counter value
# (`stamp_in_bulk`). The row trigger does not fire for a row whose change_seq the statement set
# (its WHEN clause), and it costs two more writes per row (the counter, then the row again):
# half of a first sla-watch round's claims and escalations over a 100,000-item backlog. One
# stamp for all of them keeps the order readers need: one writer at a time, so no transaction
# that commits later has a lower stamp. PostgreSQL's trigger stamps each row in place, cheaply.
_BUMP_COUNTER = text("UPDATE change_counter SET seq = seq + 1 WHERE id = 1")
COUNTER_NOW = f"({_SQLITE_COUNTER})"


def stamp_in_bulk(c: Connection) -> bool:
    """Take a new stamp for the rows the caller's next statements write, which set
    `change_seq = COUNTER_NOW` themselves; False (nothing taken) where the triggers stamp
    every row anyway (PostgreSQL)."""
    if c.dialect.name != "sqlite":
        return False
    c.execute(_BUMP_COUNTER)
    return True


class CommittedReader:
    """The index's connection for reading committed state, kept from one refresh to the next.

    Autocommit: each statement sees what has committed (as under READ COMMITTED), with no
    BEGIN / ROLLBACK round trips. Kept rather than checked out of the pool per refresh: the
    pool's liveness ping and checkout cost a round trip and about a third of a refresh's CPU on
    PostgreSQL (docs/routing-benchmarks.md). Without the ping, a connection the server dropped
    (a restart, an idle timeout) surfaces as an error on first use: `lost` recognises it, the
    connection is let go and the refresh reads again on a new one. A process forked from the
    one that opened it opens its own and never touches the parent's (their socket is shared)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kept: Connection | None = None
        self.pid = 0
        self.inherited: list[Connection] = []  # a parent's, held so nothing closes them from here

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        if self.kept is not None and self.pid != os.getpid():
            self.inherited.append(self.kept)
            self.kept = None
        if self.kept is None:
            self.kept = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.pid = os.getpid()
        yield self.kept

    def lost(self, error: BaseException) -> bool:
        """Did `error` break the kept connection? If so it is let go (the next read opens one)."""
        broken = isinstance(error, DBAPIError) and error.connection_invalidated
        if broken or (self.kept is not None and self.kept.invalidated):
            self.close()
            return True
        return False

    def close(self) -> None:
        if self.kept is not None and self.pid == os.getpid():
            # Closed for good rather than checked back in: the pool it came from may have been
            # disposed since (a test's teardown), and would then drop it unclosed.
            self.kept.invalidate()
            self.kept.close()
        self.kept = None


class IndexNotInStep(RuntimeError):
    """The database lacks the triggers that stamp changes: an index could silently go stale."""


def require_triggers(c: Connection) -> None:
    """Refuse (IndexNotInStep) a database whose change triggers are missing: on SQLite a later
    migration that rebuilds a table drops them."""
    if c.dialect.name == "sqlite":
        names = set(c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='trigger'").scalars())
        if not set(SQLITE_TRIGGERS) <= names:
            raise IndexNotInStep(
                "the database lacks migration 0003's change triggers (a later migration that rebuilt "
                "work_items or workers must re-create them); routing cannot keep its index in step"
            )


Row = TypeVar("Row", ItemRow, WorkerRow)


def changed_rows(
    c: Connection,
    decode: Callable[[Iterable[Sequence[Any]]], list[Row]],
    changed: DriverStatement,
    by_id: Select,
    seen: int,
    dirty: set[int],
    anything_new: bool,
    read: Sequence[Sequence[Any]] | None = None,
) -> list[Row]:
    """Rows stamped above `seen` (when anything was stamped; `read`: those rows, read already),
    plus the dirty rows that were not: a dirty row this process changed and committed carries
    a new stamp and is read with the rest; one whose change rolled back (or a claim lost to a
    change read earlier) is read by id."""
    if read is None:
        read = changed.rows(c, {"seen": seen}) if anything_new else []
    rows = decode(read)
    missing = dirty.difference(row.id for row in rows)
    if missing:
        rows += decode(c.execute(by_id, {"ids": sorted(missing)}))
    return rows


def merge(
    rows: Sequence[Row], dirty: set[int], put: Callable[[Row], None], drop: Callable[[int], None], seen: int
) -> int:
    """Put every row read and drop each dirty id that was not read (it is gone); returns the
    highest change stamp read, at least `seen` (the new watermark)."""
    for row in rows:
        seen = max(seen, row.seq)
        put(row)
    for gone in dirty - {row.id for row in rows}:
        drop(gone)
    return seen
