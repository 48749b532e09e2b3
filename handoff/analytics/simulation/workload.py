"""A workload to replay: the work items, the opening hours, and the team that works them.

Every loader (bpic2012.py, eventlog.py, northwind.py, synthetic.py) returns a `Workload`: the
work items, the opening hours (calendar), the skill profiles the team is drawn from, and the
assumptions in plain words (`notes`) so a report can say what was assumed; `warnings` are the
assumptions a reader must not miss (a fallback, a cap that cut much). `Workload.team(n, seed)`
builds a team of `n` synthetic reps.

Why synthetic reps for real logs: BPIC 2012 names 58 employees, but the log holds only part of
their day - its touch time is a few full-time people's worth. Replaying with all 58 makes every
policy look perfect. So the team size is the experiment's variable, and the reps' skills are
drawn from the skill profiles observed in the log (see `Workload.team`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

import numpy as np

from handoff.analytics.simulation.calendar import WEEK
from handoff.analytics.simulation.calendar import Calendar
from handoff.analytics.simulation.engine import RepSpec
from handoff.analytics.simulation.engine import WorkItem


@dataclass(frozen=True)
class SkillProfile:
    """The skills one observed (or generated) person holds; `weight` = how much work they did."""

    skills: dict[str, int]
    weight: float = 1.0
    source: str = ""


@dataclass
class Workload:
    name: str
    items: list[WorkItem]
    calendar: Calendar
    profiles: list[SkillProfile]
    notes: list[str] = field(default_factory=list)
    sla: dict[str, str] = field(default_factory=dict)  # per work type, in words, for the report
    cross_train_cover: float = 1.5
    warnings: list[str] = field(default_factory=list)  # shown to the user, not only noted
    # The least opening time the work is taken to arrive over (an event log's: an hour or more).
    # A log whose work all arrives at one moment would otherwise divide by one second.
    min_open_seconds: float = 0.0

    # --- the numbers a staffing discussion starts from ---------------------------------------

    @property
    def start(self) -> float:
        return min(it.arrival for it in self.items)

    @property
    def last_arrival(self) -> float:
        return max(it.arrival for it in self.items)

    def open_seconds(self) -> float:
        """Opening time over which the work arrives (first to last arrival), at least
        `min_open_seconds`."""
        arriving = self.calendar.open_seconds(self.start, max(self.last_arrival, self.start + 1.0))
        return max(arriving, self.min_open_seconds)

    def offered_load(self) -> float:
        """R: touch time per open hour = people busy on average while open (Erlangs)."""
        return sum(it.handling_seconds for it in self.items) / self.open_seconds()

    def weekly_load(self) -> list[float]:
        """Offered load per week (touch time arriving that week / that week's opening time):
        the average hides the peak weeks a team must survive. A last week with less than half
        its opening time left is skipped (too short to say anything)."""
        start = self.start
        weeks = int((self.last_arrival - start) // WEEK) + 1
        touch = [0.0] * weeks
        for it in self.items:
            touch[int((it.arrival - start) // WEEK)] += it.handling_seconds
        out = []
        for w in range(weeks):
            a = start + w * WEEK
            b = min(a + WEEK, max(self.last_arrival, a + 1.0))
            open_s = self.calendar.open_seconds(a, b)
            if open_s >= 0.5 * self.calendar.open_seconds(a, a + WEEK):  # skip a stub last week
                out.append(touch[w] / open_s)
        return out or [self.offered_load()]  # shorter than half a week: the whole span

    def load_share(self) -> dict[str, float]:
        """Share of the touch time per work type (what cross-training is sized on)."""
        total: dict[str, float] = {}
        for it in self.items:
            total[it.work_type] = total.get(it.work_type, 0.0) + it.handling_seconds
        s = sum(total.values()) or 1.0
        return {k: v / s for k, v in sorted(total.items(), key=lambda kv: -kv[1])}

    def summary(self) -> dict:
        share = self.load_share()
        return {
            "workload": self.name,
            "items": len(self.items),
            "work_types": len(share),
            "weeks": round((self.last_arrival - self.start) / WEEK, 2),
            "opening_hours": self.calendar.describe(),
            "touch_hours": round(sum(it.handling_seconds for it in self.items) / 3600, 1),
            "offered_load": round(self.offered_load(), 3),
            "offered_load_peak_week": round(max(self.weekly_load()), 3),
            "load_share": {k: round(v, 3) for k, v in share.items()},
            "sla": self.sla,
            "notes": self.notes,
            "warnings": self.warnings,
        }

    # --- the team ---------------------------------------------------------------------------

    def team(self, n: int, seed: int = 0, capacity: int = 1) -> list[RepSpec]:
        """A team of `n` reps whose skills are drawn from the observed profiles.

        - Profiles are drawn without replacement, with probability proportional to the volume
          the person handled (Efraimidis-Spirakis weighted permutation), so a team looks like
          the people who do most of the work. Teams are nested: team(n+1) is team(n) plus one
          rep, so a staffing curve is not noise from redrawing everyone. Beyond the number of
          profiles, the permutation repeats.
        - Cross-training: every work type is held by at least ceil(cover x load share x n)
          reps (at least 1), adding the skill at level 1 to reps in draw order. Without it a
          small team can miss a skill altogether and its work would never be done - that
          measures the hiring, not the routing.
        """
        if n < 1:
            raise ValueError("a team needs at least one rep")
        rng = np.random.default_rng(seed)
        weights = np.array([max(p.weight, 1e-9) for p in self.profiles])
        keys = rng.random(len(weights)) ** (1.0 / weights)
        order = list(np.argsort(-keys, kind="stable"))
        reps = []
        for k in range(n):
            profile = self.profiles[order[k % len(order)]]
            reps.append(RepSpec(f"rep{k + 1:02d}", dict(profile.skills), capacity, self.calendar))
        required = self._required_levels()
        for work_type, share in self.load_share().items():
            for skill, level in required.get(work_type, {}).items():
                need = min(n, max(1, math.ceil(self.cross_train_cover * share * n - 1e-9)))
                holders = sum(1 for r in reps if r.skills.get(skill, 0) >= level)
                for r in reps:
                    if holders >= need:
                        break
                    if r.skills.get(skill, 0) < level:
                        r.skills[skill] = level
                        holders += 1
        return reps

    def _required_levels(self) -> dict[str, dict[str, int]]:
        """Highest level each work type ever asks for, per skill."""
        req: dict[str, dict[str, int]] = {}
        for it in self.items:
            d = req.setdefault(it.work_type, {})
            for s, lvl in it.required_skills.items():
                d[s] = max(d.get(s, 0), lvl)
        return req

    # --- what-if -----------------------------------------------------------------------------

    def sliced(self, weeks: float | None) -> Workload:
        """Only the work that arrives in the first `weeks` weeks (quick runs, tests)."""
        if weeks is None:
            return self
        cut = self.start + weeks * WEEK
        keep = [it for it in self.items if it.arrival < cut]
        ids = {it.id for it in keep}
        keep = [it if it.after is None or it.after in ids else replace(it, after=None) for it in keep]
        return replace(self, items=keep, notes=self.notes + [f"first {weeks:g} weeks only"])

    def scaled(self, factor: float, seed: int = 0) -> Workload:
        """`factor` x the volume: every order (chain of steps) appears floor(factor) times, plus
        once more with probability frac(factor); copies arrive at the same moments with the
        same due dates. factor < 1 thins the work the same way. Touch times are unchanged."""
        if factor <= 0:
            raise ValueError("volume factor must be positive")
        if factor == 1:
            return self
        rng = np.random.default_rng(seed)
        by_id = {it.id: it for it in self.items}

        def root(it: WorkItem) -> str:
            while it.after is not None and it.after in by_id:
                it = by_id[it.after]
            return it.id

        groups: dict[str, list[WorkItem]] = {}
        for it in self.items:
            groups.setdefault(root(it), []).append(it)
        whole, frac = int(math.floor(factor)), factor - math.floor(factor)
        out: list[WorkItem] = []
        for _, members in groups.items():
            copies = whole + (1 if rng.random() < frac else 0)
            for c in range(copies):
                suffix = "" if c == 0 else f"#{c + 1}"
                for it in members:
                    after = None if it.after is None else it.after + suffix
                    out.append(replace(it, id=it.id + suffix, after=after))
        out.sort(key=lambda it: it.arrival)
        return replace(self, items=out, notes=self.notes + [f"volume x{factor:g} (copies of whole orders)"])
