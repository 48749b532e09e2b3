"""Indexes that make one routing decision cheap when thousands of items wait.

A dispatcher asks two questions many times a minute (see policy.py). Scanning every waiting
item in Python for each question costs ~10 ms at 10,000 items; these indexes answer in well
under a millisecond:

- `ItemPool` keeps the waiting items as numpy columns (due, effort, priority, value, created)
  and buckets them by *skill signature* (the exact set of required skills and levels). A rep's
  eligibility is decided once per signature, not per item, and cached per skill profile; the
  eligible items are then scored in one vectorised pass.
- `RepPool` keeps the reps' skill levels as a matrix, so the reps who hold an item's skills are
  found with a few column comparisons and cached per signature, already sorted by how
  over-qualified they are. Availability and spare capacity are read live from the
  `RoutableRep` objects, so a caller (the simulator) may change those fields in place; after
  changing a rep's *skills*, call `RepPool.update(rep)`.
- `RoutingIndex` bundles both, with `assign` / `release` to keep them in step.

Both pools are plain iterables of the dataclasses, so they can be passed anywhere the Policy
protocol takes `Iterable[RoutableItem]` / `Iterable[RoutableRep]`; the policies recognise them
and take the fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import numpy as np

from handoff.core.routing.eligibility import Signature
from handoff.core.routing.eligibility import signature
from handoff.core.routing.urgency import MIN_EFFORT
from handoff.core.routing.urgency import weights

if TYPE_CHECKING:  # the records (routable.py) are only needed for typing
    from handoff.core.routing.routable import RoutableItem
    from handoff.core.routing.routable import RoutableRep

T = TypeVar("T")
# The float columns, one value per slot (see ItemColumns).
_COLUMNS = ("_created", "_due", "_effort", "_priority", "_value", "_weight", "_per_effort", "_latest_start", "_window")


@dataclass(frozen=True, slots=True)
class ItemColumns:
    """Views on the pool's columns, indexed by slot (use with `eligible_slots`)."""

    created_at: np.ndarray
    due_at: np.ndarray
    effort_seconds: np.ndarray
    priority: np.ndarray
    value: np.ndarray
    signature: np.ndarray  # id of the item's skill requirements (see ItemPool.requirements)
    weight: np.ndarray  # urgency.weights(priority, value): kept, not worked out per decision
    per_effort: np.ndarray  # weight / effort (floored at MIN_EFFORT): weighted shortest first
    latest_start: np.ndarray  # due_at - effort (floored): slack is this less now
    window: np.ndarray  # due_at - created_at


class ItemPool:
    """Waiting work items, columnar and bucketed by skill signature."""

    def __init__(self, items: Iterable[RoutableItem] = (), capacity: int = 1024) -> None:
        self._items: list[RoutableItem | None] = []
        self._slot_of: dict[str, int] = {}
        self._free: list[int] = []
        self._cap = max(16, capacity)
        self._created = np.zeros(self._cap)
        self._due = np.zeros(self._cap)
        self._effort = np.zeros(self._cap)
        self._priority = np.zeros(self._cap)
        self._value = np.zeros(self._cap)
        self._weight = np.zeros(self._cap)
        self._per_effort = np.zeros(self._cap)
        self._latest_start = np.zeros(self._cap)
        self._window = np.zeros(self._cap)
        self._ids = np.empty(self._cap, dtype=object)  # item ids by slot: `pick` settles big ties on them
        self._underived: list[int] = []  # slots added one by one since the columns were last read
        self._outside_effort, self._outside_n = 0.0, 0  # see count_also
        self._sig = np.zeros(self._cap, dtype=np.int32)
        self._alive = np.zeros(self._cap, dtype=bool)
        self._sigs: list[dict[str, int]] = []
        self._sig_id: dict[Signature, int] = {}
        self._ok: dict[Signature, np.ndarray] = {}  # rep skill profile -> ok per signature
        self._requirements: tuple[dict[str, int], np.ndarray] | None = None  # see _requirement_matrix
        self._eligible_reps: tuple[RepPool, int, np.ndarray] | None = None  # see eligible_reps (0/1 floats)
        self._eligible_counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see eligible_counts
        self._effort_sum = 0.0
        # The reps this pool's items are routed to, when known (RoutingIndex sets it): lets a
        # policy see how many people on shift may do an item (push's scarce-skill rule).
        self.team: RepPool | None = None
        self.add_many(items)

    # --- membership -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot_of)

    def __iter__(self) -> Iterator[RoutableItem]:
        for slot in list(self._slot_of.values()):  # arrival order
            item = self._items[slot]
            if item is not None:
                yield item

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._slot_of

    def get(self, item_id: str) -> RoutableItem | None:
        slot = self._slot_of.get(item_id)
        return None if slot is None else self._items[slot]

    def add(self, item: RoutableItem) -> None:
        """Add (or replace) an item; replacing re-reads its requirements and times."""
        if item.id in self._slot_of:
            self.remove(item.id)
        if self._free:
            slot = self._free.pop()
        else:
            slot = len(self._items)
            self._items.append(None)
            if slot >= self._cap:
                self._grow()
        key = signature(item.required_skills)
        sig = self._sig_id.get(key)
        if sig is None:
            sig = self._sig_id[key] = len(self._sigs)
            self._sigs.append(dict(item.required_skills))
        self._items[slot] = item
        self._ids[slot] = item.id
        self._slot_of[item.id] = slot
        self._created[slot] = item.created_at
        self._due[slot] = item.due_at
        self._effort[slot] = item.effort_seconds
        self._priority[slot] = item.priority
        self._value[slot] = item.value
        self._underived.append(slot)  # worked out with the next read of the columns, in one pass
        self._sig[slot] = sig
        self._alive[slot] = True
        self._effort_sum += max(item.effort_seconds, MIN_EFFORT)

    update = add

    def add_many(self, items: Iterable[RoutableItem]) -> None:
        """Add many items at once: the columns are filled in bulk (10,000 items in a few ms)."""
        batch = list(items)
        ids = [it.id for it in batch]
        if len(set(ids)) != len(ids) or any(i in self._slot_of for i in ids):
            for item in batch:  # replacements and duplicates: one by one keeps the rules simple
                self.add(item)
            return
        n, start = len(batch), len(self._items)
        while start + n > self._cap:
            self._grow()
        sigs: dict[int, int] = {}  # id(requirements dict) -> signature id; items often share one
        sig_of = np.empty(n, dtype=np.int32)
        for k, item in enumerate(batch):
            sig = sigs.get(id(item.required_skills))
            if sig is None:
                key = signature(item.required_skills)
                sig = self._sig_id.get(key)
                if sig is None:
                    sig = self._sig_id[key] = len(self._sigs)
                    self._sigs.append(dict(item.required_skills))
                sigs[id(item.required_skills)] = sig
            sig_of[k] = sig
        span = slice(start, start + n)
        self._items.extend(batch)
        self._ids[span] = ids
        self._slot_of.update(zip(ids, range(start, start + n)))
        self._created[span] = [it.created_at for it in batch]
        self._due[span] = [it.due_at for it in batch]
        self._effort[span] = [it.effort_seconds for it in batch]
        self._priority[span] = [it.priority for it in batch]
        self._value[span] = [it.value for it in batch]
        self._derive(span)
        self._sig[span] = sig_of
        self._alive[span] = True
        self._effort_sum += float(np.maximum(self._effort[span], MIN_EFFORT).sum())

    def _derive(self, span: slice | np.ndarray) -> None:
        """The columns worked out from the item's own fields (what `UrgencyMoment.of_pool`
        reads), the same numpy operations as `UrgencyMoment` applies to a batch."""
        effort = np.maximum(self._effort[span], MIN_EFFORT)
        self._weight[span] = weights(self._priority[span], self._value[span])
        self._per_effort[span] = self._weight[span] * effort**-1.0
        self._latest_start[span] = self._due[span] - effort
        self._window[span] = self._due[span] - self._created[span]

    def remove(self, item_id: str) -> RoutableItem | None:
        slot = self._slot_of.pop(item_id, None)
        if slot is None:
            return None
        item = self._items[slot]
        self._items[slot] = None
        self._alive[slot] = False
        self._free.append(slot)
        self._effort_sum -= max(self._effort[slot], MIN_EFFORT)
        if not self._slot_of:
            self._effort_sum = 0.0  # no drift when the pool empties
        return item

    def _grow(self) -> None:
        self._cap *= 2
        for name in (*_COLUMNS, "_sig", "_alive", "_ids"):
            old = getattr(self, name)
            new = np.zeros(self._cap, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    # --- queries ---------------------------------------------------------------------------

    @property
    def mean_effort(self) -> float:
        """p_bar of the urgency score: the mean (floored) effort of the waiting items."""
        n = len(self._slot_of) + self._outside_n
        return (self._effort_sum + self._outside_effort) / n if n else MIN_EFFORT

    @property
    def waiting(self) -> int:
        """Waiting items, with those counted in from outside (`count_also`)."""
        return len(self._slot_of) + self._outside_n

    def count_also(self, floored_effort_sum: float, n: int) -> None:
        """Waiting items left out of this pool (a rep cannot do them) that still count in
        `mean_effort`, so a pool of one rep's eligible items scores as the whole queue does."""
        self._outside_effort, self._outside_n = max(floored_effort_sum, 0.0), max(n, 0)

    @property
    def columns(self) -> ItemColumns:
        if self._underived:  # a live refresh re-adds thousands of items one by one: derive them at once
            self._derive(np.array(self._underived, dtype=np.intp))
            self._underived.clear()
        return ItemColumns(
            self._created,
            self._due,
            self._effort,
            self._priority,
            self._value,
            self._sig,
            self._weight,
            self._per_effort,
            self._latest_start,
            self._window,
        )

    def kinds(self) -> list[dict[str, int]]:
        """Every kind of work (skill requirements) the pool has held, by signature id."""
        return list(self._sigs)

    def requirements(self, signature_id: int) -> dict[str, int]:
        """The skill requirements behind a value of `columns.signature`."""
        return self._sigs[signature_id]

    def slot_of(self, item_id: str) -> int | None:
        """The slot of a waiting item (see `columns`), None if it is not waiting."""
        return self._slot_of.get(item_id)

    def item_at(self, slot: int) -> RoutableItem:
        item = self._items[slot]
        assert item is not None, "slot is empty"
        return item

    def ids_at(self, slots: np.ndarray) -> np.ndarray:
        """The ids of the items at these slots (an object array)."""
        return self._ids[slots]

    def slots(self) -> np.ndarray:
        """Slots of every waiting item (use with `columns` and `item_at`)."""
        return np.flatnonzero(self._alive[: len(self._items)])

    def eligible_slots(self, skills: dict[str, int]) -> np.ndarray:
        """Slots of the waiting items a rep with these skills may take."""
        hi = len(self._items)
        if not self._slot_of:
            return np.empty(0, dtype=np.intp)
        ok = self._ok_for(skills)
        return np.flatnonzero(ok[self._sig[:hi]] & self._alive[:hi])

    def eligible_reps(self, team: RepPool) -> np.ndarray:
        """(signature id x rep position), 1.0 where that rep of `team` may do that kind of work
        this pool has seen, else 0.0 (floats: a product with a mask counts them in one BLAS
        call). Kept until the team's skills change; a new kind of work adds a row."""
        generation = team.skills_generation()
        cached = self._eligible_reps
        if cached is None or cached[0] is not team or cached[1] != generation:
            matrix = np.zeros((0, len(team)), dtype=np.float32)
        else:
            matrix = cached[2]
        if matrix.shape[0] < len(self._sigs):
            rows = np.zeros((len(self._sigs) - matrix.shape[0], len(team)), dtype=np.float32)
            for i, sig in enumerate(range(matrix.shape[0], len(self._sigs))):
                rows[i, team.candidate_positions(self._sigs[sig])] = 1.0
            matrix = np.vstack((matrix, rows))
            self._eligible_reps = (team, generation, matrix)
        return matrix

    def eligible_counts(self, team: RepPool, on_shift: np.ndarray) -> np.ndarray:
        """How many of the reps marked in `on_shift` may do each kind of work (by signature
        id). Kept while the mask, the kinds and the team's skills stay the same (shifts change
        by the minute, decisions by the millisecond): the product behind it is a threaded BLAS
        call at thousands of reps, whose spinning threads would take a core from the database."""
        matrix = self.eligible_reps(team)
        cached = self._eligible_counts
        if (
            cached is not None
            and cached[0] is matrix
            and cached[1].shape == on_shift.shape
            and np.array_equal(cached[1], on_shift)
        ):
            return cached[2]
        counts = np.rint(matrix @ on_shift.astype(np.float32)).astype(np.float64)
        self._eligible_counts = (matrix, on_shift.copy(), counts)
        return counts

    def _ok_for(self, skills: dict[str, int]) -> np.ndarray:
        """Which kinds of work (by signature id) a rep with these skills may do (`meets`, for
        every kind at once against the kinds' requirement matrix; kept per skill profile)."""
        key = signature(skills)
        ok = self._ok.get(key)
        if ok is None or ok.size < len(self._sigs):
            names, levels = self._requirement_matrix()
            held = np.zeros(len(names), dtype=np.int32)
            for skill, level in skills.items():
                col = names.get(skill)
                if col is not None:
                    held[col] = level
            ok = np.asarray((levels <= held).all(axis=1), dtype=bool)
            self._ok[key] = ok
        return ok

    def _requirement_matrix(self) -> tuple[dict[str, int], np.ndarray]:
        """(skill -> column, kinds x skills required levels, 0 where a kind needs no such skill)."""
        built = self._requirements
        if built is None or built[1].shape[0] < len(self._sigs):
            names = {s: i for i, s in enumerate(sorted({s for kind in self._sigs for s in kind}))}
            levels = np.zeros((len(self._sigs), len(names)), dtype=np.int32)
            for row, kind in enumerate(self._sigs):
                for skill, level in kind.items():
                    levels[row, names[skill]] = level
            self._requirements = built = (names, levels)
        return built


class RepPool:
    """Reps with a skill matrix; eligible-by-skill reps are cached per item signature."""

    def __init__(self, reps: Iterable[RoutableRep] = ()) -> None:
        self._reps: list[RoutableRep] = []
        self._pos: dict[str, int] = {}
        self._dirty = True
        self._skill_col: dict[str, int] = {}
        self._levels = np.zeros((0, 0), dtype=np.int16)
        self._candidates: dict[Signature, list[tuple[int, int, RoutableRep]]] = {}
        self._memo: dict[Hashable, Any] = {}
        self._generation = 0  # bumped whenever the skill matrix is rebuilt
        self._holders: dict[str, int] = {}
        for rep in reps:
            self.add(rep)

    def __len__(self) -> int:
        return len(self._reps)

    def __iter__(self) -> Iterator[RoutableRep]:
        return iter(self._reps)

    def get(self, rep_id: str) -> RoutableRep | None:
        pos = self._pos.get(rep_id)
        return None if pos is None else self._reps[pos]

    def add(self, rep: RoutableRep) -> None:
        """Add a rep, or replace the one with the same id (re-reading their skills)."""
        pos = self._pos.get(rep.id)
        if pos is None:
            self._pos[rep.id] = len(self._reps)
            self._reps.append(rep)
        else:
            self._reps[pos] = rep
        self._dirty = True

    update = add

    def remove(self, rep_id: str) -> RoutableRep | None:
        pos = self._pos.pop(rep_id, None)
        if pos is None:
            return None
        rep = self._reps.pop(pos)
        self._pos = {r.id: i for i, r in enumerate(self._reps)}
        self._dirty = True
        return rep

    def _rebuild(self) -> None:
        names = sorted({s for r in self._reps for s in r.skills})
        self._skill_col = {s: i for i, s in enumerate(names)}
        levels = np.zeros((len(self._reps), len(names)), dtype=np.int16)
        for i, rep in enumerate(self._reps):
            for s, lvl in rep.skills.items():
                levels[i, self._skill_col[s]] = lvl
        self._levels = levels
        self._holders = dict(zip(names, (levels > 0).sum(axis=0).tolist()))
        self._candidates.clear()
        self._memo.clear()
        self._generation += 1
        self._dirty = False

    def holders(self) -> dict[str, int]:
        """How many reps hold each skill (at any level), on shift or not."""
        if self._dirty:
            self._rebuild()
        return self._holders

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """A value derived from the reps' skills (a policy's ranking of the candidates for one
        kind of work), built once and kept until a rep joins, leaves or changes skills."""
        if self._dirty:
            self._rebuild()
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def skills_generation(self) -> int:
        """Changes whenever a rep joins, leaves or changes skills (for caches derived from skills)."""
        if self._dirty:
            self._rebuild()
        return self._generation

    def on_shift_mask(self) -> np.ndarray:
        """Which reps are available, in the pool's order. Read afresh on every call: availability
        is each rep's own attribute, set by whoever keeps the clock (the simulator, the index)."""
        return np.fromiter((r.available for r in self._reps), bool, len(self._reps))

    def candidate_positions(self, required: dict[str, int]) -> np.ndarray:
        """Pool positions of the reps holding the required skills (index `on_shift_mask` with it)."""
        return self.memo(
            ("positions", signature(required)),
            lambda: np.array([pos for _, pos, _ in self.candidates(required)], dtype=np.intp),
        )

    def candidates(self, required: dict[str, int]) -> list[tuple[int, int, RoutableRep]]:
        """(over-qualification, position, rep) for every rep holding the required skills at
        the required levels, least over-qualified first. Availability is not checked here."""
        if self._dirty:
            self._rebuild()
        key = signature(required)
        found = self._candidates.get(key)
        if found is None:
            mask = np.ones(len(self._reps), dtype=bool)
            over = np.zeros(len(self._reps), dtype=np.int64)
            for skill, level in key:
                col = self._skill_col.get(skill)
                if col is None:
                    mask[:] = False
                    break
                mask &= self._levels[:, col] >= level
                over += self._levels[:, col] - level
            positions = np.flatnonzero(mask)
            order = positions[np.argsort(over[positions], kind="stable")]
            found = [(int(over[p]), int(p), self._reps[p]) for p in order]
            self._candidates[key] = found
        return found


class RoutingIndex:
    """The waiting items and the reps, indexed together for the policies.

    Pass `index.items` as `items` to `Policy.item_for` and `index.reps` as `reps` to
    `Policy.rep_for`; record decisions with `assign` and completions with `release`.
    """

    def __init__(self, items: Iterable[RoutableItem] = (), reps: Iterable[RoutableRep] = ()) -> None:
        self.items = ItemPool(items)
        self.reps = RepPool(reps)
        self.items.team = self.reps

    def assign(self, item_id: str, rep_id: str, now: float) -> None:
        """The item leaves the waiting pool and takes a unit of the rep's capacity."""
        self.items.remove(item_id)
        rep = self.reps.get(rep_id)
        if rep is not None:
            rep.open_items += 1
            rep.last_assigned_at = now

    def release(self, rep_id: str) -> None:
        """A rep finished (or gave back) an item: one unit of capacity is free again."""
        rep = self.reps.get(rep_id)
        if rep is not None and rep.open_items > 0:
            rep.open_items -= 1
