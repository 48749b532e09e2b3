"""What one replay produced (`SimulationResult`) and what a team lead reads from it (`Metrics`).

Lateness is tardiness (finish - due, 0 when on time); work unfinished at the end of the run
counts as late by at least end - due (a lower bound). Value-weighted lateness weights each item's
tardiness by its value (falls back to the mean when no item has a value).
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING

import numpy as np

from handoff.core.routing.urgency import MAX_TERM

if TYPE_CHECKING:
    from handoff.analytics.simulation.engine import RepSpec
    from handoff.analytics.simulation.engine import WorkItem


def value_weights(values: np.ndarray) -> np.ndarray:
    """Values as value-weighted lateness weighs them, as push weighs them (urgency.weight):
    below 0 or no number as 0, at most MAX_TERM. A value of 1e308 made the weighted sum
    infinite, and the JSON output said Infinity and NaN, which is not JSON."""
    return np.fmin(np.fmax(np.asarray(values, dtype=float), 0.0), MAX_TERM)


@dataclass(frozen=True)
class Metrics:
    """What a team lead would want to know about one run."""

    policy: str
    staff: int
    items: int
    completed: int
    unfinished: int
    on_time_pct: float  # finished by the due time, over all items (unfinished count as late)
    mean_lateness_h: float  # tardiness, 0 for on-time items; unfinished: end of run - due
    p95_lateness_h: float
    value_weighted_lateness_h: float  # sum(value * tardiness) / sum(value), values below 0 as 0
    mean_wait_h: float  # ready -> started, started items only
    utilisation: float  # busy / on-shift time, mean over reps
    utilisation_by_rep: dict[str, float]
    fairness_jain: float  # Jain's index of busy time across reps: 1 = perfectly even
    busy_cv: float  # coefficient of variation of busy time across reps
    on_time_pct_by_type: dict[str, float]  # shows which work a policy lets slip
    backlog_max: int  # most items waiting at a sample point
    backlog_mean: float
    sim_end: float
    wall_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SimulationResult:
    """Everything a run produced; `metrics()` summarises it."""

    policy: str
    items: list[WorkItem]  # in processing (arrival) order
    reps: list[RepSpec]
    ready: np.ndarray  # when each item could first be worked (arrival or release)
    start: np.ndarray  # nan = never started
    finish: np.ndarray  # nan = not finished by the end of the run
    rep_index: np.ndarray  # -1 = never assigned
    busy_seconds: np.ndarray  # per rep
    shift_seconds: np.ndarray  # per rep, on-shift time in [t0, end]
    backlog_times: np.ndarray
    backlog_waiting: np.ndarray
    t0: float
    end: float
    wall_seconds: float
    policy_calls: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def due(self) -> np.ndarray:
        return np.fromiter((it.due for it in self.items), float, len(self.items))

    @property
    def value(self) -> np.ndarray:
        return np.fromiter((it.value for it in self.items), float, len(self.items))

    def lateness_seconds(self) -> np.ndarray:
        """Tardiness per item: finish - due (0 if on time); unfinished items are late by at
        least end - due, which is what we count (a lower bound)."""
        due = self.due
        done_at = np.where(np.isnan(self.finish), self.end, self.finish)
        return np.maximum(done_at - due, 0.0)

    def on_time(self) -> np.ndarray:
        return ~np.isnan(self.finish) & (self.finish <= self.due + 1e-6)

    def metrics(self) -> Metrics:
        n = len(self.items)
        late = self.lateness_seconds()
        value = value_weights(self.value)
        started = ~np.isnan(self.start)
        busy = self.busy_seconds
        util = np.divide(busy, self.shift_seconds, out=np.zeros_like(busy), where=self.shift_seconds > 0)
        jain = float(busy.sum() ** 2 / (len(busy) * (busy**2).sum())) if (busy**2).sum() > 0 else 1.0
        cv = float(busy.std() / busy.mean()) if busy.mean() > 0 else 0.0
        completed = int((~np.isnan(self.finish)).sum())
        on_time = self.on_time()
        types = np.array([it.work_type for it in self.items], dtype=object)
        by_type = {str(t): round(100.0 * float(on_time[types == t].mean()), 2) for t in sorted(set(types.tolist()))}
        return Metrics(
            policy=self.policy,
            staff=len(self.reps),
            items=n,
            completed=completed,
            unfinished=n - completed,
            on_time_pct=100.0 * float(on_time.mean()) if n else 100.0,
            mean_lateness_h=float(late.mean()) / 3600 if n else 0.0,
            p95_lateness_h=float(np.percentile(late, 95)) / 3600 if n else 0.0,
            value_weighted_lateness_h=(
                float((value * late).sum() / value.sum()) / 3600 if value.sum() > 0 else float(late.mean()) / 3600
            )
            if n
            else 0.0,
            mean_wait_h=float((self.start[started] - self.ready[started]).mean()) / 3600 if started.any() else 0.0,
            utilisation=float(util.mean()) if len(util) else 0.0,
            utilisation_by_rep={r.id: round(float(u), 4) for r, u in zip(self.reps, util)},
            fairness_jain=jain,
            busy_cv=cv,
            on_time_pct_by_type=by_type,
            backlog_max=int(self.backlog_waiting.max()) if self.backlog_waiting.size else 0,
            backlog_mean=float(self.backlog_waiting.mean()) if self.backlog_waiting.size else 0.0,
            sim_end=self.end,
            wall_seconds=self.wall_seconds,
        )
