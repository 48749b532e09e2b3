"""Replay a workload under a routing policy: a discrete-event simulation (simpy).

What happens, in business terms:
- Work items arrive at their recorded (or generated) times. An item that follows another step
  of the same order (`after`) is released only when that step is done.
- When an item arrives, the policy is asked which *free* rep gets it (`rep_for`); if nobody
  suitable is free it waits in the pool.
- When a rep frees capacity or comes on shift, the policy is asked which waiting item that rep
  gets next (`item_for`), until the rep is full or nothing fits.
- A rep works only inside their calendar (shift). **Work in hand at the end of a shift is
  finished by the rep** (no interruption, no hand-back): that is what back-office people
  normally do with a short task, and it keeps every handling time as recorded. The overtime
  shows up as utilisation a little above what the shift alone would give.

The policies are the live ones: `handoff.core.routing.policy.make_policy(name)` builds them and the
simulator hands them the same `ItemPool` / `RepPool` indexes the live router uses, so what is
measured here is the code that runs in production, not a copy of it. The simulator keeps the
pools current (availability and open items are changed in place on the `RoutableRep`s).

Reproducible: the engine itself draws no random numbers; items are processed in arrival order
(ties by input order) and a policy's own RNG (self-selection's "whoever grabs it first") is
reseeded from `seed`. Same inputs and seed give the same result, to the last digit.

Clock: seconds on the workload's local wall clock (see calendar.py). Metrics in hours.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import simpy

from handoff.analytics.simulation.calendar import ALWAYS_OPEN
from handoff.analytics.simulation.calendar import DAY
from handoff.analytics.simulation.calendar import Calendar
from handoff.analytics.simulation.results import SimulationResult
from handoff.core.routing.index import RoutingIndex
from handoff.core.routing.policy import Policy
from handoff.core.routing.policy import make_policy
from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep


@dataclass(slots=True)
class WorkItem:
    """One human step to replay."""

    id: str
    work_type: str
    required_skills: dict[str, int]
    arrival: float  # when the step becomes ready (seconds, workload clock)
    handling_seconds: float  # actual touch time when someone works it
    due: float  # when it must be done
    priority: float = 1.0
    value: float = 0.0
    # What the router *believes* the effort is (e.g. the mean for the type). None = the actual
    # handling time, i.e. a clairvoyant router; workloads set an estimate to stay honest.
    effort_estimate: float | None = None
    after: str | None = None  # id of the step that must be finished first (same order)


@dataclass(slots=True)
class RepSpec:
    """One person (or a staffed seat) in the simulated team."""

    id: str
    skills: dict[str, int]
    capacity: int = 1
    calendar: Calendar = ALWAYS_OPEN


def simulate(
    items: Sequence[WorkItem],
    reps: Sequence[RepSpec],
    policy: str | Policy,
    *,
    seed: int = 0,
    start: float | None = None,
    horizon: float | None = None,
    drain_seconds: float = 14 * DAY,
    sample_every: float = 3600.0,
    indexed: bool = True,
    business_hours: Calendar | None = None,
) -> SimulationResult:
    """Replay `items` with team `reps` under `policy` (a name for make_policy, or an object).

    The run starts at `start` (default: first arrival) and stops when every item is done or at
    `horizon` (default: last arrival + `drain_seconds`), whichever comes first.

    `indexed=False` hands the policies plain lists instead of the routing index's pools, so they
    take their reference scan: slow, and there for tests that the fast path changes nothing.

    `business_hours`: opening hours for push to count slack, windows and aging on (the ones
    the items' due dates were counted in); default the wall clock, as push counts live
    (routing/urgency.py: on the training workloads the business clock met fewer targets). A
    policy given with a `business_time` of its own keeps it; one without is copied, not changed.
    """
    wall0 = time.perf_counter()
    if isinstance(policy, str):
        policy = make_policy(policy)
    policy = _on_business_clock(policy, business_hours)
    rng = getattr(policy, "rng", None)
    if isinstance(rng, random.Random):
        rng.seed(seed)
    if not reps:
        raise ValueError("a simulation needs at least one rep")
    order = sorted(range(len(items)), key=lambda i: items[i].arrival)
    items = [items[i] for i in order]
    n = len(items)
    t0 = start if start is not None else (items[0].arrival if items else 0.0)
    last = items[-1].arrival if items else t0
    t_end = horizon if horizon is not None else last + drain_seconds

    sim = _Run(items, reps, policy, t0, t_end, sample_every, indexed)
    sim.run()

    busy = np.array(sim.busy, dtype=float)
    for i in range(n):  # work still in hand at the end counts as busy up to the end
        if not math.isnan(sim.start[i]) and math.isnan(sim.finish[i]):
            busy[sim.rep_of[i]] += sim.env.now - sim.start[i]
    end = sim.env.now
    shift = np.array([r.calendar.open_seconds(t0, end) for r in reps], dtype=float)
    return SimulationResult(
        policy=getattr(policy, "name", type(policy).__name__),
        items=items,
        reps=list(reps),
        ready=np.array(sim.ready),
        start=np.array(sim.start),
        finish=np.array(sim.finish),
        rep_index=np.array(sim.rep_of),
        busy_seconds=busy,
        shift_seconds=shift,
        backlog_times=np.array(sim.sample_t),
        backlog_waiting=np.array(sim.sample_waiting),
        t0=t0,
        end=end,
        wall_seconds=time.perf_counter() - wall0,
        policy_calls=sim.calls,
    )


def _on_business_clock(policy: Policy, hours: Calendar | None) -> Policy:
    """The policy counting on `hours`, if given and the policy takes a business clock and has
    none of its own: a copy, so a policy object reused across replays is left as it was."""
    if hours is None or getattr(policy, "business_time", False) is not None:  # False: takes none
        return policy
    policy = copy.copy(policy)
    setattr(policy, "business_time", hours.positions)  # noqa: B010 (not every Policy has it)
    return policy


class _Run:
    """The mutable state of one replay (kept out of `simulate` so the callbacks stay small)."""

    def __init__(
        self,
        items: list[WorkItem],
        reps: Sequence[RepSpec],
        policy: Policy,
        t0: float,
        t_end: float,
        sample_every: float,
        indexed: bool = True,
    ) -> None:
        self.items = items
        self.specs = reps
        self.policy = policy
        self.t0, self.t_end, self.sample_every = t0, t_end, sample_every
        self.indexed = indexed
        self.env = simpy.Environment(initial_time=t0)
        n = len(items)
        self.ritems = [
            RoutableItem(
                id=it.id,
                work_type=it.work_type,
                required_skills=it.required_skills,
                created_at=it.arrival,
                due_at=it.due,
                effort_seconds=it.handling_seconds if it.effort_estimate is None else it.effort_estimate,
                priority=it.priority,
                value=it.value,
            )
            for it in items
        ]
        self.pos = {it.id: i for i, it in enumerate(items)}
        if len(self.pos) != n:
            raise ValueError("work item ids must be unique")
        self.reps = [RoutableRep(id=r.id, skills=dict(r.skills), capacity=r.capacity, available=False) for r in reps]
        self.rep_pos = {r.id: k for k, r in enumerate(self.reps)}
        if len(self.rep_pos) != len(self.reps):
            raise ValueError("rep ids must be unique")
        if not indexed and hasattr(policy, "team"):
            policy.team = self.reps  # the plain scan is told the team the index would know
        self.index = RoutingIndex(reps=self.reps)
        self.pool = self.index.items
        self.dependents: dict[int, list[int]] = {}
        self.held: set[int] = set()  # arrived, but waiting for their predecessor
        for i, it in enumerate(items):
            if it.after is not None and it.after in self.pos:
                self.dependents.setdefault(self.pos[it.after], []).append(i)
        self.ready = [math.nan] * n
        self.start = [math.nan] * n
        self.finish = [math.nan] * n
        self.rep_of = [-1] * n
        self.busy = [0.0] * len(self.reps)
        self.n_free = 0
        self.completed = 0
        self.calls = 0
        self.sample_t: list[float] = []
        self.sample_waiting: list[int] = []
        self.stop = self.env.event()

    # --- processes ----------------------------------------------------------------------------

    def run(self) -> None:
        env = self.env
        for k, spec in enumerate(self.specs):
            env.process(self._shifts(k, spec.calendar))
        env.process(self._arrivals())
        env.process(self._sampler())
        env.timeout(max(0.0, self.t_end - self.t0)).callbacks.append(self._time_up)
        if not self.items:
            self.stop.succeed()
        env.run(until=self.stop)

    def _time_up(self, _event: simpy.Event) -> None:
        if not self.stop.triggered:
            self.stop.succeed()

    def _arrivals(self):
        env = self.env
        for i, it in enumerate(self.items):
            if it.arrival > env.now:
                yield env.timeout(it.arrival - env.now)
            if it.after is not None and it.after in self.pos and math.isnan(self.finish[self.pos[it.after]]):
                self.held.add(i)  # released when its predecessor finishes
                continue
            self.ready[i] = env.now
            self._offer_item(i)

    def _shifts(self, k: int, calendar: Calendar):
        env = self.env
        for s, e in calendar.intervals(self.t0, self.t_end):
            if s > env.now:
                yield env.timeout(s - env.now)
            self._set_available(k, True)
            self._offer_rep(k)
            yield env.timeout(e - env.now)
            self._set_available(k, False)

    def _sampler(self):
        env = self.env
        while True:
            self.sample_t.append(env.now)
            self.sample_waiting.append(len(self.pool))
            yield env.timeout(self.sample_every)

    # --- dispatch -----------------------------------------------------------------------------

    def _is_free(self, rep: RoutableRep) -> bool:
        return rep.available and rep.open_items < rep.capacity

    def _set_available(self, k: int, available: bool) -> None:
        rep = self.reps[k]
        before = self._is_free(rep)
        rep.available = available
        self.n_free += self._is_free(rep) - before

    def _offer_item(self, i: int) -> None:
        """An item is ready: the policy picks a free rep, or it waits in the pool."""
        ritem = self.ritems[i]
        if self.n_free > 0:
            self.calls += 1
            reps = self.index.reps if self.indexed else list(self.index.reps)
            rep = self.policy.rep_for(ritem, reps, self.env.now)
            if rep is not None:
                self._start(self.rep_pos[rep.id], i)
                return
        self.pool.add(ritem)

    def _offer_rep(self, k: int) -> None:
        """A rep has room: the policy picks their next item from the pool, until full or none fits."""
        rep = self.reps[k]
        while self._is_free(rep) and len(self.pool):
            self.calls += 1
            ritem = self.policy.item_for(rep, self.pool if self.indexed else list(self.pool), self.env.now)
            if ritem is None:
                return
            self._start(k, self.pos[ritem.id])

    def _start(self, k: int, i: int) -> None:
        rep = self.reps[k]
        if not self._is_free(rep):
            raise RuntimeError(f"policy {self.policy!r} chose {rep.id}, who has no room")
        self.index.assign(self.ritems[i].id, rep.id, self.env.now)  # leaves the pool, takes capacity
        if not self._is_free(rep):
            self.n_free -= 1
        now = self.env.now
        self.start[i] = now
        self.rep_of[i] = k
        done = self.env.timeout(self.items[i].handling_seconds)
        done.callbacks.append(partial(self._finish, k, i))

    def _finish(self, k: int, i: int, _event: simpy.Event) -> None:
        now = self.env.now
        self.finish[i] = now
        self.busy[k] += self.items[i].handling_seconds
        rep = self.reps[k]
        before = self._is_free(rep)
        self.index.release(rep.id)
        self.n_free += self._is_free(rep) - before
        self.completed += 1
        # Steps that waited for this one become ready now; they join the pool first so the
        # freed rep's choice sees them, then any left over are offered to other free reps.
        released = [j for j in self.dependents.get(i, ()) if j in self.held]
        self.held.difference_update(released)
        for j in released:
            self.ready[j] = now
            self.ritems[j].created_at = now
            self.pool.add(self.ritems[j])
        self._offer_rep(k)
        for j in released:
            if self.ritems[j].id in self.pool and self.n_free > 0:
                self.pool.remove(self.ritems[j].id)
                self._offer_item(j)
        if self.completed == len(self.items) and not self.stop.triggered:
            self.stop.succeed()
