"""The team's scarce skills, as the push policy weighs them.

How many reps hold each skill, how much the team would miss a rep's other skills while they do
an item, and how few of the reps on shift may do a kind of work. Push (policy.py) uses them both
ways round: a rep prefers work few people may do, and an item goes to the rep whose other
skills are least needed, so the few holders of a scarce skill are not used up on work anybody
could take.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from handoff.core.routing.eligibility import meets
from handoff.core.routing.index import RepPool
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep


def skill_holders(reps: Iterable[RoutableRep]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reps:
        for s, lvl in r.skills.items():
            if lvl > 0:
                out[s] = out.get(s, 0) + 1
    return out


def scarce_skills_held(rep: RoutableRep, item: RoutableItem, holders: dict[str, int]) -> float:
    """How much the team would miss this rep's *other* skills while they do this item:
    the sum of 1 / holders over the skills the item does not need (0 for a specialist)."""
    return scarce_skills_held_by(rep, item.required_skills, holders)


def scarce_skills_held_by(rep: RoutableRep, required: dict[str, int], holders: dict[str, int]) -> float:
    if not holders:
        return 0.0
    return round(
        sum(1.0 / holders[s] for s, lvl in rep.skills.items() if lvl > 0 and s not in required and holders.get(s)),
        9,
    )


def scarcity_factors(
    team: Iterable[RoutableRep], kinds: list[dict[str, int]], strength: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """(reps on shift / reps on shift who may do it) ** strength, per kind of requirements:
    work few people may do goes first with those few, so they are not used up on work
    anybody could take. (`mask`: the pool's `on_shift_mask`, when already read.)"""
    if isinstance(team, RepPool):
        if mask is None:
            mask = team.on_shift_mask()
        on_shift = int(mask.sum())
        eligible = [int(mask[team.candidate_positions(req)].sum()) for req in kinds]
    else:
        members = [r for r in team if r.available]
        on_shift = len(members)
        eligible = [sum(1 for r in members if meets(r.skills, req)) for req in kinds]
    return np.array([(max(on_shift, 1) / max(n, 1)) ** strength for n in eligible])
