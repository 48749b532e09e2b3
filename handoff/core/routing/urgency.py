"""Urgency: how badly a waiting work item needs a person *now*.

The score is apparent tardiness cost (ATC, Vepsalainen & Morton 1987) with its look-ahead
measured on the item's SLA, plus aging that starts at the due date:

    weight   w = priority x (1 + ln(1 + value / VALUE_UNIT))
    horizon  H = max(due_at - created_at, k x p_bar)            (the item's SLA window)
    slack      = due_at - now - effort                          (seconds; < 0: must start now)
    look-ahead = max(k x p_bar, LOOKAHEAD x H)
    ATC        = w x (p_bar / p) x exp(-max(0, slack) / look-ahead)
    aging      = max(0, now - due_at) / (AGING_WINDOWS x H)      (0 until the item is overdue)
    urgency    = ATC + aging

- `w / p` is weighted-shortest-processing-time: important, quick work first. Multiplying by
  `p_bar` (the mean effort of the waiting work) makes the score dimensionless: a normal item
  (priority 1, no value, average effort) that has run out of slack scores 1.0.
- Value enters through a logarithm so a huge order counts more, but cannot starve everything.

**Why the look-ahead is a fraction of the SLA window.** ATC's exponential compares an item's
slack with a look-ahead `k x p_bar`. On one machine that is the right scale: an item is at
risk when its slack is worth a few jobs' processing. Vepsalainen & Morton (Management Science
33(8), 1987) introduced k as a look-ahead parameter (small values, around 2, in their job-shop
tests) and noted it should grow with how loose and spread the due dates are; Pinedo's
"Scheduling" textbook sets it from the due-date tightness and range. The ATCS rule (Lee,
Bhaskaran & Pinedo 1997) derives k from due-date tightness and range *relative to the
makespan*, and the parallel-machine version (Lee & Pinedo 1997) estimates that makespan as
roughly n x p_bar / m. The principle in all of them: the look-ahead must be on the time scale
of the work competing for the servers, not of one job. A back office with SLAs of hours and
efforts of minutes breaks the single-machine scale: in BPIC 2012 k x p_bar is ~12 minutes, so
ATC only wakes up minutes before the due time and scores everything else as about zero. We use the SLA window instead: an item starts to "care" when a
fraction LOOKAHEAD of its window is left (at that point its ATC is e^-1 of its maximum). The
SLA is the organisation's statement of the time scale on which that work matters, and a team
staffed to meet it drains its queue well within it, so slack is compared with the right clock.
We chose it over the queue-length version of the parallel-machine idea (k x p_bar x waiting /
reps) for two reasons: (1) it needs only the item's own fields, so the live router, the SLA
watch's re-score, a rep's worklist and the simulator all compute the same score without being
told how many reps are on shift; (2) on the training scenarios it did about as well (mean
on-time 90.9 % vs 90.9-91.5 %: better on Northwind in overload, worse on synthetic) and its
worst case was longer (bench/sweep_push_parameters.py, docs/simulation.md). `k x p_bar` stays
as the floor (classic ATC) for SLAs only a few efforts long.

**Why aging starts at the due date and is measured in SLA windows.** Aging exists so that
nothing starves: ATC is bounded per item (at `w x p_bar / p`), so without aging a long,
low-priority item that is already late can be overtaken for ever by quick or important work
that falls due after it. Aging counted from creation at a fixed rate (the old +1 per 4 h)
swamped the due dates: with SLAs of 4-24 opening hours, an item had gained more from waiting
than from its deadline long before it was due, and push ranked by age, like FIFO. Counting
from the due date in units of the item's own SLA window keeps the ATC ordering untouched for
everything that can still be on time (aging is exactly 0 before due) and grows without bound
after: an item AGING_WINDOWS of its SLA windows overdue has gained as much as a normal item
that is due now. "One window late" means the same for a 4-hour lead and a 2-day validation.
The rate is a trade between the tail (worst lateness) and on-time % / value-weighted lateness;
LOOKAHEAD and AGING_WINDOWS were chosen by the sweep on synthetic and Northwind workloads only
(highest mean on-time % whose worst-case lateness is no worse than self-selection's), with
BPIC 2012 held out for validation - see docs/simulation.md. Known limit, seen on BPIC: for a
long SLA (2-day validations) A windows is weeks, so in a long peak, and with a skill only a
few reps hold, the worst-off items wait longer than under self-selection (845 h vs 410 h),
though far fewer items are very late.

The old behaviour is one call away: `lookahead=0` gives the classic `k x p_bar` look-ahead and
`aging_seconds=S` the old aging from creation (+1 per S seconds waited).

Times are floats in seconds (epoch seconds live, simulated seconds in the simulator).
`urgency` scores one item in pure Python; `urgency_many` scores whole columns with numpy for
the bulk re-score (100,000 items in a few milliseconds).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np

if TYPE_CHECKING:  # policy.py imports this module; the dataclass is only needed for typing
    from handoff.core.routing.policy import RoutableItem

K = 2.0  # classic ATC look-ahead in mean efforts: the floor of the look-ahead and of H
LOOKAHEAD = 0.2  # the look-ahead as a fraction of the item's SLA window
RESCUE_WINDOWS = 1.0  # a late item is back at "due now" once this many windows late
AGING_WINDOWS = 0.5  # ...and its score doubles every this many windows late after that
SCARCITY = 1.0  # exponent of (reps on shift / reps who may do it) in a rep's choice (policy.py)
SHORTEST_FIRST = 1.0  # exponent of p_bar / p: 1 = ATC's weighted-shortest-first
VALUE_UNIT = 1000.0  # currency units at which value starts to count (w doubles at ~1,700)
MIN_EFFORT = 60.0  # seconds; guards the division for items estimated at (almost) nothing
MAX_EXPONENT = 600.0  # 2**600 ~ 1e180: far beyond any weight, far below float overflow


def weight(priority: float, value: float) -> float:
    """Business weight of an item: priority, raised by (the log of) customer value."""
    return max(priority, 0.0) * (1.0 + math.log1p(max(value, 0.0) / VALUE_UNIT))


def mean_effort(items: Iterable[RoutableItem]) -> float:
    """p_bar: the mean effort of the waiting work (MIN_EFFORT when there is none)."""
    total = 0.0
    n = 0
    for it in items:
        total += max(it.effort_seconds, MIN_EFFORT)
        n += 1
    return total / n if n else MIN_EFFORT


def urgency(
    item: RoutableItem,
    now: float,
    p_bar: float,
    k: float = K,
    aging_seconds: float | None = None,
    lookahead: float = LOOKAHEAD,
    aging_windows: float = AGING_WINDOWS,
    rescue_windows: float = RESCUE_WINDOWS,
    shortest_first: float = SHORTEST_FIRST,
) -> float:
    """Urgency of one item at `now` (see the module docstring for the formula).

    `aging_seconds` set: the old score instead (ATC, +1 per that many seconds since creation).
    `aging_windows=math.inf` switches aging off (for experiments: then late work can starve).
    """
    p = max(item.effort_seconds, MIN_EFFORT)
    p_bar = max(p_bar, MIN_EFFORT)
    floor = k * p_bar
    horizon = max(item.due_at - item.created_at, floor)
    scale = max(floor, lookahead * horizon)
    slack = item.due_at - now - p
    base = weight(item.priority, item.value) * (p_bar / p) ** shortest_first
    if aging_seconds is not None:  # the score before the overload rework (comparisons only)
        return base * math.exp(-max(0.0, slack) / scale) + max(0.0, now - item.created_at) / aging_seconds
    if slack >= 0.0:
        return base * math.exp(-slack / scale)
    if math.isinf(aging_windows):
        return base * 2.0 ** -rescue_windows if rescue_windows > 0 else base
    late = -slack / horizon  # windows late if started now
    return base * 2.0 ** min((late - rescue_windows) / aging_windows, MAX_EXPONENT)


def urgency_many(
    priority: np.ndarray,
    value: np.ndarray,
    created_at: np.ndarray,
    due_at: np.ndarray,
    effort_seconds: np.ndarray,
    now: float,
    p_bar: float | None = None,
    k: float = K,
    aging_seconds: float | None = None,
    lookahead: float = LOOKAHEAD,
    aging_windows: float = AGING_WINDOWS,
    rescue_windows: float = RESCUE_WINDOWS,
    shortest_first: float = SHORTEST_FIRST,
) -> np.ndarray:
    """Urgency of many items at once (same formula as `urgency`, vectorised).

    `p_bar` defaults to the mean effort of the items given.
    """
    p = np.maximum(effort_seconds, MIN_EFFORT)
    if p_bar is None:
        p_bar = float(p.mean()) if p.size else MIN_EFFORT
    p_bar = max(p_bar, MIN_EFFORT)
    floor = k * p_bar
    horizon = np.maximum(due_at - created_at, floor)
    scale = np.maximum(horizon * lookahead, floor)
    w = np.maximum(priority, 0.0) * (1.0 + np.log1p(np.maximum(value, 0.0) / VALUE_UNIT))
    base = w * (p_bar / p) ** shortest_first
    slack = due_at - now - p
    if aging_seconds is not None:
        return base * np.exp(-np.maximum(slack, 0.0) / scale) + np.maximum(now - created_at, 0.0) * (1.0 / aging_seconds)
    on_time = base * np.exp(-np.maximum(slack, 0.0) / scale)
    if math.isinf(aging_windows):
        late_factor = 2.0 ** -rescue_windows if rescue_windows > 0 else 1.0
        return np.where(slack >= 0.0, on_time, base * late_factor)
    late = np.maximum(-slack, 0.0) / horizon
    return np.where(slack >= 0.0, on_time,
                    base * np.exp2(np.minimum((late - rescue_windows) / aging_windows, MAX_EXPONENT)))
