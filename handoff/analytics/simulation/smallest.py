"""Staffing by simulation: the smallest team that meets an on-time target, over several team draws.

Erlang C cannot answer "how many seats for 95 % on time" for work with skills, due dates and
opening hours, so the workload is replayed. The search:

- **Several team draws.** Who is hired matters (skills are drawn from the log's profiles), so
  the search runs for `draws` team draws (seeds seed, seed+1, ...; at least 5 by default) and
  reports the range of answers. The answer a manager can staff to is the largest of them: a
  team of that size met the target with every draw tried.
- **Bracket, then bisect**, per draw. The first draw starts at the offered load R (rounded up);
  if that meets the target it steps *down* 1, 2, 4, ... seats until a team misses (a team below
  R can meet a target: reps finish work in hand past closing time, and long SLAs absorb peaks),
  else up 1, 2, 4, ... until one meets. Then it bisects between the largest miss and the
  smallest hit. Later draws start from the answers found so far. Every (size, draw) is replayed
  at most once; the search assumes more seats never make on-time worse for one draw (teams are
  nested: team n+1 is team n plus one rep), and the table shows every replay so a reader can see
  if that failed.
- **Protective capacity**: seats above the offered load (N - R), and spare capacity, the share
  of the team's seat time not needed for touch time ((N - R) / N).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from handoff.analytics.simulation.compare import run_one
from handoff.analytics.simulation.workload import Workload

DEFAULT_DRAWS = 5


@dataclass
class TeamTrial:
    """One replay: a team size and one draw of who is on it."""

    staff: int
    offered_load: float
    on_time_pct: float
    p95_lateness_h: float
    utilisation: float
    draw: int = 0

    @property
    def protective_capacity(self) -> float:
        """People beyond the offered load (N - R)."""
        return self.staff - self.offered_load

    @property
    def beta(self) -> float:
        """The square-root-rule beta this team represents: (N - R) / sqrt(R)."""
        return self.protective_capacity / math.sqrt(self.offered_load) if self.offered_load > 0 else math.inf

    def as_dict(self) -> dict:
        return {
            "staff": self.staff,
            "draw": self.draw,
            "offered_load": round(self.offered_load, 4),
            "load_per_rep": round(self.offered_load / self.staff, 4),
            "protective_capacity": round(self.protective_capacity, 4),
            "beta": round(self.beta, 4),
            "on_time_pct": round(self.on_time_pct, 3),
            "p95_lateness_h": round(self.p95_lateness_h, 3),
            "utilisation": round(self.utilisation, 4),
        }


@dataclass
class StaffingAnswer:
    """What the search found: per-draw smallest teams and every replay it ran."""

    target_on_time: float
    offered_load: float
    by_draw: dict[int, int | None]  # draw (seed) -> smallest team, None = none up to the limit
    trials: list[TeamTrial] = field(default_factory=list)

    @property
    def answer(self) -> int | None:
        """A team size that met the target with every draw tried (the largest per-draw answer)."""
        found = list(self.by_draw.values())
        return None if not found or None in found else max(found)  # type: ignore[type-var]

    @property
    def low(self) -> int | None:
        found = [n for n in self.by_draw.values() if n is not None]
        return min(found) if found else None

    def protective_capacity(self) -> float | None:
        return None if self.answer is None else self.answer - self.offered_load

    def spare_capacity_pct(self) -> float | None:
        n = self.answer
        return None if n is None else 100.0 * (n - self.offered_load) / n

    def by_size(self) -> list[tuple[int, list[TeamTrial]]]:
        sizes: dict[int, list[TeamTrial]] = {}
        for t in sorted(self.trials, key=lambda t: (t.staff, t.draw)):
            sizes.setdefault(t.staff, []).append(t)
        return sorted(sizes.items())

    def as_dict(self) -> dict:
        return {
            "answer": self.answer,
            "range": [self.low, self.answer],
            "by_draw": {str(d): n for d, n in self.by_draw.items()},
            "offered_load": round(self.offered_load, 4),
            "protective_capacity": None if self.answer is None else round(self.answer - self.offered_load, 4),
            "spare_capacity_pct": None if self.answer is None else round(self.spare_capacity_pct() or 0.0, 2),
            "trials": [t.as_dict() for t in sorted(self.trials, key=lambda t: (t.staff, t.draw))],
        }


def smallest_team_over_draws(
    workload: Workload,
    policy: str,
    target_on_time: float,
    seed: int = 0,
    draws: int = DEFAULT_DRAWS,
    max_staff: int | None = None,
    on_trial: Callable[[TeamTrial], None] | None = None,
) -> StaffingAnswer:
    """The smallest team meeting `target_on_time` (a fraction, e.g. 0.95) per team draw."""
    if not 0 < target_on_time <= 1:
        raise ValueError("target on-time must be a fraction in (0, 1], e.g. 0.95")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    load = workload.offered_load()
    limit = max_staff if max_staff is not None else max(math.ceil(load) + 10, math.ceil(3 * load))
    goal = 100 * target_on_time - 1e-9
    seen: dict[tuple[int, int], TeamTrial] = {}

    def meets(n: int, draw: int) -> bool:
        trial = seen.get((n, draw))
        if trial is None:
            o = run_one(workload, policy, n, draw)
            m = o.metrics
            trial = seen[(n, draw)] = TeamTrial(n, load, m.on_time_pct, m.p95_lateness_h, m.utilisation, draw)
            if on_trial:
                on_trial(trial)
        return trial.on_time_pct >= goal

    by_draw: dict[int, int | None] = {}
    start = min(limit, max(1, math.ceil(load - 1e-9)))
    for draw in range(seed, seed + draws):
        found = [n for n in by_draw.values() if n is not None]
        guess = min(limit, max(found)) if found else start
        by_draw[draw] = _search(lambda n, d=draw: meets(n, d), guess, limit)
    return StaffingAnswer(target_on_time, load, by_draw, list(seen.values()))


def _search(meets: Callable[[int], bool], guess: int, limit: int) -> int | None:
    """Smallest n in [1, limit] with meets(n), by bracketing from `guess` then bisecting."""
    if meets(guess):
        hi, lo, step = guess, 0, 1
        while hi > 1:
            n = max(1, hi - step)
            if meets(n):
                hi, step = n, step * 2
            else:
                lo = n
                break
        if lo == 0:
            return hi  # even one seat meets it
    else:
        lo, hi, step = guess, None, 1
        while hi is None:
            n = min(limit, lo + step)
            if meets(n):
                hi = n
            elif n >= limit:
                return None
            else:
                lo, step = n, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi


def smallest_team(
    workload: Workload,
    policy: str,
    target_on_time: float,
    seed: int = 0,
    max_staff: int | None = None,
    on_trial: Callable[[TeamTrial], None] | None = None,
) -> tuple[int | None, list[TeamTrial]]:
    """One draw's smallest team and its replays (the single-draw form of the search)."""
    ans = smallest_team_over_draws(workload, policy, target_on_time, seed, 1, max_staff, on_trial)
    return ans.answer, sorted(ans.trials, key=lambda t: t.staff)
