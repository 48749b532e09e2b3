"""The read model: database rows translated into what the policies see.

`as_routable_item` / `as_routable_rep` translate one ORM object (the item being routed, the
rep who has room). `item_rows` / `worker_rows` read many rows as plain columns for the live
index (live.py): thousands of rows must not cost an ORM object each, and requirements are
decoded once per distinct stored value (items of one kind share them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Select
from sqlalchemy import Text
from sqlalchemy import select
from sqlalchemy import type_coerce
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from handoff.core.clock import epoch
from handoff.core.clock import on_shift
from handoff.core.models import Presence
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import WorkItem
from handoff.core.routing.eligibility import effective_requirements
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep


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


def stored_epoch(value: str | datetime | None) -> float:
    """A stored timestamp read raw (SQLite gives ISO text; parsing it in C is much cheaper
    than the ORM's per-value conversion) -> epoch seconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return epoch(value)


def stored_datetime(value: str | datetime) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# --- many rows at once, as plain columns ---------------------------------------------------


@dataclass(slots=True)
class ItemRow:
    """A work item as the live index keeps it: the policy's view plus what the watch needs."""

    id: int
    state: str
    assignee_id: int | None
    version: int
    escalated: bool
    required: dict[str, int]  # as stored (escalation widens what the policy sees)
    routable: RoutableItem
    seq: int


@dataclass(slots=True)
class WorkerRow:
    id: int
    name: str
    role: str
    capacity: int
    open_items: int
    presence: str
    timezone: str
    shift_start: str
    shift_end: str
    work_days: str
    last_assigned_at: float
    presence_changed_at: datetime
    skills: dict[str, int]
    seq: int


def as_stored(*columns: Any) -> tuple[Any, ...]:
    """Columns read as the text the database holds, skipping SQLAlchemy's JSON and datetime
    processing: the index decodes them itself (`stored_epoch`, one JSON parse per distinct skill
    set), which is most of the time a large read takes otherwise."""
    return tuple(type_coerce(c, Text) for c in columns)


ITEM_COLUMNS = (
    WorkItem.id,
    WorkItem.state,
    WorkItem.assignee_id,
    WorkItem.version,
    WorkItem.escalated,
    WorkItem.work_type,
    *as_stored(WorkItem.required_skills, WorkItem.created_at, WorkItem.due_at),
    WorkItem.effort_seconds,
    WorkItem.priority,
    WorkItem.value,
    WorkItem.change_seq,
)


def items_where(where: ColumnElement[bool]) -> Select:
    return select(*ITEM_COLUMNS).where(where)


def item_rows(connection: Connection, query: Select, params: dict | None = None) -> list[ItemRow]:
    """Work items the query (from `items_where`) selects, decoded for the index."""
    return decode_items(connection.execute(query, params or {}))


def decode_items(rows: Iterable[Sequence[Any]]) -> list[ItemRow]:
    """Rows of `ITEM_COLUMNS` (through SQLAlchemy or straight from the driver) as index rows."""
    decoded: dict[Any, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {}
    out = []
    for (
        item_id,
        state,
        assignee,
        version,
        escalated,
        work_type,
        raw,
        created,
        due,
        effort,
        priority,
        value,
        seq,
    ) in rows:
        key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
        kinds = decoded.get(key)
        if kinds is None:
            stored = (json.loads(raw) if isinstance(raw, str) else raw) or {}
            kinds = decoded[key] = (stored, effective_requirements(stored, False), effective_requirements(stored, True))
        escalated = bool(escalated)
        out.append(
            ItemRow(
                item_id,
                str(state),
                assignee,
                version,
                escalated,
                kinds[0],
                RoutableItem(
                    str(item_id),
                    work_type,
                    kinds[2] if escalated else kinds[1],
                    stored_epoch(created),
                    stored_epoch(due),
                    effort,
                    priority,
                    value,
                ),
                seq,
            )
        )
    return out


WORKER_COLUMNS = (
    Worker.id,
    Worker.name,
    Worker.role,
    Worker.capacity,
    Worker.open_items,
    Worker.presence,
    Worker.timezone,
    Worker.shift_start,
    Worker.shift_end,
    Worker.work_days,
    *as_stored(Worker.last_assigned_at, Worker.presence_changed_at),
    Worker.change_seq,
)


class skills_object(FunctionElement):  # noqa: N801 (an SQL function, named like one)
    """A worker's skills as one JSON object {skill: level} (the aggregate of a correlated
    subquery): each database spells it differently."""

    type = Text()
    inherit_cache = True


@compiles(skills_object, "sqlite")
def _skills_object_sqlite(element: skills_object, compiler: Any, **kw: Any) -> str:
    return f"json_group_object({compiler.process(element.clauses, **kw)})"


@compiles(skills_object, "postgresql")
def _skills_object_postgresql(element: skills_object, compiler: Any, **kw: Any) -> str:
    return f"json_object_agg({compiler.process(element.clauses, **kw)})"


SKILLS_OF_WORKER = (
    select(skills_object(WorkerSkill.skill, WorkerSkill.level))
    .where(WorkerSkill.worker_id == Worker.id)
    .correlate(Worker)
    .scalar_subquery()
)


def workers_where(where: ColumnElement[bool]) -> Select:
    """Workers with their skills, in one statement (a second one for the skills cost a
    refresh as much again)."""
    return select(*WORKER_COLUMNS, SKILLS_OF_WORKER).where(where)


def worker_rows(connection: Connection, query: Select, params: dict | None = None) -> list[WorkerRow]:
    """Workers the query (from `workers_where`) selects, with their skills."""
    return decode_workers(connection.execute(query, params or {}))


def decode_workers(rows: Iterable[Sequence[Any]]) -> list[WorkerRow]:
    """Rows of `workers_where` (through SQLAlchemy or straight from the driver) as index rows."""
    return [
        WorkerRow(
            wid,
            name,
            role,
            capacity,
            n_open,
            str(presence),
            tz,
            start,
            end,
            days,
            stored_epoch(last),
            stored_datetime(changed),
            {str(k): int(v) for k, v in ((json.loads(skills) if isinstance(skills, str) else skills) or {}).items()},
            seq,
        )
        for wid, name, role, capacity, n_open, presence, tz, start, end, days, last, changed, seq, skills in rows
    ]
