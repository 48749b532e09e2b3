"""Workloads to replay: real (BPIC 2012, Northwind) and synthetic, with the team that works them.

Every builder returns a `Workload`: the work items, the opening hours (calendar), the skill
profiles the team is drawn from, and the assumptions in plain words (`notes`) so a report can
say what was assumed. `Workload.team(n, seed)` builds a team of `n` synthetic reps.

Why synthetic reps for real logs: BPIC 2012 names 58 employees, but the log holds only part of
their day - its touch time is a few full-time people's worth. Replaying with all 58 makes every
policy look perfect. So the team size is the experiment's variable, and the reps' skills are
drawn from the skill profiles observed in the log (see `Workload.team`).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from handoff.analytics.simulation.calendar import ALWAYS_OPEN, DAY, WEEK, Calendar, WeeklyCalendar, weekday
from handoff.analytics.simulation.engine import RepSpec, WorkItem
from handoff.analytics.simulation.xes import ParsedLog, load_touches


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

    # --- the numbers a staffing discussion starts from ---------------------------------------

    @property
    def start(self) -> float:
        return min(it.arrival for it in self.items)

    @property
    def last_arrival(self) -> float:
        return max(it.arrival for it in self.items)

    def open_seconds(self) -> float:
        """Opening time over which the work arrives (first to last arrival)."""
        return self.calendar.open_seconds(self.start, max(self.last_arrival, self.start + 1.0))

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

    def sliced(self, weeks: float | None) -> "Workload":
        """Only the work that arrives in the first `weeks` weeks (quick runs, tests)."""
        if weeks is None:
            return self
        cut = self.start + weeks * WEEK
        keep = [it for it in self.items if it.arrival < cut]
        ids = {it.id for it in keep}
        keep = [it if it.after is None or it.after in ids else replace(it, after=None) for it in keep]
        return replace(self, items=keep, notes=self.notes + [f"first {weeks:g} weeks only"])

    def scaled(self, factor: float, seed: int = 0) -> "Workload":
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


# --- BPIC 2012 -----------------------------------------------------------------------------------

# Service levels we set per work type, in *opening* hours of the derived calendar. The log
# carries no due dates, so these are our assumption, chosen from what each step means:
BPIC_SLA_HOURS: dict[str, float] = {
    "W_Afhandelen leads": 4,  # handle a lead: call while the customer is still interested
    "W_Beoordelen fraude": 8,  # assess suspected fraud: within a working day
    "W_Completeren aanvraag": 8,  # complete the application: within a working day
    "W_Nabellen offertes": 12,  # call after an offer was sent: one full opening day
    "W_Nabellen incomplete dossiers": 12,  # call about missing documents: one opening day
    "W_Valideren aanvraag": 24,  # validate the application (long task): two opening days
}
BPIC_DEFAULT_SLA_HOURS = 8.0  # any other work type in a log of the same shape
# Business priority (1 = normal): fraud blocks a loan, a lead goes cold.
BPIC_PRIORITY: dict[str, float] = {"W_Beoordelen fraude": 3.0, "W_Afhandelen leads": 2.0}
BPIC_GLOSSARY = {
    "W_Afhandelen leads": "handle leads",
    "W_Beoordelen fraude": "assess fraud",
    "W_Completeren aanvraag": "complete the application",
    "W_Nabellen offertes": "call after offers",
    "W_Nabellen incomplete dossiers": "call about incomplete files",
    "W_Valideren aanvraag": "validate the application",
}


def derive_opening_hours(start_local: Sequence[float], threshold: float = 0.2) -> WeeklyCalendar:
    """Opening hours from when work is *started*: an hour of the week is open if it holds at
    least `threshold` x the starts of the busiest hour of the week; consecutive open hours
    merge into spans. (BPIC 2012: Mon-Fri 09-21, Sat 10-17.)"""
    t = np.asarray(start_local, dtype=float)
    days = np.floor(t / DAY).astype(np.int64)
    wd = (days + 3) % 7
    hour = np.floor((t - days * DAY) / 3600).astype(np.int64)
    counts = np.zeros((7, 24))
    np.add.at(counts, (wd, hour), 1)
    open_ = counts >= threshold * counts.max()
    hours: dict[int, list[tuple[float, float]]] = {}
    for d in range(7):
        spans: list[tuple[float, float]] = []
        h = 0
        while h < 24:
            if open_[d, h]:
                j = h
                while j + 1 < 24 and open_[d, j + 1]:
                    j += 1
                spans.append((float(h), float(j + 1)))
                h = j + 1
            else:
                h += 1
        hours[d] = spans
    return WeeklyCalendar.from_dict(hours)


def bpic2012_workload(
    path: str | Path,
    cache_dir: str | Path | None = None,
    interruption_cap_seconds: float = 3600.0,
    sla_hours: dict[str, float] | None = None,
    opening_threshold: float = 0.2,
    min_profile_volume: int = 100,
    min_skill_share: float = 0.05,
) -> Workload:
    """BPIC 2012 (or any XES log of the same shape) as a replayable workload.

    - Work items: one per touch (see xes.py for pairing and ready times).
    - Touch time: as logged, but a touch longer than `interruption_cap_seconds` (default 1 h)
      is taken to include an interruption (lunch, end of day, a forgotten open item) and is
      capped there. 1.2 % of BPIC's touches are capped; without the cap, 68 touches that stay
      open for more than a day (up to 68 h) would count as that much work.
    - Router's effort estimate: the mean capped touch time of the work type (history), not the
      item's own touch time - a live router cannot know that in advance.
    - Due: ready time + the work type's SLA in opening hours (BPIC_SLA_HOURS).
    - Value: the case's requested loan amount (AMOUNT_REQ), for value-weighted lateness.
    - Skill: each work type is a skill of the same name; an item needs it at level 1.
    - Opening hours: derived from when touches start (derive_opening_hours); every synthetic
      rep works all opening hours, so a "rep" is a staffed seat (~67 h/week for BPIC), not one
      person's contract.
    - Skill profiles: employees with at least `min_profile_volume` touches; a skill for each
      type that is at least `min_skill_share` of their own touches, at level
      1 + floor(log10(touches of that type)) (one level per tenfold volume, max 5).
    """
    parsed: ParsedLog = load_touches(path, cache_dir=cache_dir)
    df = parsed.touches
    if df.empty:
        raise ValueError(f"{path}: no START/COMPLETE work items found")
    sla = dict(BPIC_SLA_HOURS if sla_hours is None else sla_hours)
    calendar = derive_opening_hours(df["start_local"].to_numpy(), opening_threshold)
    handling = np.minimum(df["duration_s"].to_numpy(), interruption_cap_seconds)
    handling = np.maximum(handling, 1.0)  # a zero-second touch still takes a moment
    df = df.assign(handling=handling)
    estimate = df.groupby("activity")["handling"].mean().to_dict()
    for act in estimate:
        sla.setdefault(act, BPIC_DEFAULT_SLA_HOURS)

    items: list[WorkItem] = []
    counters: dict[tuple[str, str], int] = {}
    for case, act, ready, h, value in zip(
        df["case"].to_numpy(), df["activity"].to_numpy(), df["ready_local"].to_numpy(), handling, df["value"].to_numpy()
    ):
        k = counters[(case, act)] = counters.get((case, act), 0) + 1
        items.append(
            WorkItem(
                id=f"{case}:{act}:{k}",
                work_type=act,
                required_skills={act: 1},
                arrival=float(ready),
                handling_seconds=float(h),
                due=calendar.add_open_seconds(float(ready), sla[act] * 3600),
                priority=BPIC_PRIORITY.get(act, 1.0),
                value=float(value),
                effort_estimate=float(estimate[act]),
            )
        )
    items.sort(key=lambda it: it.arrival)

    profiles: list[SkillProfile] = []
    named = df[df["resource"] != ""]
    for res, counts in named.groupby("resource")["activity"].value_counts().groupby(level=0):
        total = int(counts.sum())
        if total < min_profile_volume:
            continue
        skills = {
            act: min(5, 1 + int(math.log10(c)))
            for (_, act), c in counts.items()
            if c >= min_skill_share * total
        }
        profiles.append(SkillProfile(skills, float(total), str(res)))
    if not profiles:  # a small log: everyone can do everything
        profiles = [SkillProfile({a: 1 for a in estimate}, 1.0, "generalist")]

    capped = float((df["duration_s"] > interruption_cap_seconds).mean())
    st = parsed.stats
    notes = [
        f"{st.get('touches', len(df))} touches from {st.get('cases', 0)} cases; dropped: "
        f"{st.get('orphan_completes', 0)} COMPLETEs without START, {st.get('unclosed_starts', 0)} STARTs never "
        f"completed, {st.get('schedules_never_started', 0)} SCHEDULEs never started",
        f"touch time capped at {interruption_cap_seconds / 3600:g} h as an interruption ({capped:.1%} of touches)",
        "ready = SCHEDULE time for the first touch, logged START for follow-up touches",
        f"opening hours derived from touch starts: {calendar.describe()}; every rep works all of them (a seat)",
        f"{len(profiles)} observed skill profiles (employees with >= {min_profile_volume} touches)",
        "due = ready + SLA in opening hours per work type; value = requested loan amount",
    ]
    sla_words = {act: f"{sla[act]:g} opening hours" for act in sorted(estimate)}
    return Workload("bpic2012", items, calendar, profiles, notes, sla_words)


# --- Northwind ---------------------------------------------------------------------------------

NORTHWIND_STEPS = (
    # (work type, skill, fixed seconds, seconds per order line, share of the promise window by
    #  which the step must be done)
    ("order entry", "order entry", 300.0, 60.0, 0.2),
    ("provisioning", "provisioning", 600.0, 180.0, 0.8),
    ("billing", "billing", 240.0, 30.0, 1.0),
)


def northwind_workload(
    path: str | Path,
    compression: float = 20.0,
    seed: int = 0,
    calendar: WeeklyCalendar | None = None,
    large_order_value: float | None = None,
    handling_cv: float = 0.4,
) -> Workload:
    """Northwind's 830 orders as an order-to-cash back office: entry -> provisioning -> billing.

    Assumptions (stated because the database has no back-office timings):
    - Dates: this SQLite port shifted the 1996-98 dates by 20 years, so orders fall on
      weekends too; we count calendar days x 5/7 as business days.
    - Time compression: `compression` business days of the order book are replayed in one
      business day (default 20), with deadlines compressed the same way. At the real pace
      (compression=1) the work is ~1 hour a day and any team of one is always on time.
    - Arrivals: an order arrives at a uniformly random moment of its own order date, compressed
      like everything else (so 20 order dates share one replayed day); opening hours Mon-Fri 09-17.
    - Steps in order: order entry, provisioning (pick, pack, book the carrier), billing. Each
      is released when the one before is done. Effort = fixed + per order line (NORTHWIND_STEPS);
      the actual touch time is that x a lognormal factor (mean 1, CV `handling_cv`); the router
      sees the formula (it knows the line count, not the surprises).
    - Due: RequiredDate (the promise) for billing; provisioning by 80 % and order entry by 20 %
      of the window between arrival and the promise.
    - Value = order total (sum of lines after discount); priority 2 and order-entry skill level 2
      (an approval) for orders of at least `large_order_value` (settings: 5,000).
    - Team: generalists holding all three skills, levels 1-3 drawn at random per rep; at least
      one rep per team holds order entry at level 2 (cross-training rule).
    """
    if compression <= 0:
        raise ValueError("compression must be positive")
    if large_order_value is None:
        from handoff.core.settings import settings

        large_order_value = settings.large_order_value
    calendar = calendar or WeeklyCalendar.from_shift("09:00", "17:00", "01234")
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        orders = pd.read_sql_query(
            """SELECT o.OrderID AS id, o.OrderDate AS ordered, o.RequiredDate AS required,
                      COUNT(d.ProductID) AS lines,
                      SUM(d.UnitPrice * d.Quantity * (1 - d.Discount)) AS total
               FROM Orders o JOIN "Order Details" d ON d.OrderID = o.OrderID
               GROUP BY o.OrderID ORDER BY o.OrderDate, o.OrderID""",
            conn,
        )
    finally:
        conn.close()
    ordered = pd.to_datetime(orders["ordered"])
    required = pd.to_datetime(orders["required"])
    first = ordered.min().normalize()
    rng = np.random.default_rng(seed)
    day_len = calendar.weekly_hours() * 3600 / sum(1 for d in calendar.hours if d)
    # Business-day positions (x 5/7 for the weekend dates), compressed. An order arrives at a
    # random moment of its own (compressed) order date, so it never arrives after its promise.
    order_day = (ordered - first).dt.days.to_numpy()
    pos_due = ((required - first).dt.days.to_numpy() + 1) * 5 / 7 / compression
    # Day 0 of the replay: the Monday of the first order's week, at opening time.
    t_first = (first - pd.Timestamp("1970-01-01")).total_seconds()
    t0 = float(t_first - weekday(t_first) * DAY)
    t0 = calendar.add_open_seconds(t0, 0.0)
    sigma = math.sqrt(math.log(1 + handling_cv**2))
    items: list[WorkItem] = []
    for k, row in enumerate(orders.itertuples(index=False)):
        arrival = calendar.add_open_seconds(t0, float((order_day[k] + rng.random()) * 5 / 7 / compression * day_len))
        promise = calendar.add_open_seconds(t0, float(pos_due[k] * day_len))
        promise = max(promise, arrival + 600.0)  # compression must not promise the past
        window = promise - arrival
        large = float(row.total) >= large_order_value
        prev = None
        for work_type, skill, fixed, per_line, share in NORTHWIND_STEPS:
            effort = fixed + per_line * int(row.lines)
            actual = effort * float(rng.lognormal(-sigma**2 / 2, sigma))
            item_id = f"order{row.id}:{work_type}"
            items.append(
                WorkItem(
                    id=item_id,
                    work_type=work_type,
                    required_skills={skill: 2 if (large and work_type == "order entry") else 1},
                    arrival=arrival,
                    handling_seconds=actual,
                    due=arrival + share * window,
                    priority=2.0 if large else 1.0,
                    value=float(row.total),
                    effort_estimate=effort,
                    after=prev,
                )
            )
            prev = item_id
    items.sort(key=lambda it: it.arrival)
    prof_rng = np.random.default_rng(seed + 1)
    profiles = [
        SkillProfile({s: int(prof_rng.integers(1, 4)) for _, s, *_ in NORTHWIND_STEPS}, 1.0, f"generalist{k}")
        for k in range(30)
    ]
    notes = [
        f"{len(orders)} orders, 3 steps each ({len(items)} items); {int((orders['total'] >= large_order_value).sum())} "
        f"orders >= {large_order_value:g} need an approval (order entry level 2)",
        f"time compression: {compression:g} business days of orders per replayed business day; calendar days x 5/7",
        "effort = fixed + per line (entry 5+1/line, provisioning 10+3/line, billing 4+0.5/line minutes), "
        f"actual x lognormal CV {handling_cv:g}",
        "due: entry by 20 %, provisioning by 80 % of the window to RequiredDate, billing by RequiredDate",
        f"opening hours {calendar.describe()}; generalist reps, skill levels 1-3 at random",
    ]
    sla = {
        work_type: f"{share:.0%} of the window from arrival to RequiredDate"
        for work_type, _, _, _, share in NORTHWIND_STEPS
    }
    return Workload("northwind", items, calendar, profiles, notes, sla)


# --- Synthetic ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeSpec:
    """One work type of a synthetic workload."""

    name: str
    share: float  # of arrivals
    mean_handling_seconds: float
    sla_seconds: float
    priority: float = 1.0
    mean_value: float = 0.0
    handling: str = "exponential"  # or "lognormal"
    cv: float = 1.0  # lognormal only


DEFAULT_TYPES = (
    TypeSpec("order entry", 0.5, 300.0, 4 * 3600, 1.0, 1500.0),
    TypeSpec("provisioning", 0.3, 600.0, 8 * 3600, 1.0, 1500.0),
    TypeSpec("billing query", 0.2, 240.0, 2 * 3600, 2.0, 500.0),
)


def synthetic_workload(
    n_items: int = 5000,
    arrivals_per_hour: float = 30.0,
    types: Sequence[TypeSpec] = DEFAULT_TYPES,
    calendar: Calendar = ALWAYS_OPEN,
    seed: int = 0,
    start: float = 0.0,
    skills_per_rep: int | None = None,
) -> Workload:
    """Poisson arrivals (exponential gaps, during opening hours), exponential or lognormal
    handling, due = arrival + SLA (in opening time of `calendar`), value exponential around the
    type's mean. Reps hold `skills_per_rep` of the types (all when None) at levels 1-3; the
    router's effort estimate is the type's mean. Always-open by default (queueing-theory checks)."""
    if n_items < 1 or arrivals_per_hour <= 0:
        raise ValueError("need at least one item and a positive arrival rate")
    rng = np.random.default_rng(seed)
    shares = np.array([t.share for t in types], dtype=float)
    shares /= shares.sum()
    gaps = rng.exponential(3600.0 / arrivals_per_hour, n_items)
    open_times = np.cumsum(gaps)  # arrivals in *open* seconds, mapped onto the calendar below
    kinds = rng.choice(len(types), size=n_items, p=shares)
    items = []
    for i in range(n_items):
        t = types[kinds[i]]
        if t.handling == "lognormal":
            sigma = math.sqrt(math.log(1 + t.cv**2))
            h = float(rng.lognormal(math.log(t.mean_handling_seconds) - sigma**2 / 2, sigma))
        else:
            h = float(rng.exponential(t.mean_handling_seconds))
        arrival = calendar.add_open_seconds(start, float(open_times[i]))
        items.append(
            WorkItem(
                id=f"s{i}",
                work_type=t.name,
                required_skills={t.name: 1},
                arrival=arrival,
                handling_seconds=h,
                due=calendar.add_open_seconds(arrival, t.sla_seconds),
                priority=t.priority,
                value=float(rng.exponential(t.mean_value)) if t.mean_value > 0 else 0.0,
                effort_estimate=t.mean_handling_seconds,
            )
        )
    k = len(types) if skills_per_rep is None else max(1, min(skills_per_rep, len(types)))
    profiles = []
    for j in range(30):
        chosen = rng.choice(len(types), size=k, replace=False)
        profiles.append(SkillProfile({types[c].name: int(rng.integers(1, 4)) for c in chosen}, 1.0, f"synthetic{j}"))
    notes = [
        f"{n_items} items, Poisson arrivals {arrivals_per_hour:g}/open hour, "
        + ", ".join(f"{t.name} {t.share:.0%} ({t.handling}, mean {t.mean_handling_seconds:g}s, SLA {t.sla_seconds / 3600:g}h)" for t in types),
        f"calendar: {calendar.describe()}; reps hold {k} of {len(types)} types at levels 1-3",
    ]
    sla = {t.name: f"{t.sla_seconds / 3600:g} h" for t in types}
    return Workload("synthetic", items, calendar, profiles, notes, sla)


def load_workload(
    name: str,
    *,
    xes: str | Path | None = None,
    northwind: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    weeks: float | None = None,
    volume_factor: float = 1.0,
    compression: float = 20.0,
    synthetic_items: int = 5000,
    synthetic_rate: float = 30.0,
) -> Workload:
    """The named workload with the usual knobs (what the CLI and the bench call)."""
    from handoff.core.settings import settings

    if name == "bpic2012":
        wl = bpic2012_workload(xes or settings.bpic_path, cache_dir=cache_dir)
    elif name == "northwind":
        wl = northwind_workload(northwind or settings.northwind_path, compression=compression, seed=seed)
    elif name == "synthetic":
        wl = synthetic_workload(n_items=synthetic_items, arrivals_per_hour=synthetic_rate, seed=seed)
    else:
        raise ValueError(f"unknown workload {name!r}; choose bpic2012, northwind or synthetic")
    return wl.sliced(weeks).scaled(volume_factor, seed=seed)
