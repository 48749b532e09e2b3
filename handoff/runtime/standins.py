"""Stand-in reps for the demo and tests: Northwind's staff, with skills that cover every work
type, so a first-time user sees work pushed to people without setting up a team first — and
the answers they give when the demo runs with --auto-approve.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import work_types
from handoff.core.db import session
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import WorkItem

# name, role, capacity, {skill: level}. Sales and operations are different people, so a
# handoff meeting's two sign-offs always come from two sides.
STANDIN_REPS: list[tuple[str, str, int, dict[str, int]]] = [
    ("Nancy Davolio", "rep", 6, {"order-entry": 3, "credit": 2, "billing": 2, "sales": 2}),
    ("Janet Leverling", "rep", 6, {"order-entry": 2, "quotation": 3, "billing": 3, "sales": 3}),
    ("Margaret Peacock", "rep", 6, {"order-entry": 3, "provisioning": 3, "activation": 2, "operations": 2}),
    (
        "Steven Buchanan",
        "supervisor",
        4,
        {
            "order-entry": 5,
            "credit": 4,
            "quotation": 4,
            "billing": 4,
            "provisioning": 3,
            "activation": 3,
            "operations": 4,
        },
    ),
    ("Michael Suyama", "rep", 6, {"order-entry": 2, "activation": 3, "provisioning": 2, "operations": 3}),
    ("Robert King", "rep", 6, {"order-entry": 1, "provisioning": 3, "activation": 1, "operations": 2}),
    ("Laura Callahan", "rep", 6, {"order-entry": 3, "credit": 3, "quotation": 2, "sales": 2}),
    ("Anne Dodsworth", "rep", 6, {"billing": 3, "activation": 2, "credit": 2, "sales": 2}),
    ("Andrew Fuller", "supervisor", 4, {"order-entry": 5, "quotation": 5, "credit": 5, "sales": 5, "billing": 3}),
]


def ensure_standin_reps() -> int:
    """Add the stand-in reps that are missing; returns how many were added."""
    added = 0
    with session() as s:
        known = set(s.scalars(select(Worker.name)))
        for name, role, capacity, skills in STANDIN_REPS:
            if name in known:
                continue
            s.add(
                Worker(
                    name=name,
                    role=role,
                    capacity=capacity,
                    skills=[WorkerSkill(skill=k, level=v) for k, v in skills.items()],
                )
            )
            added += 1
    return added


# --- what a stand-in answers: as each work type declares it (handoff.core.work_types) ------


STANDIN_ANSWERS: dict[str, Callable[[WorkItem, Session], dict]] = {
    name: kind.standin_answer for name, kind in work_types.WORK_TYPES.items()
}


def standin_answer(item_id: int) -> dict | None:
    """What the item's assignee answers, or None if it has no assignee yet."""
    with session() as s:
        item = s.get(WorkItem, item_id)
        if item is None or item.assignee is None or item.work_type not in STANDIN_ANSWERS:
            return None
        return {"completed_by": item.assignee.name, **STANDIN_ANSWERS[item.work_type](item, s)}
