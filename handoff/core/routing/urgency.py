"""Urgency: how badly a waiting work item needs a person *now*.

The score is apparent tardiness cost (ATC, Vepsalainen & Morton 1987) on a time scale taken
from the item's SLA (and from the queue, in overload), with late work deferred and then aged
so that its lateness is bounded in SLA windows:

    weight   w = priority x (1 + ln(1 + value / VALUE_UNIT))
    base       = w x (p_bar / p) ** SHORTEST_FIRST               (weighted shortest first)
    H          = max(due_at - created_at, k x p_bar, wait)      (the item's time scale)
    slack      = due_at - now - effort                          (< 0: cannot be on time any more)
    on time:   urgency = base x exp(-slack / max(k x p_bar, LOOKAHEAD x H))        (slack >= 0)
    late:      urgency = base x 2 ** ((-slack / H - RESCUE_WINDOWS) / AGING_WINDOWS)  (slack < 0)

- `base` is weighted-shortest-processing-time: important, quick work first; times `p_bar`
  (the mean effort of the waiting work) the score is dimensionless: a normal item (priority 1,
  no value, average effort) that has just run out of slack scores 1.0. Value enters through a
  logarithm so a huge order counts more but cannot starve everything.
- `wait` is the queue's wait (waiting work x p_bar / reps on shift, policy.py), 0 when the
  team is not known. It only matters when it exceeds the SLA window, i.e. in overload.

**Work that can still be on time: ATC with an SLA-sized look-ahead.** ATC's exponential
compares an item's slack with a look-ahead; classic ATC uses k x p_bar (a few jobs' processing,
right for one machine), Lee & Pinedo's parallel-machine ATC(S) scale it to the work competing
for the servers. A back office with SLAs of hours and efforts of minutes needs the SLA's time
scale: an item starts to "care" when a fraction LOOKAHEAD of its window is left (then it has
e^-1 of its maximum). It needs only the item's own fields, so the live router, the SLA watch,
a rep's worklist and the simulator compute the same number.

**Work that can no longer be on time: deferred, then aged.** Modified due date (MDD, Baker &
Bertrand 1982) and ATC give a late item the maximum score at once; COVERT (Carroll 1965) and
critical ratio do the same in their own units. In overload that is the wrong way round:
every overdue item outranks every fresh one, so capacity goes into work that is late anyway
while the fresh work goes late too (Moore-Hodgson's rule for the number of late jobs does the
opposite: it gives up the jobs that cannot make it). So a late item drops to the score a fresh
item has with some of its window left (base x 2^(-RESCUE/AGING)), and then doubles every
AGING_WINDOWS windows late: back at "due now" when RESCUE_WINDOWS windows late, and ahead of
any item whose base is X times its own after RESCUE_WINDOWS + AGING_WINDOWS x log2(X) windows.
That is the bound on lateness: in SLA windows, logarithmic in how much more important the competing work is, and
independent of how long the item has waited before its due date. For aging a window counts
at most the mean window of the work the rep may do (`late_clock`, policy.py's common clock):
otherwise a 2-day validation, measured in its own long windows, could be late for weeks while
short work 3 windows late came first. (The
previous rule added +1 per 8 windows overdue: a long normal item behind quick important work
waited weeks, 845 h on BPIC 2012.) In overload the queue's wait stretches H, so late work ages
on the scale of the backlog rather than of its SLA and the order tends to weighted shortest
first, which finishes the most work (and value) per hour when nothing can be on time.

The parameters (LOOKAHEAD, RESCUE_WINDOWS, AGING_WINDOWS, SHORTEST_FIRST, QUEUE_SCALE,
SCARCITY) were chosen on training workloads only (Northwind, a synthetic multi-skill
workload, ProM's repair example); BPIC 2012 and teleclaims are held out (docs/simulation.md,
bench/bench_push_targets.py).

`aging_seconds=S` gives the score of the first release for comparisons (ATC plus +1 per S
seconds since creation; with `lookahead=0` the classic k x p_bar look-ahead).

Times are floats in seconds (epoch seconds live, simulated seconds in the simulator). Slack,
windows and aging are on the wall clock unless the parameters carry a business clock
(`business_time`: e.g. handoff.core.sla.BusinessClock.positions, or a simulator calendar's).
On one, an item due at Monday's 10:00 has 2 hours of slack at Friday 16:00 on an 09-17 clock,
not 66, and an item late at Friday's close is no later in windows on Monday morning than it
was then. The wall clock stays the default, live and in the simulator, because it met more of
issue 13's targets on the training workloads (`bench_push_targets.py --push-clock business`:
12 of 21 checks against 17 on the wall clock; on-time % rose, 86.6 -> 93.5 on the synthetic
workload at 4 seats, but p95 and worst lateness in wall hours grew: late work aged only while
the office was open, so a night or a weekend no longer lifted it ahead of fresh work; with
lateness itself counted in opening hours it met 13 against the wall clock's 15;
docs/simulation.md). On a business clock, instants more than a year from `now` are taken as a
year away (nothing is due that far out; an item that old is late beyond any window anyway),
so one absurd date cannot make the clock's table centuries of days.

`urgency` scores one item in pure Python; `urgency_many` scores whole columns with numpy for
the bulk re-score (100,000 items in a few milliseconds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the records are only needed for typing (index.py imports this module)
    from handoff.core.routing.index import ItemColumns
    from handoff.core.routing.routable import RoutableItem

K = 2.0  # classic ATC look-ahead in mean efforts: the floor of the look-ahead and of H
LOOKAHEAD = 0.2  # the look-ahead as a fraction of the item's SLA window
RESCUE_WINDOWS = 2.0  # a late item is back at "due now" once this many windows late
AGING_WINDOWS = 0.5  # ...and its score doubles every this many windows late after that
SCARCITY = 1.0  # exponent of (reps on shift / reps who may do it) in a rep's choice (policy.py)
QUEUE_SCALE = 3.0  # the queue's wait (x this) stretches an item's time scale in overload (policy.py)
SHORTEST_FIRST = 1.0  # exponent of p_bar / p: 1 = ATC's weighted-shortest-first
VALUE_UNIT = 1000.0  # currency units at which value starts to count (w doubles at ~1,700)
MIN_EFFORT = 60.0  # seconds; guards the division for items estimated at (almost) nothing
MIN_PRIORITY = 0.01  # a priority of 0 or below is the lowest there is, not "never" (`weight`)
MAX_TERM = 1e12  # the largest priority or value counted (value 1e12: w = 1 + ln(1e9) ~ 21.7)
MAX_EXPONENT = 600.0  # 2**600 ~ 1e180: far beyond any weight, far below float overflow
LN2 = math.log(2.0)  # 2 ** x = e ** (x ln 2): late and on-time items share one exponential
FAR = 366 * 86_400.0  # seconds: instants further from now are taken as this far (module docstring)

# Where instants fall on a business clock: business seconds since an origin that is the same
# for every instant of one call (handoff.core.sla.BusinessClock.positions, or a simulator
# calendar's). Only differences within one call are used.
BusinessTime = Callable[[np.ndarray], np.ndarray]


def weight(priority: float, value: float) -> float:
    """Business weight of an item: priority, raised by (the log of) customer value. A priority
    below MIN_PRIORITY (0, negative, no number) counts as MIN_PRIORITY, a value that is no
    number or below 0 as 0, and both at most MAX_TERM: 0 x inf was NaN, one NaN score left a
    rep with no pick at all, and a weight of 0 never aged (a log's priority-0 items waited for
    ever while anything else was there)."""
    priority = min(priority, MAX_TERM) if priority > MIN_PRIORITY else MIN_PRIORITY  # NaN > x is False
    value = min(value, MAX_TERM) if value > 0.0 else 0.0
    return priority * (1.0 + math.log1p(value / VALUE_UNIT))


def weights(priority: np.ndarray, value: np.ndarray) -> np.ndarray:
    """`weight` of many items (the columns' version; an `ItemPool` keeps it per item, so a
    decision does not work it out again for every waiting item)."""
    return _terms(priority, MIN_PRIORITY) * (1.0 + np.log1p(_terms(value, 0.0) / VALUE_UNIT))


def _terms(x: np.ndarray, least: float) -> np.ndarray:
    """Priorities or values as `weight` reads them: NaN and below `least` as `least`, at most MAX_TERM."""
    return np.fmin(np.fmax(x, least), MAX_TERM)  # fmax takes `least` over NaN (nan_to_num: 20 % of a replay)


def mean_effort(items: Iterable[RoutableItem]) -> float:
    """p_bar: the mean effort of the waiting work (MIN_EFFORT when there is none)."""
    total = 0.0
    n = 0
    for it in items:
        total += max(it.effort_seconds, MIN_EFFORT)
        n += 1
    return total / n if n else MIN_EFFORT


@dataclass(frozen=True)
class UrgencyParameters:
    """The parameters of the formula (see the module docstring); `urgency` and `urgency_many`
    take one, a PushPolicy scores with its own.

    `aging_seconds` set: the old score instead (ATC, +1 per that many seconds since creation).
    `aging_windows=math.inf` switches aging off (for experiments: then late work can starve).
    `business_time`: the clock slack, windows and aging are counted on (None: the wall clock).
    """

    k: float = K
    aging_seconds: float | None = None
    lookahead: float = LOOKAHEAD
    aging_windows: float = AGING_WINDOWS
    rescue_windows: float = RESCUE_WINDOWS
    shortest_first: float = SHORTEST_FIRST
    business_time: BusinessTime | None = None


DEFAULT_PARAMETERS = UrgencyParameters()


def urgency(
    item: RoutableItem,
    now: float,
    p_bar: float,
    parameters: UrgencyParameters = DEFAULT_PARAMETERS,
    wait: float = 0.0,
    late_clock: float | None = None,
) -> float:
    """Urgency of one item at `now` (see the module docstring for the formula)."""
    k, aging_seconds, lookahead = parameters.k, parameters.aging_seconds, parameters.lookahead
    aging_windows, rescue_windows = parameters.aging_windows, parameters.rescue_windows
    shortest_first = parameters.shortest_first
    p = max(item.effort_seconds, MIN_EFFORT)
    p_bar = max(p_bar, MIN_EFFORT)
    floor = k * p_bar
    if parameters.business_time is None:  # the wall clock: no array for one item
        created, due, at = item.created_at, item.due_at, now
    else:
        created, due, at = on_clock(np.array([item.created_at, item.due_at, now]), now, parameters.business_time)
    window = float(due - created)
    horizon = max(window, floor, wait)
    scale = max(floor, lookahead * horizon)
    slack = float(due - p - at)  # the latest start, less now: the columns' order (UrgencyMoment)
    base = weight(item.priority, item.value) * (p_bar / p) ** shortest_first
    if aging_seconds is not None:  # the score before the overload rework (comparisons only)
        return base * math.exp(-max(0.0, slack) / scale) + max(0.0, now - item.created_at) / aging_seconds
    if slack >= 0.0:
        return base * math.exp(-slack / scale)
    if math.isinf(aging_windows):
        return base * 2.0**-rescue_windows if rescue_windows > 0 else base
    if late_clock is not None:
        horizon = max(min(window, late_clock), floor, wait)
    late = -slack / horizon  # windows late if started now
    return base * 2.0 ** min((late - rescue_windows) / aging_windows, MAX_EXPONENT)


def on_clock(times: np.ndarray, now: float, business_time: BusinessTime | None) -> np.ndarray:
    """Instants as push counts them: on the business clock when there is one (positions from
    one origin, each at most FAR from `now`), else as they are."""
    times = np.asarray(times, dtype=float)
    if business_time is None:
        return times
    return business_time(np.clip(times, now - FAR, now + FAR))


def windows(created_at: np.ndarray, due_at: np.ndarray, now: float, business_time: BusinessTime | None) -> np.ndarray:
    """Items' SLA windows (due - created) on push's clock (`on_clock`)."""
    if business_time is None:
        return np.asarray(due_at, dtype=float) - np.asarray(created_at, dtype=float)
    n = len(created_at)
    at = on_clock(np.concatenate((created_at, due_at)), now, business_time)
    return at[n:] - at[:n]


def urgency_columns(
    items: Sequence[RoutableItem],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The columns `urgency_many` scores (priority, value, created_at, due_at, effort_seconds),
    read from items."""

    n = len(items)  # a generator per column: faster than getattr or attrgetter on 3.11
    return (
        np.fromiter((it.priority for it in items), float, n),
        np.fromiter((it.value for it in items), float, n),
        np.fromiter((it.created_at for it in items), float, n),
        np.fromiter((it.due_at for it in items), float, n),
        np.fromiter((it.effort_seconds for it in items), float, n),
    )


def urgency_many(
    priority: np.ndarray,
    value: np.ndarray,
    created_at: np.ndarray,
    due_at: np.ndarray,
    effort_seconds: np.ndarray,
    now: float,
    p_bar: float | None = None,
    parameters: UrgencyParameters = DEFAULT_PARAMETERS,
    wait: float = 0.0,
    late_clock: float | None = None,
) -> np.ndarray:
    """Urgency of many items at once (same formula as `urgency`, vectorised).

    `p_bar` defaults to the mean effort of the items given.
    """
    moment = UrgencyMoment((priority, value, created_at, due_at, effort_seconds), now, parameters.business_time)
    if p_bar is None:
        p_bar = float(moment.p.mean()) if moment.p.size else MIN_EFFORT
    return moment.scores(p_bar, parameters, wait, late_clock)


class UrgencyMoment:
    """What the urgency of many items at one `now` does not owe to the queue (effort, weight,
    slack, window), worked out once: a rep filling several places is scored again after each
    pick with the queue's new mean effort and wait, over the same items. The weight over effort
    is kept between scorings, and on-time and late items share one exponential (2 ** x written
    as e ** (x ln 2)), so a scoring costs one transcendental per item instead of three
    (docs/routing-benchmarks.md). `urgency` scores one item by the same formula; the two agree
    to rounding (tested to 1e-12)."""

    _source: tuple[ItemColumns, np.ndarray]  # a moment `of_pool`: the pool's columns and the slots

    def __init__(
        self,
        columns: tuple[np.ndarray, ...],
        now: float,
        business_time: BusinessTime | None = None,
        weight: np.ndarray | None = None,
    ) -> None:
        """`columns`: priority, value, created_at, due_at, effort_seconds (as `urgency_columns`);
        `business_time`: the clock slack and windows are counted on (`on_clock`); `weight`:
        the items' `weights` when already known (an ItemPool's column)."""
        priority, value, created_at, due_at, effort_seconds = columns
        self.now = now
        self.p = np.maximum(effort_seconds, MIN_EFFORT)
        self.w = weights(priority, value) if weight is None else weight
        self.created_at = created_at
        if business_time is None:
            self.window = due_at - created_at
            self.slack = due_at - self.p - now  # the latest start, less now (as `of_pool`)
        else:
            n = len(created_at)
            at = on_clock(np.concatenate((created_at, due_at, [now])), now, business_time)
            self.window = at[n : 2 * n] - at[:n]
            self.slack = at[n : 2 * n] - self.p - at[-1]
        self.on_time = self.slack >= 0.0
        self._weighted: tuple[float, np.ndarray] | None = None

    @classmethod
    def of_pool(
        cls, columns: ItemColumns, slots: np.ndarray, now: float, business_time: BusinessTime | None = None
    ) -> UrgencyMoment:
        """The moment of a pool's items at `slots`. On the wall clock its window, latest start
        (due - effort) and weight over effort are kept per item by the pool, so a decision
        gathers three columns and subtracts `now` once, instead of gathering six and working
        out weight, effort, window and slack for every waiting item again (push replaying
        BPIC 2012 at two seats spent a third of its time there)."""
        c = columns
        if business_time is not None:
            return cls(
                (c.priority[slots], c.value[slots], c.created_at[slots], c.due_at[slots], c.effort_seconds[slots]),
                now,
                business_time,
                c.weight[slots],
            )
        moment = cls.__new__(cls)
        moment.now = now
        moment.window = c.window[slots]
        moment.slack = c.latest_start[slots] - now
        moment.on_time = moment.slack >= 0.0
        moment._weighted = (1.0, c.per_effort[slots])  # w / p: shortest_first 1
        moment._source = (c, slots)
        return moment

    # A moment `of_pool` gathers these from the pool's columns only if a scoring asks (another
    # shortest-first exponent, the old score); `__init__` sets them outright.
    @cached_property
    def p(self) -> np.ndarray:
        """Effort (floored at MIN_EFFORT)."""
        c, slots = self._source
        return np.maximum(c.effort_seconds[slots], MIN_EFFORT)

    @cached_property
    def w(self) -> np.ndarray:
        """Weight (`weights`)."""
        c, slots = self._source
        return c.weight[slots]

    @cached_property
    def created_at(self) -> np.ndarray:
        c, slots = self._source
        return c.created_at[slots]

    def _per_effort(self, shortest_first: float) -> np.ndarray:
        """w x p ** -shortest_first (kept per exponent: it does not change between picks)."""
        if self._weighted is None or self._weighted[0] != shortest_first:
            self._weighted = (shortest_first, self.w * self.p**-shortest_first)
        return self._weighted[1]

    def scores(
        self,
        p_bar: float,
        parameters: UrgencyParameters = DEFAULT_PARAMETERS,
        wait: float = 0.0,
        late_clock: float | None = None,
    ) -> np.ndarray:
        k, aging_seconds, lookahead = parameters.k, parameters.aging_seconds, parameters.lookahead
        aging_windows, rescue_windows = parameters.aging_windows, parameters.rescue_windows
        shortest_first = parameters.shortest_first
        p_bar = max(p_bar, MIN_EFFORT)
        floor = k * p_bar
        least = max(floor, wait)  # no item's time scale is shorter than this
        horizon = np.maximum(self.window, least)
        scale = np.maximum(horizon * lookahead, floor)
        slack = self.slack
        if aging_seconds is not None:  # the score before the overload rework (comparisons only)
            base = self.w * (p_bar / self.p) ** shortest_first
            return base * np.exp(-np.maximum(slack, 0.0) / scale) + np.maximum(self.now - self.created_at, 0.0) * (
                1.0 / aging_seconds
            )
        base = self._per_effort(shortest_first) * p_bar**shortest_first
        if math.isinf(aging_windows):
            on_time = -np.maximum(slack, 0.0) / scale
            late_factor = 2.0**-rescue_windows if rescue_windows > 0 else 1.0
            return base * np.where(self.on_time, np.exp(on_time), late_factor)
        # Each side is worked out for every item and `where` keeps the right one: -slack / scale
        # is the on-time exponent where slack >= 0, -slack / horizon the windows late where it
        # is < 0 (in place, no clipping at 0: a decision on BPIC's 28,000-item backlog is these
        # few passes).
        on_time = np.divide(slack, scale, out=scale)
        np.negative(on_time, out=on_time)
        if late_clock is not None:
            horizon = np.minimum(self.window, late_clock)
            np.maximum(horizon, least, out=horizon)
        late = np.divide(slack, horizon, out=horizon)
        np.negative(late, out=late)
        late -= rescue_windows
        late /= aging_windows
        np.minimum(late, MAX_EXPONENT, out=late)
        late *= LN2
        exponent = np.where(self.on_time, on_time, late)
        np.exp(exponent, out=exponent)
        exponent *= base
        return exponent
