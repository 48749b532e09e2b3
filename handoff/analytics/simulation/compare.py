"""Compare routing policies across team sizes on one workload: the grid, the table, the charts.

One run = one policy x one team size (see engine.simulate). The grid is embarrassingly
parallel; `jobs > 1` runs it in worker processes (fork), each one replaying with its own copy
of the workload. Results do not depend on `jobs`.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handoff.analytics.simulation.engine import simulate
from handoff.analytics.simulation.results import Metrics
from handoff.analytics.simulation.workload import Workload


@dataclass
class RunOutcome:
    """One cell of the grid: the metrics plus the backlog series for the chart."""

    policy: str
    staff: int
    offered_load: float
    metrics: Metrics
    backlog_t: np.ndarray  # hours since the start of the workload
    backlog_n: np.ndarray
    seed: int = 0  # the team draw (and self-selection's RNG)

    @property
    def load_per_rep(self) -> float:
        return self.offered_load / self.staff

    def as_dict(self) -> dict:
        d = self.metrics.as_dict()
        d["offered_load"] = round(self.offered_load, 4)
        d["load_per_rep"] = round(self.load_per_rep, 4)
        d["protective_capacity"] = round(self.staff - self.offered_load, 4)
        d["seed"] = self.seed
        return d


# What a cell of the table shows over its team draws: the mean [min-max] of these.
SPREAD_FIELDS = ("on_time_pct", "mean_lateness_h", "p95_lateness_h", "value_weighted_lateness_h")


@dataclass
class Cell:
    """One policy at one team size, over its team draws (one run per seed): who is on the
    team changes the answer, so a comparison reports the mean and the range, not one draw."""

    policy: str
    staff: int
    runs: list[RunOutcome]

    def values(self, field: str) -> np.ndarray:
        return np.array([getattr(r.metrics, field) for r in self.runs], dtype=float)

    def mean(self, field: str) -> float:
        return float(self.values(field).mean())

    def as_dict(self) -> dict:
        d: dict = {"policy": self.policy, "staff": self.staff, "seeds": [r.seed for r in self.runs]}
        for f in (*SPREAD_FIELDS, "utilisation", "fairness_jain", "backlog_max", "unfinished"):
            v = self.values(f)
            d[f] = {"mean": round(float(v.mean()), 4), "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}
        return d


def cells(outcomes: Sequence[RunOutcome]) -> list[Cell]:
    """The runs grouped by (policy, team size), in the order the grid ran them."""
    grouped: dict[tuple[str, int], Cell] = {}
    for o in outcomes:
        grouped.setdefault((o.policy, o.staff), Cell(o.policy, o.staff, [])).runs.append(o)
    return list(grouped.values())


def parse_staff(text: str) -> list[int]:
    """'2..8' -> [2..8]; '3,5,8' -> [3, 5, 8]; '4' -> [4]."""
    sizes: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if ".." in part:
            lo, hi = part.split("..", 1)
            a, b = int(lo), int(hi)
            if a > b:
                raise ValueError(f"staff range {part!r} runs backwards")
            sizes.extend(range(a, b + 1))
        else:
            sizes.append(int(part))
    if not sizes or min(sizes) < 1:
        raise ValueError(f"staff {text!r}: give team sizes of at least 1, e.g. 2..8 or 3,5,8")
    return sorted(set(sizes))


def auto_staff(offered_load: float) -> list[int]:
    """Team sizes around the offered load: from just under it (overloaded) to well above it."""
    lo = max(1, math.floor(offered_load) - 2)
    return list(range(lo, math.ceil(offered_load) + 4))


def parse_policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise ValueError("give at least one policy, e.g. push,fifo,self")
    from handoff.core.routing.policy import POLICIES

    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    return names


# --- running the grid ------------------------------------------------------------------------------

_WORKLOAD: Workload | None = None  # the worker processes' copy (set before forking)


def run_one(workload: Workload, policy: str, staff: int, seed: int = 0) -> RunOutcome:
    team = workload.team(staff, seed=seed)
    result = simulate(workload.items, team, policy, seed=seed)
    m = result.metrics()
    t = (result.backlog_times - workload.start) / 3600.0
    return RunOutcome(policy, staff, workload.offered_load(), m, t, result.backlog_waiting, seed)


def _run_cell(args: tuple[str, int, int]) -> RunOutcome:
    assert _WORKLOAD is not None
    return run_one(_WORKLOAD, *args)


def run_grid(
    workload: Workload,
    policies: Sequence[str],
    staff: Sequence[int],
    seed: int = 0,
    jobs: int = 1,
    on_done: Callable[[RunOutcome], None] | None = None,
    draws: int = 1,
) -> list[RunOutcome]:
    """Every policy at every team size with `draws` team draws (seeds `seed`, `seed`+1, ...),
    ordered by (staff, policy order, seed)."""
    if draws < 1:
        raise ValueError("--draws must be at least 1")
    grid = [(p, n, seed + d) for n in staff for p in policies for d in range(draws)]
    out: list[RunOutcome] = []
    if jobs <= 1 or len(grid) == 1:
        for cell in grid:
            o = run_one(workload, *cell)
            out.append(o)
            if on_done:
                on_done(o)
        return out
    global _WORKLOAD
    _WORKLOAD = workload
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            for o in pool.map(_run_cell, grid):
                out.append(o)
                if on_done:
                    on_done(o)
    finally:
        _WORKLOAD = None
    return out


# --- presenting ------------------------------------------------------------------------------------

TABLE_COLUMNS = (
    ("policy", "policy"),
    ("staff", "staff"),
    ("load/rep", "load_per_rep"),
    ("on-time %", "on_time_pct"),
    ("mean late h", "mean_lateness_h"),
    ("p95 late h", "p95_lateness_h"),
    ("value-wtd late h", "value_weighted_lateness_h"),
    ("util %", "utilisation"),
    ("fairness (Jain)", "fairness_jain"),
    ("backlog max", "backlog_max"),
    ("unfinished", "unfinished"),
)


def _spread(values: np.ndarray, digits: int) -> str:
    """One draw: its value; several: mean [min-max]."""
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} [{values.min():.{digits}f}-{values.max():.{digits}f}]"


def table_row(c: Cell) -> list[str]:
    """A cell as a table row: on-time % and lateness as mean [min-max] over its team draws
    when there are several, the rest as means."""
    return [
        c.policy,
        str(c.staff),
        f"{c.runs[0].load_per_rep:.2f}",
        _spread(c.values("on_time_pct"), 1),
        _spread(c.values("mean_lateness_h"), 2),
        _spread(c.values("p95_lateness_h"), 2),
        _spread(c.values("value_weighted_lateness_h"), 2),
        f"{100 * c.mean('utilisation'):.0f}",
        f"{c.mean('fairness_jain'):.3f}",
        f"{c.mean('backlog_max'):.0f}",
        f"{c.mean('unfinished'):.0f}",
    ]


def table_rows(outcomes: Sequence[RunOutcome]) -> list[list[str]]:
    """One row per (policy, team size)."""
    return [table_row(c) for c in cells(outcomes)]


def markdown_table(outcomes: Sequence[RunOutcome]) -> str:
    """The same table as plain Markdown (for docs)."""
    head = "| " + " | ".join(h for h, _ in TABLE_COLUMNS) + " |"
    sep = "|" + "|".join("---" if h == "policy" else "---:" for h, _ in TABLE_COLUMNS) + "|"
    return "\n".join([head, sep] + ["| " + " | ".join(r) + " |" for r in table_rows(outcomes)])


def backlog_staff(outcomes: Sequence[RunOutcome], goal_pct: float = 90.0) -> int:
    """The team size worth showing the backlog for: the smallest where some policy reaches
    `goal_pct` on time (where the policies differ most), else the largest tried."""
    sizes = sorted({o.staff for o in outcomes})
    by_cell = cells(outcomes)
    for n in sizes:
        if any(c.mean("on_time_pct") >= goal_pct for c in by_cell if c.staff == n):
            return n
    return sizes[-1]


def save_charts(
    outcomes: Sequence[RunOutcome], charts_dir: str | Path, workload_name: str, backlog_for: int | None = None
) -> list[Path]:
    """Two PNGs: on-time % against team size per policy; backlog over time per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts_dir = Path(charts_dir)
    charts_dir.mkdir(parents=True, exist_ok=True)
    policies = list(dict.fromkeys(o.policy for o in outcomes))
    paths: list[Path] = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_cell = cells(outcomes)
    for p in policies:
        mine = sorted((c for c in by_cell if c.policy == p), key=lambda c: c.staff)
        sizes = [c.staff for c in mine]
        line = ax.plot(sizes, [c.mean("on_time_pct") for c in mine], marker="o", label=p)[0]
        if any(len(c.runs) > 1 for c in mine):  # the range over the team draws
            lo = [c.values("on_time_pct").min() for c in mine]
            hi = [c.values("on_time_pct").max() for c in mine]
            ax.fill_between(sizes, lo, hi, color=line.get_color(), alpha=0.15)
    load = outcomes[0].offered_load if outcomes else 0.0
    ax.axvline(load, color="grey", linestyle=":", label=f"offered load {load:.2f}")
    ax.axhline(90, color="grey", linestyle="--", linewidth=0.8, label="90 % on time")
    ax.set_ylim(0, 101)
    on_time_title = f"{workload_name}: on-time % by team size and routing policy"
    paths.append(
        _save_chart(
            fig,
            ax,
            "team size (reps)",
            "on time %",
            on_time_title,
            charts_dir / f"{workload_name}-on-time-vs-staff.png",
        )
    )

    n = backlog_for if backlog_for is not None else backlog_staff(outcomes)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for c in by_cell:
        if c.staff == n:  # the first team draw's backlog (one line per policy)
            ax.plot(c.runs[0].backlog_t / 24.0, c.runs[0].backlog_n, linewidth=0.8, label=c.policy)
    backlog_title = f"{workload_name}: backlog over time with {n} reps (team draw {by_cell[0].runs[0].seed})"
    paths.append(
        _save_chart(
            fig,
            ax,
            "days since the first arrival",
            "items waiting",
            backlog_title,
            charts_dir / f"{workload_name}-backlog-{n}-reps.png",
        )
    )
    return paths


def _save_chart(fig, ax, xlabel: str, ylabel: str, title: str, path: Path) -> Path:  # noqa: ANN001
    """Label, title, legend and grid the chart, save it as PNG at `path` and free its figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def __getattr__(name: str):  # the staffing search moved to smallest.py; old imports keep working
    if name in ("smallest_team", "TeamTrial"):
        from handoff.analytics.simulation import smallest

        return getattr(smallest, name)
    raise AttributeError(name)
