"""Who may take what, now: the ground every routing policy answers from.

The eligible free reps for an item, the slots of the waiting items a free rep may take, and the
tie-break between equally good items. Push (policy.py) and the baselines (baselines.py) share
them, so they agree on who is eligible and settle ties alike, whether handed plain lists or the
pools of index.py.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable

import numpy as np

from handoff.core.routing.eligibility import meets
from handoff.core.routing.eligibility import overqualification
from handoff.core.routing.index import ItemPool
from handoff.core.routing.index import RepPool
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep
from handoff.core.routing.routable import is_free


def free_candidates(item: RoutableItem, reps: Iterable[RoutableRep]) -> list[tuple[int, RoutableRep]]:
    """(over-qualification, rep) for the eligible free reps, in the order given."""
    if isinstance(reps, RepPool):
        found = [(over, pos, r) for over, pos, r in reps.candidates(item.required_skills) if is_free(r)]
        found.sort(key=lambda c: c[1])
        return [(over, r) for over, _, r in found]
    return [
        (overqualification(r.skills, item.required_skills), r)
        for r in reps
        if is_free(r) and meets(r.skills, item.required_skills)
    ]


def slots_for(rep: RoutableRep, pool: ItemPool) -> np.ndarray | None:
    """The slots of the pool's items the rep may take now; None when they are not free or may
    do none of the waiting work."""
    if not is_free(rep):
        return None
    slots = pool.eligible_slots(rep.skills)
    return slots if slots.size else None


BIG_TIE = 32  # ties among more items than this are settled on the id column, not the key


def pick(
    pool: ItemPool, slots: np.ndarray, values: np.ndarray, best: float, key: Callable, then: tuple[str, ...] = ()
) -> RoutableItem:
    """The item at the slot holding `best`; exact ties settled by `key`, as the scan does.

    `then` names the columns `key` compares next, in order: ties are narrowed on them in numpy
    first (successive minima = the lexicographic minimum), so `key` only sees the few left. Every
    item of a work type has the same effort estimate, so thousands may tie: narrowing in Python
    cost a self-selection replay of BPIC 2012 minutes of CPU. What is still tied after `then`
    differs only in the id, the last field of every caller's key; more than BIG_TIE such items
    (a log whose rows share one timestamp: 20,000 of them took 30 s) are settled by the least id
    in one numpy pass over the pool's id column, the same item `key` would choose."""
    winners = slots[values == best]
    if winners.size > 1 and then:
        columns = pool.columns
        for name in then:
            column = getattr(columns, name)[winners]
            winners = winners[column == column.min()]
            if winners.size == 1:
                break
    if winners.size == 1:
        return pool.item_at(int(winners[0]))
    if winners.size > BIG_TIE:  # every caller's key ends in the item id: the least id wins
        return pool.item_at(int(winners[np.argmin(pool.ids_at(winners))]))
    return min((pool.item_at(int(s)) for s in winners), key=key)
