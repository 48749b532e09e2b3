"""A synthetic workload: Poisson arrivals, exponential or lognormal handling, due = arrival + SLA.

Used by the queueing-theory checks (always open, one type) and as a multi-skill workload whose
every parameter is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from handoff.analytics.simulation.calendar import ALWAYS_OPEN
from handoff.analytics.simulation.calendar import Calendar
from handoff.analytics.simulation.engine import WorkItem
from handoff.analytics.simulation.workload import SkillProfile
from handoff.analytics.simulation.workload import Workload


@dataclass(frozen=True)
class TypeSpec:
    """One work type of a synthetic workload."""

    name: str
    share: float  # of arrivals
    mean_handling_seconds: float
    sla_seconds: float
    priority: float = 1.0
    mean_value: float = 0.0
    handling: str = "exponential"  # or "lognormal"
    cv: float = 1.0  # lognormal only


DEFAULT_TYPES = (
    TypeSpec("order entry", 0.5, 300.0, 4 * 3600, 1.0, 1500.0),
    TypeSpec("provisioning", 0.3, 600.0, 8 * 3600, 1.0, 1500.0),
    TypeSpec("billing query", 0.2, 240.0, 2 * 3600, 2.0, 500.0),
)


def synthetic_workload(
    n_items: int = 5000,
    arrivals_per_hour: float = 30.0,
    types: Sequence[TypeSpec] = DEFAULT_TYPES,
    calendar: Calendar = ALWAYS_OPEN,
    seed: int = 0,
    start: float = 0.0,
    skills_per_rep: int | None = None,
) -> Workload:
    """Poisson arrivals (exponential gaps, during opening hours), exponential or lognormal
    handling, due = arrival + SLA (in opening time of `calendar`), value exponential around the
    type's mean. Reps hold `skills_per_rep` of the types (all when None) at levels 1-3; the
    router's effort estimate is the type's mean. Always-open by default (queueing-theory checks)."""
    if n_items < 1 or arrivals_per_hour <= 0:
        raise ValueError("need at least one item and a positive arrival rate")
    rng = np.random.default_rng(seed)
    shares = np.array([t.share for t in types], dtype=float)
    shares /= shares.sum()
    gaps = rng.exponential(3600.0 / arrivals_per_hour, n_items)
    open_times = np.cumsum(gaps)  # arrivals in *open* seconds, mapped onto the calendar below
    kinds = rng.choice(len(types), size=n_items, p=shares)
    items = []
    for i in range(n_items):
        t = types[kinds[i]]
        if t.handling == "lognormal":
            sigma = math.sqrt(math.log(1 + t.cv**2))
            h = float(rng.lognormal(math.log(t.mean_handling_seconds) - sigma**2 / 2, sigma))
        else:
            h = float(rng.exponential(t.mean_handling_seconds))
        arrival = calendar.add_open_seconds(start, float(open_times[i]))
        items.append(
            WorkItem(
                id=f"s{i}",
                work_type=t.name,
                required_skills={t.name: 1},
                arrival=arrival,
                handling_seconds=h,
                due=calendar.add_open_seconds(arrival, t.sla_seconds),
                priority=t.priority,
                value=float(rng.exponential(t.mean_value)) if t.mean_value > 0 else 0.0,
                effort_estimate=t.mean_handling_seconds,
            )
        )
    k = len(types) if skills_per_rep is None else max(1, min(skills_per_rep, len(types)))
    profiles = []
    for j in range(30):
        chosen = rng.choice(len(types), size=k, replace=False)
        profiles.append(SkillProfile({types[c].name: int(rng.integers(1, 4)) for c in chosen}, 1.0, f"synthetic{j}"))
    notes = [
        f"{n_items} items, Poisson arrivals {arrivals_per_hour:g}/open hour, "
        + ", ".join(
            f"{t.name} {t.share:.0%} ({t.handling}, mean {t.mean_handling_seconds:g}s, SLA {t.sla_seconds / 3600:g}h)"
            for t in types
        ),
        f"calendar: {calendar.describe()}; reps hold {k} of {len(types)} types at levels 1-3",
    ]
    sla = {t.name: f"{t.sla_seconds / 3600:g} h" for t in types}
    return Workload("synthetic", items, calendar, profiles, notes, sla)
