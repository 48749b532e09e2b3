"""Reading what changed since a routing index last looked (the index itself: live.py).

Triggers stamp every changed work item and worker row from a commit-ordered counter (migration
0003), so a refresh asks only for the rows stamped above its watermark, plus the rows it knows
are dirty. Here are the statements it runs (built once, and compiled once per database for the
driver's own cursor), the refusal of a database without the triggers, and the reading and
merging of the changed rows into the index.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy import Dialect
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from handoff.core.models import Worker
from handoff.core.models import WorkItem
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
COUNTER = {
    "sqlite": text("SELECT seq FROM change_counter WHERE id = 1"),
    "postgresql": text("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM routing_change_seq"),
}


class DriverQuery:
    """A refresh statement compiled once per database and run on the driver's own cursor.

    A refresh runs two or three tiny indexed queries before every decision; SQLAlchemy's work
    per execution (parameters, result wrapping) cost several times what the database did. The
    statements select plain columns (timestamps and JSON read raw, see readmodel), so the rows
    need nothing from SQLAlchemy."""

    def __init__(self, statement: Select, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = compiled.positiontup  # parameter names in placeholder order (qmark), or None

    def rows(self, c: Connection, params: dict) -> list[tuple]:
        values = [params[name] for name in self.order] if self.order is not None else params
        cursor = c.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, values)
            return cursor.fetchall()
        finally:
            cursor.close()


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
    changed: DriverQuery,
    by_id: Select,
    seen: int,
    dirty: set[int],
    anything_new: bool,
) -> list[Row]:
    """Rows stamped above `seen` (when anything was stamped), plus the dirty rows that were not:
    a dirty row this process changed and committed carries a new stamp and is read with the
    rest; one whose change rolled back (or a claim lost to a change read earlier) is read by id."""
    rows = decode(changed.rows(c, {"seen": seen})) if anything_new else []
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
