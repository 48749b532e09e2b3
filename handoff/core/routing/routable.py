"""The work and the people as the routing policies see them.

Plain records, free of the database and of any policy: the live router builds them from rows
(readmodel.py), the simulator from a workload, and every policy (policy.py, baselines.py) and
index (index.py) reads the same fields. Times are plain floats (seconds since the epoch), so the
simulator's clock and the wall clock are interchangeable; skills are names mapped to levels 1..5.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field


@dataclass(slots=True)
class RoutableItem:
    """A human step waiting for (or holding) a person, as the policies see it."""

    id: str
    work_type: str
    required_skills: dict[str, int]
    created_at: float
    due_at: float
    effort_seconds: float
    priority: float = 1.0  # business priority (1 = normal; higher = more important)
    value: float = 0.0  # customer / order value in currency units


@dataclass(slots=True)
class RoutableRep:
    """A person who can take work, as the policies see them."""

    id: str
    skills: dict[str, int]
    capacity: int = 1
    open_items: int = 0
    available: bool = True
    last_assigned_at: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def spare(self) -> int:
        return self.capacity - self.open_items


def is_free(rep: RoutableRep) -> bool:
    """Available and with room for one more item."""
    return rep.available and rep.open_items < rep.capacity
