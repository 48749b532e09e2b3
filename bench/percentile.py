"""The one percentile every bench reports: nearest rank, p given in percent (50, 95, 99)."""

from __future__ import annotations

import math


def pct(values: list[float], p: float) -> float | None:
    """The nearest-rank p-th percentile of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
