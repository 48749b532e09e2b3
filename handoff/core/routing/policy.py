"""Routing policies: who does which human step next.

One module serves the live router (handoff.core.routing.router, backed by the database) and the
simulator (handoff.analytics.simulation), so what the simulator measures is the code that runs live.

Every policy answers the two questions a dispatcher faces:
- an item has just arrived (or was released): which free rep gets it now? (`rep_for`)
- a rep has just freed capacity (or came online): which waiting item do they get? (`item_for`)

Times are plain floats (seconds since the epoch) so the simulator's clock and the wall clock
are interchangeable. Skills are names mapped to levels 1..5.

INTERFACE CONTRACT (kept stable; the simulator and the live router both rely on it):
    RoutableItem, RoutableRep dataclasses (routable.py)
    class Policy(Protocol): name, rep_for(item, reps, now), item_for(rep, items, now)
    POLICIES: dict[str, Callable[[], Policy]] with keys "push", "fifo", "self"
    make_policy(name) -> Policy

The three policies (the domain notes' three ways of handing out work):
- "push" (what handoff does live): items are ordered by urgency (urgency.py: apparent
  tardiness cost on the item's SLA time scale; work that can no longer be on time is deferred,
  then aged so its lateness stays bounded in SLA windows; in overload the time scale stretches
  to the queue's wait). Two rules look at the team (both need it: `ItemPool.team`, set by
  `RoutingIndex`, or `PushPolicy(team=...)`):
  * a rep prefers work few people on shift may do (least-flexible job first): the urgency x
    (reps on shift / reps on shift who may do it) ** SCARCITY, so the few holders of a scarce
    skill are not used up on work anybody could take;
  * an item goes to the eligible free rep whose *other* skills are least needed (sum of
    1 / holders over skills the item does not use; least flexible server first), then the
    least over-qualified (do not burn experts on trivia), then least recently assigned, then
    most spare capacity.
  (The team's scarce skills are counted in scarce_skills.py.)
- "fifo" and "self" (self-selection): the baselines push is measured against (baselines.py).

"Eligible" everywhere means: every required skill at (at least) the required level, available,
and spare capacity. Pass plain lists, or the pools of handoff.core.routing.index.RoutingIndex for
speed: the answers are the same, ties included (ties are broken by fixed keys, never by the
order of the collection; the one exception is self-selection's random pick, which draws from
the eligible free reps in the order the collection lists them). Who is eligible and how ties
are settled is shared by all three (candidates.py).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from itertools import islice
from typing import Protocol

import numpy as np

from handoff.core.routing.baselines import FifoPolicy
from handoff.core.routing.baselines import SelfSelectionPolicy
from handoff.core.routing.candidates import free_candidates
from handoff.core.routing.candidates import pick
from handoff.core.routing.candidates import slots_for
from handoff.core.routing.eligibility import meets
from handoff.core.routing.eligibility import signature
from handoff.core.routing.index import ItemPool
from handoff.core.routing.index import RepPool
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep
from handoff.core.routing.routable import is_free
from handoff.core.routing.scarce_skills import scarce_skills_held
from handoff.core.routing.scarce_skills import scarce_skills_held_by
from handoff.core.routing.scarce_skills import scarcity_factors
from handoff.core.routing.scarce_skills import skill_holders
from handoff.core.routing.urgency import AGING_WINDOWS
from handoff.core.routing.urgency import LOOKAHEAD
from handoff.core.routing.urgency import QUEUE_SCALE
from handoff.core.routing.urgency import RESCUE_WINDOWS
from handoff.core.routing.urgency import SCARCITY
from handoff.core.routing.urgency import SHORTEST_FIRST
from handoff.core.routing.urgency import BusinessTime
from handoff.core.routing.urgency import K
from handoff.core.routing.urgency import UrgencyMoment
from handoff.core.routing.urgency import UrgencyParameters
from handoff.core.routing.urgency import mean_effort
from handoff.core.routing.urgency import urgency
from handoff.core.routing.urgency import urgency_columns
from handoff.core.routing.urgency import urgency_many
from handoff.core.routing.urgency import windows


class Policy(Protocol):
    name: str

    def rep_for(self, item: RoutableItem, reps: Iterable[RoutableRep], now: float) -> RoutableRep | None:
        """The rep who should get this item now, or None if nobody eligible is free."""
        ...

    def item_for(self, rep: RoutableRep, items: Iterable[RoutableItem], now: float) -> RoutableItem | None:
        """The waiting item this rep should get now, or None if none fits them."""
        ...


class PushPolicy:
    """Push by urgency to the best-fitting rep (see the module docstring).

    Urgency parameters (urgency.py): `k` (classic ATC look-ahead in mean efforts, the floor),
    `lookahead` (fraction of the item's SLA window), `rescue_windows` and `aging_windows` (a
    late item is deferred, back at "due now" once `rescue_windows` windows late, then doubles
    every `aging_windows` windows; math.inf = no aging), `shortest_first` (exponent of the
    shortest-first factor p_bar / p). `aging_seconds` set replaces all that by the score before
    the overload rework (ATC, +1 per that many seconds since creation): `PushPolicy(2, 4 *
    3600, lookahead=0)` is the policy of the first release.

    `common_clock` (on by default): in `item_for`, a late item's aging window is at most the
    mean SLA window of the items the rep may do, so long SLAs do not age slower in hours.
    `business_time`: the clock slack, windows and aging are counted on (None: the wall clock,
    as the live router counts; `simulate(..., business_hours=calendar)` replays on a calendar's
    opening hours; urgency.py says why the wall clock is the default).

    Team parameters: `scarcity` (how strongly a rep prefers work few people on shift may do:
    the score x (reps on shift / eligible reps on shift) ** scarcity; 0 = off) and
    `spare_scarce_skills` (an item goes first to the eligible free rep whose *other* skills
    are least scarce). Both need to know the team: `item_for` reads it from an `ItemPool`
    built by a `RoutingIndex` (or `ItemPool.team`), or from `self.team` for plain lists.
    """

    name = "push"

    def __init__(
        self,
        k: float = K,
        aging_seconds: float | None = None,
        *,
        lookahead: float = LOOKAHEAD,
        aging_windows: float = AGING_WINDOWS,
        rescue_windows: float = RESCUE_WINDOWS,
        shortest_first: float = SHORTEST_FIRST,
        scarcity: float = SCARCITY,
        spare_scarce_skills: bool = True,
        queue_scale: float = QUEUE_SCALE,
        common_clock: bool = True,
        team: Iterable[RoutableRep] | None = None,
        business_time: BusinessTime | None = None,
    ) -> None:
        if (
            k <= 0
            or lookahead < 0
            or aging_windows <= 0
            or rescue_windows < 0
            or shortest_first < 0
            or scarcity < 0
            or queue_scale < 0
            or (aging_seconds is not None and aging_seconds <= 0)
        ):
            raise ValueError(
                "k, aging_windows and aging_seconds must be positive; lookahead, rescue_windows, "
                "shortest_first, scarcity and queue_scale >= 0"
            )
        self.k = k
        self.aging_seconds = aging_seconds
        self.lookahead = lookahead
        self.aging_windows = aging_windows
        self.rescue_windows = rescue_windows
        self.shortest_first = shortest_first
        self.scarcity = scarcity
        self.spare_scarce_skills = spare_scarce_skills
        self.queue_scale = queue_scale
        self.common_clock = common_clock
        self.team = team
        self.business_time = business_time

    @staticmethod
    def _item_key(score: float, item: RoutableItem) -> tuple:
        return (-score, item.due_at, item.created_at, item.id)

    # --- which rep gets an item ---------------------------------------------------------------

    def rep_for(self, item: RoutableItem, reps: Iterable[RoutableRep], now: float) -> RoutableRep | None:
        if isinstance(reps, RepPool):
            return self._first_free(self.ranked_reps(reps, item.required_skills))[0]
        reps = list(reps)
        found = free_candidates(item, reps)
        holders = skill_holders(reps) if self.spare_scarce_skills else {}
        if not found:
            return None
        return min(found, key=lambda c: (scarce_skills_held(c[1], item, holders), c[0], *self._rep_key(c[1])))[1]

    def ranked_reps(self, pool: RepPool, required: dict[str, int]) -> list[tuple[float, int, RoutableRep]]:
        """(scarce skills held, over-qualification, rep) for every rep who may do this kind of
        work, in that order (ties in the pool's order): the order `rep_for` hands it out in.
        Both depend only on skills, so the ranking is built once per kind of work until the
        team's skills change (a router builds them when it loads); a decision then only looks
        for the first free reps in it."""

        def rank() -> list[tuple[float, int, RoutableRep]]:
            holders = pool.holders() if self.spare_scarce_skills else {}
            ranked = [
                (scarce_skills_held_by(r, required, holders), over, pos, r)
                for over, pos, r in pool.candidates(required)
            ]
            ranked.sort(key=lambda c: (c[0], c[1], c[2]))
            return [(scarce, over, r) for scarce, over, _, r in ranked]

        return pool.memo(("push-ranking", signature(required), self.spare_scarce_skills), rank)

    def rep_in_round(self, item: RoutableItem, pool: RepPool, full_heads: dict) -> RoutableRep | None:
        """`rep_for` in a round of decisions during which reps only fill up (sla-watch routing
        a whole backlog): `full_heads` remembers, per kind of work, how many reps at the head
        of its ranking were found full, and the next decision starts after them. Without it a
        round over a large backlog walked past the same thousands of full reps for every item.
        The caller empties `full_heads` whenever reps may have freed places (a refresh)."""
        ranked = self.ranked_reps(pool, item.required_skills)
        kind = signature(item.required_skills)
        seen = full_heads.get(kind)
        rep, head = self._first_free(ranked, seen[1] if seen is not None and seen[0] is ranked else 0)
        full_heads[kind] = (ranked, head)
        return rep

    def _first_free(
        self, ranked: list[tuple[float, int, RoutableRep]], start: int = 0
    ) -> tuple[RoutableRep | None, int]:
        """The free rep first by (scarce skills held, over-qualification, then `_rep_key`):
        the first free rep in the ranking, or one tied with them on both that comes first by
        `_rep_key`; and how many reps at the ranking's head are full (searched from `start`,
        the reps before it known full)."""
        best: RoutableRep | None = None
        best_key: tuple = ()
        lead: tuple[float, int] | None = None
        head = start
        for pos, (scarce, over, r) in enumerate(islice(ranked, start, None), start):
            if lead is not None and (scarce, over) != lead:
                break
            if is_free(r):
                key = self._rep_key(r)
                if best is None or key < best_key:
                    best, best_key, lead = r, key, (scarce, over)
            elif best is None:
                head = pos + 1
        return best, head

    @staticmethod
    def _rep_key(rep: RoutableRep) -> tuple:
        return (rep.last_assigned_at, -rep.spare, rep.id)

    # --- which item a rep gets ----------------------------------------------------------------

    def item_for(self, rep: RoutableRep, items: Iterable[RoutableItem], now: float) -> RoutableItem | None:
        if isinstance(items, ItemPool):
            return next(self._best_items(rep, items, now), None)
        if not is_free(rep):
            return None
        pool = list(items)
        p_bar = mean_effort(pool)
        eligible = [it for it in pool if meets(rep.skills, it.required_skills)]
        if not eligible:
            return None
        wait = self._queue_wait(self.team, len(pool), p_bar)
        clock = None
        if self.common_clock:
            created, due = urgency_columns(eligible)[2:4]
            clock = float(windows(created, due, now, self.business_time).mean())
        scores = [self.score(it, now, p_bar, wait, clock) for it in eligible]
        if self.scarcity > 0 and self.team is not None:
            kinds = {signature(it.required_skills): it.required_skills for it in eligible}
            if len(kinds) > 1:
                keys = sorted(kinds)
                factor_of = dict(zip(keys, scarcity_factors(self.team, [kinds[g] for g in keys], self.scarcity)))
                scores = [s * float(factor_of[signature(it.required_skills)]) for s, it in zip(scores, eligible)]
        return min(zip(scores, eligible), key=lambda si: self._item_key(*si))[1]

    def items_for(self, rep: RoutableRep, pool: ItemPool, now: float, count: int) -> list[tuple[RoutableItem, float]]:
        """What `item_for` answers `count` times in a row when each answer leaves the pool
        before the next question (a rep filling several places), with the urgency (`score`)
        each had when chosen. The answers are exactly those; the rep's eligible items and
        their columns are read once, not once per place. The items are removed from `pool`."""
        out: list[tuple[RoutableItem, float]] = []
        if count <= 0:
            return out
        for item in self._best_items(rep, pool, now):
            out.append((item, self.score(item, now, pool.mean_effort)))
            pool.remove(item.id)
            if len(out) == count:
                break
        return out

    def _best_items(self, rep: RoutableRep, items: ItemPool, now: float) -> Iterator[RoutableItem]:
        """The item `item_for` gives this rep, then (once the caller has removed it from the
        pool) the next one, and so on: each answer is scored afresh against the pool as it is
        then (its mean effort and waiting count), over the rep's eligible items read once."""
        slots = slots_for(rep, items)
        if slots is None:
            return
        c = items.columns
        team = items.team if items.team is not None else self.team
        on_shift = team.on_shift_mask() if isinstance(team, RepPool) else None  # read once per decision
        moment = UrgencyMoment.of_pool(c, slots, now, self.business_time)
        factor = self._scarcity_by_slot(items, team, on_shift, c.signature[slots])
        parameters = self.urgency_parameters()
        taken = np.zeros(slots.size, dtype=bool)  # picked meanwhile: never the answer again
        for picked in range(slots.size):
            p_bar = items.mean_effort
            # the late clock is the mean SLA window of the items still there, summed as the
            # same items alone would be (a fresh item_for), so the answers are its answers
            window = moment.window[~taken] if picked else moment.window
            scores = moment.scores(
                p_bar,
                parameters,
                wait=self._queue_wait(team, items.waiting, p_bar, on_shift),
                late_clock=float(window.mean()) if self.common_clock else None,
            )
            if factor is not None:
                scores *= factor  # a fresh array: in place
            if picked:
                scores[taken] = -np.inf
            best = scores.max()
            item = pick(
                items,
                slots,
                scores,
                best,
                lambda it, top=float(best): self._item_key(top, it),
                ("due_at", "created_at"),
            )
            slot = items.slot_of(item.id)
            assert slot is not None  # picked from the pool's slots just now
            yield item
            if item.id in items:
                return  # the caller left it in the pool: the next answer would be the same
            taken[np.searchsorted(slots, slot)] = True  # slots ascend (eligible_slots)

    def ranking_scores(self, rep: RoutableRep, pool: ItemPool, items: Sequence[RoutableItem], now: float) -> np.ndarray:
        """The urgency `item_for` ranks by, for these items (a rep's worklist): scored as the
        rep's next pick would be, with the same queue wait, late clock and scarce-skill factor,
        so the number a rep sees is the one that ranks their work."""
        if not items:
            return np.zeros(0)
        team = pool.team if pool.team is not None else self.team
        on_shift = team.on_shift_mask() if isinstance(team, RepPool) else None
        p_bar = pool.mean_effort
        slots = pool.eligible_slots(rep.skills)
        c = pool.columns
        clock = None
        if self.common_clock and slots.size:
            clock = float(windows(c.created_at[slots], c.due_at[slots], now, self.business_time).mean())
        scores = self.score_many(
            *urgency_columns(items),
            now,
            p_bar,
            wait=self._queue_wait(team, pool.waiting, p_bar, on_shift),
            late_clock=clock,
        )
        if self.scarcity > 0 and team is not None:
            kinds = {signature(it.required_skills): it.required_skills for it in items}
            keys = sorted(kinds)
            factor_of = dict(zip(keys, scarcity_factors(team, [kinds[k] for k in keys], self.scarcity, on_shift)))
            scores = scores * np.array([factor_of[signature(it.required_skills)] for it in items])
        return scores

    def _scarcity_by_slot(
        self, items: ItemPool, team: Iterable[RoutableRep] | None, on_shift: np.ndarray | None, sigs: np.ndarray
    ) -> np.ndarray | None:
        """The scarce-skill factor of each eligible item (None: the rule is off or the team unknown)."""
        if self.scarcity <= 0 or team is None:
            return None
        if isinstance(team, RepPool) and on_shift is not None:
            # every kind's factor at once, from the pool's (kind x rep) eligibility
            eligible = np.maximum(items.eligible_counts(team, on_shift), 1.0)
            return ((float(max(int(on_shift.sum()), 1)) / eligible) ** self.scarcity)[sigs]
        present = np.unique(sigs)
        if present.size <= 1:  # one kind of work: scarcity cannot change the order
            return None
        factor = scarcity_factors(team, [items.requirements(int(g)) for g in present], self.scarcity)
        return factor[np.searchsorted(present, sigs)]

    def _queue_wait(
        self, team: Iterable[RoutableRep] | None, waiting: int, p_bar: float, mask: np.ndarray | None = None
    ) -> float:
        """The wait the queue imposes (queue_scale x waiting work / reps on shift, seconds): an
        item's time scale is its SLA window, or this when longer (overload). Needs the team
        (`mask`: its `on_shift_mask`, when already read); a team of one (a router that loaded
        just the asking rep) is taken as unknown."""
        if self.queue_scale <= 0 or team is None:
            return 0.0
        on_shift = int(mask.sum()) if mask is not None else sum(1 for r in team if r.available)
        if on_shift < 2:
            return 0.0
        return self.queue_scale * p_bar * waiting / on_shift

    def score(
        self, item: RoutableItem, now: float, p_bar: float, wait: float = 0.0, late_clock: float | None = None
    ) -> float:
        """This policy's urgency of one item (p_bar: mean effort of the waiting work; wait: the
        queue's wait, see `_queue_wait`)."""
        return urgency(item, now, p_bar, self.urgency_parameters(), wait, late_clock)

    def score_many(
        self,
        priority,
        value,
        created_at,
        due_at,
        effort_seconds,
        now: float,  # noqa: ANN001
        p_bar: float | None = None,
        wait: float = 0.0,
        late_clock: float | None = None,
    ):  # noqa: ANN201
        """`score` of many items at once (numpy columns), with this policy's parameters: the
        router and the SLA watch rank by exactly what the policy ranks by (before the team's
        scarcity factor, which depends on who is on shift)."""
        return urgency_many(
            priority,
            value,
            created_at,
            due_at,
            effort_seconds,
            now,
            p_bar,
            self.urgency_parameters(),
            wait,
            late_clock,
        )

    def urgency_parameters(self) -> UrgencyParameters:
        """This policy's parameters of the urgency formula: `score` and `score_many` use one set."""
        return UrgencyParameters(
            self.k,
            self.aging_seconds,
            self.lookahead,
            self.aging_windows,
            self.rescue_windows,
            self.shortest_first,
            self.business_time,
        )


POLICIES: dict[str, Callable[[], Policy]] = {
    "push": PushPolicy,
    "fifo": FifoPolicy,
    "self": SelfSelectionPolicy,
}


def make_policy(name: str) -> Policy:
    """A fresh policy by name ("push", "fifo" or "self")."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown routing policy {name!r}; choose one of {', '.join(POLICIES)}") from None
