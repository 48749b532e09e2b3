"""The two ways of handing out work that push is measured against (the domain notes' other two).

- "fifo": a rep gets the oldest item they are eligible for; an item goes to the eligible rep
  who has waited longest for work (fewest open items, then least recently assigned).
- "self" (self-selection): a rep takes the quickest item they may do (people pick the easy
  work); an item goes to a random eligible free rep (whoever grabs it first), drawn from a
  seeded RNG so simulations repeat.

They answer the same Policy protocol as push (policy.py, whose `make_policy` builds all three),
so the simulator compares like with like.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Iterable

from handoff.core.routing.candidates import free_candidates
from handoff.core.routing.candidates import pick
from handoff.core.routing.candidates import slots_for
from handoff.core.routing.eligibility import meets
from handoff.core.routing.index import ItemPool
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep
from handoff.core.routing.routable import is_free


def _oldest_first(item: RoutableItem) -> tuple:
    return (item.created_at, item.id)


def _quickest_first(item: RoutableItem) -> tuple:
    return (item.effort_seconds, item.created_at, item.id)


def _first_eligible(
    rep: RoutableRep, items: Iterable[RoutableItem], column: str, key: Callable, then: tuple[str, ...] = ()
) -> RoutableItem | None:
    """The item a free rep may do that comes first by `key`, whose leading field is `column`
    (from an ItemPool: the least `column` in numpy, ties by `then` and `key`, see `pick`)."""
    if isinstance(items, ItemPool):
        slots = slots_for(rep, items)
        if slots is None:
            return None
        values = getattr(items.columns, column)[slots]
        return pick(items, slots, values, values.min(), key, then)
    if not is_free(rep):
        return None
    eligible = [it for it in items if meets(rep.skills, it.required_skills)]
    return min(eligible, key=key) if eligible else None


class FifoPolicy:
    """First in, first out: arrival order, to whoever has waited longest for work."""

    name = "fifo"

    def rep_for(self, item: RoutableItem, reps: Iterable[RoutableRep], now: float) -> RoutableRep | None:
        found = free_candidates(item, reps)
        if not found:
            return None
        return min((r for _, r in found), key=lambda r: (r.open_items, r.last_assigned_at, r.id))

    def item_for(self, rep: RoutableRep, items: Iterable[RoutableItem], now: float) -> RoutableItem | None:
        return _first_eligible(rep, items, "created_at", _oldest_first)


class SelfSelectionPolicy:
    """Self-selection: people take the quickest work they may do; new work goes to whoever
    grabs it first (a random eligible free rep, from an RNG seeded for repeatable runs)."""

    name = "self"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def rep_for(self, item: RoutableItem, reps: Iterable[RoutableRep], now: float) -> RoutableRep | None:
        found = free_candidates(item, reps)
        if not found:
            return None
        return self.rng.choice(found)[1]

    def item_for(self, rep: RoutableRep, items: Iterable[RoutableItem], now: float) -> RoutableItem | None:
        return _first_eligible(rep, items, "effort_seconds", _quickest_first, ("created_at",))
