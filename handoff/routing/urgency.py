"""Urgency: how badly a waiting work item needs a person *now*.

The score is apparent tardiness cost (ATC, Vepsalainen & Morton) plus aging:

    weight   w = priority x (1 + ln(1 + value / VALUE_UNIT))
    slack      = due_at - now - effort                       (seconds; < 0 means late already)
    ATC        = w x (p_bar / p) x exp(-max(0, slack) / (k x p_bar))
    aging      = (now - created_at) / AGING_SECONDS
    urgency    = ATC + aging

- `w / p` is weighted-shortest-processing-time: important, quick work first. Multiplying by
  `p_bar` (the mean effort of the waiting work) makes the score dimensionless: a normal item
  (priority 1, no value, average effort) that has run out of slack scores 1.0.
- The exponential keeps items with plenty of slack quiet and lets them rise steeply as their
  slack shrinks; `k` is the look-ahead (how many average efforts ahead we start to care).
- Value enters through a logarithm so a huge order counts more, but cannot starve everything.
- Aging grows without bound while ATC is bounded per item, so nothing waits for ever: after
  AGING_SECONDS of waiting an item has gained as much as a normal item that is due now.

Times are floats in seconds (epoch seconds live, simulated seconds in the simulator).
`urgency` scores one item in pure Python; `urgency_many` scores whole columns with numpy for
the bulk re-score (100,000 items in a few milliseconds).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np

if TYPE_CHECKING:  # policy.py imports this module; the dataclass is only needed for typing
    from handoff.routing.policy import RoutableItem

K = 2.0  # look-ahead, in multiples of the mean effort
VALUE_UNIT = 1000.0  # currency units at which value starts to count (w doubles at ~1,700)
AGING_SECONDS = 4 * 3600.0  # waiting this long adds 1.0 (a normal item that is due now)
MIN_EFFORT = 60.0  # seconds; guards the division for items estimated at (almost) nothing


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
    aging_seconds: float = AGING_SECONDS,
) -> float:
    """Urgency of one item at `now` (see the module docstring for the formula)."""
    p = max(item.effort_seconds, MIN_EFFORT)
    p_bar = max(p_bar, MIN_EFFORT)
    slack = item.due_at - now - p
    atc = weight(item.priority, item.value) * (p_bar / p) * math.exp(-max(0.0, slack) / (k * p_bar))
    return atc + max(0.0, now - item.created_at) / aging_seconds


def urgency_many(
    priority: np.ndarray,
    value: np.ndarray,
    created_at: np.ndarray,
    due_at: np.ndarray,
    effort_seconds: np.ndarray,
    now: float,
    p_bar: float | None = None,
    k: float = K,
    aging_seconds: float = AGING_SECONDS,
) -> np.ndarray:
    """Urgency of many items at once (same formula as `urgency`, vectorised).

    `p_bar` defaults to the mean effort of the items given.
    """
    p = np.maximum(effort_seconds, MIN_EFFORT)
    if p_bar is None:
        p_bar = float(p.mean()) if p.size else MIN_EFFORT
    p_bar = max(p_bar, MIN_EFFORT)
    w = np.maximum(priority, 0.0) * (1.0 + np.log1p(np.maximum(value, 0.0) / VALUE_UNIT))
    slack = np.maximum(due_at - now - p, 0.0)
    atc = w * (p_bar / p) * np.exp(slack * (-1.0 / (k * p_bar)))
    return atc + np.maximum(now - created_at, 0.0) * (1.0 / aging_seconds)
