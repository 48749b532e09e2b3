"""The seeded world both routing measurements run on: open work items and reps with mixed skills
at a fixed simulated present (NOW), the same for every run of a seed, so the in-memory decisions
(bench_routing.py) and the live database (routing_live.py) time the same work.
"""

from __future__ import annotations

import random

from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep

SKILLS = [
    "order-approval",
    "credit-review",
    "discount-approval",
    "provisioning-visit",
    "activation-confirmation",
    "invoice-approval",
    "checklist-fix",
    "handoff-signoff-sales",
    "handoff-signoff-operations",
]
NOW = 1_795_000_000.0
HOUR = 3600.0


def make_world(n_items: int, n_reps: int, seed: int = 42) -> tuple[list[RoutableItem], list[RoutableRep]]:
    rng = random.Random(seed)
    items = []
    for i in range(n_items):
        kind = rng.choice(SKILLS)
        need = {kind: rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 1])[0]}
        if rng.random() < 0.25:
            other = rng.choice(SKILLS)
            need.setdefault(other, rng.choice([1, 2]))
        items.append(
            RoutableItem(
                id=f"w{i}",
                work_type=kind,
                required_skills=need,
                created_at=NOW - rng.uniform(0, 48 * HOUR),
                due_at=NOW + rng.uniform(-2 * HOUR, 5 * 24 * HOUR),
                effort_seconds=rng.choice([120, 300, 600, 900, 1800, 3600, 7200]),
                priority=rng.choice([1, 1, 1, 2, 3]),
                value=rng.choice([0, 0, 500, 2_000, 10_000, 80_000]),
            )
        )
    reps = []
    for j in range(n_reps):
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(2, 5))}
        capacity = rng.randint(2, 5)
        reps.append(
            RoutableRep(
                id=f"r{j}",
                skills=skills,
                capacity=capacity,
                open_items=rng.randint(0, capacity - 1),
                available=rng.random() < 0.9,
                last_assigned_at=NOW - rng.uniform(0, 4 * HOUR),
            )
        )
    return items, reps
