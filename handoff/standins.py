"""Stand-in reps for the demo and tests: Northwind's staff, with skills that cover every work
type, so a first-time user sees work pushed to people without setting up a team first.
"""

from __future__ import annotations

from sqlalchemy import select

from handoff.db import session
from handoff.models import Worker, WorkerSkill

# name, role, capacity, {skill: level}
STANDIN_REPS: list[tuple[str, str, int, dict[str, int]]] = [
    ("Nancy Davolio", "rep", 4, {"order-entry": 3, "credit": 2, "billing": 2}),
    ("Janet Leverling", "rep", 4, {"order-entry": 2, "quotation": 3, "billing": 3}),
    ("Margaret Peacock", "rep", 4, {"order-entry": 3, "provisioning": 3, "activation": 2}),
    ("Steven Buchanan", "supervisor", 2, {"order-entry": 5, "credit": 4, "quotation": 4, "billing": 4,
                                         "provisioning": 3, "activation": 3, "handoff": 4}),
    ("Michael Suyama", "rep", 4, {"order-entry": 2, "activation": 3, "provisioning": 2}),
    ("Robert King", "rep", 4, {"order-entry": 1, "provisioning": 3, "handoff": 3}),
    ("Laura Callahan", "rep", 4, {"order-entry": 3, "credit": 3, "quotation": 2}),
    ("Anne Dodsworth", "rep", 4, {"billing": 3, "activation": 2, "handoff": 3}),
    ("Andrew Fuller", "supervisor", 2, {"order-entry": 5, "handoff": 5, "quotation": 5, "credit": 5}),
]


def ensure_standin_reps() -> int:
    """Add the stand-in reps that are missing; returns how many were added."""
    added = 0
    with session() as s:
        known = set(s.scalars(select(Worker.name)))
        for name, role, capacity, skills in STANDIN_REPS:
            if name in known:
                continue
            s.add(Worker(name=name, role=role, capacity=capacity,
                         skills=[WorkerSkill(skill=k, level=v) for k, v in skills.items()]))
            added += 1
    return added
