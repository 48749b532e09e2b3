"""Any back office's event log (XES or CSV) as a replayable workload.

`load_event_log(path, options)` reads the touches (xes.py / csvlog.py; pairing rules in
touches.py) and `eventlog_workload` turns them into work items:

- Work items: one per touch. Artificial start/end markers (activities named start, end, ▶, ■
  and the like whose every touch takes zero time) are dropped, and so is any activity named in
  `drop_activities`.
- Touch time: as logged, capped at `touch_cap_hours` (default 1 h) as an interruption (lunch,
  end of day, an item left open). When the cap cuts more than 5 % of the touches the workload
  carries a warning: the log's touches are probably long by nature and the cap should go up.
- Router's effort estimate: the mean capped touch time of the activity (history), not the
  item's own touch time - a live router cannot know that in advance.
- Due: ready time + the activity's SLA in opening hours. SLA, priority and value per activity
  come from `ActivityTerms` (options or `--sla-file`); otherwise `default_sla_hours` (8 h),
  priority 1 (or the log's priority column) and the case's value (a trace attribute such as
  BPIC's AMOUNT_REQ, or the CSV's value column), else 0.
- Opening hours: given, or derived from touch starts with checks and fallbacks (hours.py).
- Skill: each activity is a skill of the same name; an item needs it at level 1.
- Skill profiles: resources with at least min(`min_profile_volume`, 1 % of touches) touches; a
  skill for each activity that is at least `min_skill_share` of their own touches, at level
  1 + floor(log10(touches of that activity)) (max 5). No resources: one generalist profile.
- Name: the file's name without its extensions ("teleclaims" for teleclaims.xes.gz).
- Dropped while reading, each kind counted in a warning with an example: events without an
  activity or a readable time (a start_timestamp included), interval rows without a readable
  start, intervals that end before they start.
- Far-off touches: a touch more than FAR_REACH x the width of the middle half of the arrivals
  (at least a week) outside it - a typo'd year, a 1900 or 9999 placeholder - is dropped with a
  warning when such touches are few (FAR_MAX_SHARE); one of them stretched the span the load is
  spread over (weeks 6,480) or had the replay walk every hour to 9999. A log whose work still
  spans more than MAX_SPAN_YEARS is refused.
- Offered load: the touch time over the opening time its arrivals span, at least one hour (R is
  touch time per open hour) or the longest touch (the log watched that long), with a warning:
  work logged at one moment was divided by one second (R = 72,000 for 20 touch hours). Not
  one opening day: a one-day log (teleclaims, 12 h, always open) would lose half its load.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import numpy as np

from handoff.analytics.simulation.calendar import DAY
from handoff.analytics.simulation.calendar import Calendar
from handoff.analytics.simulation.engine import WorkItem
from handoff.analytics.simulation.hours import opening_hours_from_log
from handoff.analytics.simulation.touches import ParsedLog
from handoff.analytics.simulation.touches import why_unusable
from handoff.analytics.simulation.workload import SkillProfile
from handoff.analytics.simulation.workload import Workload

MARKER_NAMES = {
    "start",
    "end",
    "begin",
    "finish",
    "▶",
    "■",
    "►",
    "●",
    "○",
    "[start]",
    "[end]",
    "process start",
    "process end",
    "start event",
    "end event",
    "artificial start",
    "artificial end",
}
CAP_WARNING_SHARE = 0.05
FAR_REACH, FAR_MIN_WIDTH, FAR_MAX_SHARE = 10.0, 7 * DAY, 0.05
MAX_SPAN_YEARS = 20
MIN_RATE_SPAN = 3600.0  # the least open time a load is taken over (see the module doc)
YEAR = 365.25 * DAY
# What the readers drop, by their stats key, in the words of the warning.
DROP_REASONS = {
    "events_without_activity": "events without an activity name",
    "events_without_time": "events without a readable timestamp",
    "rows_without_start": "interval rows without a readable start time",
    "negative_intervals": "intervals that end before they start",
}


@dataclass(frozen=True)
class ActivityTerms:
    """What the business promises for one activity (None = the default)."""

    sla_hours: float | None = None
    priority: float | None = None
    value: float | None = None


@dataclass
class LogOptions:
    """How to read a foreign log; every field has the CLI option of the same name."""

    terms: dict[str, ActivityTerms] = field(default_factory=dict)
    default_sla_hours: float = 8.0
    default_priority: float = 1.0
    touch_cap_hours: float = 1.0  # <= 0 or inf: no cap
    hours: Calendar | None = None  # None: derived from the log
    drop_activities: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)  # CSV role -> column
    value_attribute: str = "AMOUNT_REQ"  # XES trace attribute holding the case value
    opening_threshold: float = 0.2
    min_profile_volume: int = 100
    min_skill_share: float = 0.05
    value_words: str = "the case value attribute or value column, else 0"
    dayfirst: bool | None = None  # CSV numeric dates: day first, month first, None = told by the dates


def workload_name(path: str | Path) -> str:
    """teleclaims.xes.gz -> teleclaims; Orders 2024.csv -> Orders 2024."""
    name = Path(path).name
    while True:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and ext.lower() in ("gz", "xes", "csv", "tsv", "xml", "mxml", "txt", "zip"):
            name = stem
        else:
            return name


def is_csv(path: str | Path) -> bool:
    """export.csv, export.csv.gz and export.txt are CSV; anything else is read as XES."""
    suffixes = [x.lower() for x in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in (".csv", ".txt", ".tsv")


TERM_COLUMNS = ("sla_hours", "priority", "value")


def term_number(given: object, what: str) -> float:
    """One activity term as a number: finite, and an SLA positive (ValueError saying which).
    An infinite or NaN SLA would have the business clock walk for ever to find its due time."""
    try:
        x = float(given)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} {given!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{what} {given!r} must be a finite number")
    if what.endswith("sla_hours") and not x > 0:
        raise ValueError(f"{what} must be positive")
    return x


def read_sla_file(path: str | Path) -> dict[str, ActivityTerms]:
    """Activity terms from JSON ({"activity": {"sla_hours": 4, "priority": 2, "value": 100}}, or
    a list of objects with an "activity" key) or CSV (header: activity,sla_hours,priority,value)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as bad:
        raise ValueError(f"{path}: not UTF-8 text (byte {bad.object[bad.start]:#04x} at {bad.start:,})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as bad:
            raise ValueError(f"{path}: not JSON ({bad})") from None
        except RecursionError:  # [[[[...]]]] nested beyond what the parser follows
            raise ValueError(f"{path}: not JSON an SLA file can be (nested too deeply)") from None
        if isinstance(data, dict):
            rows = [dict(v, activity=k) if isinstance(v, dict) else v for k, v in data.items()]
        else:
            rows = list(data) if isinstance(data, list) else [data]
    else:
        reader = csv.DictReader(text.splitlines())
        header = [h.strip() for h in reader.fieldnames or []]
        unknown = [h for h in header if h not in ("activity", *TERM_COLUMNS)]
        if "activity" not in header or unknown:
            raise ValueError(
                f"{path}: the CSV header must be activity and any of {', '.join(TERM_COLUMNS)}"
                + (f"; not {', '.join(map(repr, unknown))}" if unknown else "")
            )
        rows = [{k.strip(): v for k, v in row.items() if k} for row in reader]
    out: dict[str, ActivityTerms] = {}
    for row in rows:
        if not isinstance(row, dict) or not row.get("activity"):
            raise ValueError(
                f"{path}: every entry needs an activity name and its terms, "
                f'e.g. {{"Assess": {{"sla_hours": 4}}}} ({row!r})'
            )
        unknown = [k for k in row if k not in ("activity", *TERM_COLUMNS)]
        if unknown:
            raise ValueError(f"{path}: {row['activity']}: unknown terms {unknown} (know {', '.join(TERM_COLUMNS)})")
        terms = [
            None if row.get(key) in (None, "") else term_number(row[key], f"{path}: {row['activity']}: {key}")
            for key in TERM_COLUMNS
        ]
        out[str(row["activity"])] = ActivityTerms(*terms)
    return out


def parse_terms(pairs: list[str], what: str) -> dict[str, float]:
    """["W_A=4", "Call back=2.5"] -> {"W_A": 4.0, "Call back": 2.5} (the last '=' splits)."""
    out: dict[str, float] = {}
    for p in pairs:
        name, sep, num = p.rpartition("=")
        if not sep or not name.strip():
            raise ValueError(f"--{what} {p!r}: write ACTIVITY=NUMBER")
        out[name.strip()] = term_number(num, f"--{what} {p!r}:" + (" sla_hours" if what == "sla" else ""))
    return out


def load_event_log(
    path: str | Path, options: LogOptions | None = None, cache_dir: str | Path | None = None
) -> Workload:
    """The workload in an XES or CSV event log (the format is told by the file name)."""
    from handoff.analytics.simulation.csvlog import load_csv_touches
    from handoff.analytics.simulation.xes import load_touches

    path = Path(path)
    options = options or LogOptions()
    if not path.is_file():
        raise ValueError(f"{path}: no such event log")
    if is_csv(path):
        parsed = load_csv_touches(path, options.columns, cache_dir=cache_dir, dayfirst=options.dayfirst)
    else:
        parsed = load_touches(path, cache_dir=cache_dir, value_attribute=options.value_attribute)
    return eventlog_workload(parsed, workload_name(path), options, str(path))


def eventlog_workload(parsed: ParsedLog, name: str, options: LogOptions, source: str = "") -> Workload:
    """Work items, hours and skill profiles from a log's touches (rules in the module doc)."""
    df = parsed.touches
    if df.empty:
        raise ValueError(why_unusable(parsed, source or name))
    notes: list[str] = list(parsed.notes)
    warnings: list[str] = list(parsed.warnings) + _drop_warnings(parsed.stats)
    dropped = _markers(df) | {a for a in options.drop_activities if a in set(df["activity"])}
    unknown = [a for a in options.drop_activities if a not in set(df["activity"])]
    if unknown:
        warnings.append(f"--drop-activities: no activity named {', '.join(map(repr, unknown))} in the log")
    if dropped:
        n_drop = int(df["activity"].isin(dropped).sum())
        df = df[~df["activity"].isin(dropped)]
        notes.append(
            f"dropped {n_drop} touches of {', '.join(sorted(dropped))} (start/end markers or --drop-activities)"
        )
    if df.empty:
        raise ValueError(f"{source or name}: every touch was a start/end marker or dropped; nothing left to replay")
    df = _without_far_off(df, warnings)
    _check_span(df, source or name)
    if options.hours is not None:
        calendar, how, hour_warnings = options.hours, "given", []
    else:
        calendar, how, hour_warnings = opening_hours_from_log(df["start_local"].to_numpy(), options.opening_threshold)
    warnings += hour_warnings
    cap = options.touch_cap_hours * 3600 if 0 < options.touch_cap_hours < math.inf else math.inf
    duration = df["duration_s"].to_numpy(dtype=float)
    handling = np.maximum(np.minimum(duration, cap), 1.0)  # a zero-second touch still takes a moment
    capped = float((duration > cap).mean())
    cap_words = "no cap" if cap == math.inf else f"capped at {cap / 3600:g} h as an interruption"
    notes.append(f"touch time {cap_words} ({capped:.1%} of touches cut)")
    if capped > CAP_WARNING_SHARE:
        warnings.append(
            f"the {cap / 3600:g} h touch cap cut {capped:.0%} of touches ({duration.sum() / 3600:,.0f} h logged, "
            f"{handling.sum() / 3600:,.0f} h kept): touches in this log may be long by nature; "
            "set --touch-cap-hours (0 = no cap)"
        )
    instant = float((duration <= 0).mean())
    if instant > 0.5:  # most of them: a date-only log (some instant markers are normal in interval logs)
        warnings.append(
            f"{instant:.0%} of touches last 0 s (START and COMPLETE at the same moment: dates without times?); "
            "each is replayed as 1 s, so the work and the offered load are understated"
        )
    df = df.assign(handling=handling)
    estimate = df.groupby("activity")["handling"].mean().to_dict()
    terms = {a: options.terms.get(a, ActivityTerms()) for a in estimate}
    sla = {a: t.sla_hours if t.sla_hours is not None else options.default_sla_hours for a, t in terms.items()}
    unused = sorted(set(options.terms) - set(estimate))
    if unused and options.terms:
        warnings.append(
            f"SLA terms for activities not in the log: {', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''}"
        )
    items = _items(df, terms, sla, estimate, calendar, options.default_priority)
    profiles = _profiles(df, estimate, options)
    st = parsed.stats
    notes[:0] = [
        (
            f"{len(items)} touches from {st.get('cases', 0)} cases; dropped: {st.get('orphan_completes', 0)} COMPLETEs "
            f"without START, {st.get('unclosed_starts', 0)} STARTs never completed, "
            f"{st.get('schedules_never_started', 0)} SCHEDULEs never started, "
            f"{st.get('complete_only_events', 0)} instantaneous (COMPLETE-only) events"
        ),
        "ready = SCHEDULE time for the first touch, logged start for follow-up and interval touches",
    ]
    notes += [
        f"opening hours {calendar.describe()} ({how}); every rep works all of them (a seat)",
        f"{len(profiles)} skill profiles ({'observed resources' if profiles[0].source != 'generalist' else 'no resources: generalists'})",
        f"due = ready + SLA in opening hours per activity ({_default_words(options, terms)}); value = {options.value_words}",
    ]
    if parsed.stats.get("other_lifecycle_events"):
        notes.append(
            f"ignored {parsed.stats['other_lifecycle_events']} events of other lifecycle transitions (assign, "
            "suspend, resume, ...): a touch runs from its START to its COMPLETE, pauses included"
        )
    sla_words = {a: f"{sla[a]:g} opening hours" for a in sorted(estimate)}
    least = max(MIN_RATE_SPAN, float(handling.max()))
    warnings += _short_span_warning(items, calendar, least)
    return Workload(name, items, calendar, profiles, notes, sla_words, warnings=warnings, min_open_seconds=least)


def _drop_warnings(stats: dict) -> list[str]:
    """One warning per kind of event the reader dropped: how many, why, and the first
    unreadable value (a drop nobody hears of makes a log look quieter than it was)."""
    out = []
    for key, words in DROP_REASONS.items():
        if stats.get(key):
            example = stats.get(f"{key}_example")
            out.append(f"{words}: {stats[key]} dropped" + (f" (e.g. {example!r})" if example else ""))
    return out


def _date(t: float) -> str:
    """A naive-local epoch time as a date, for messages."""
    try:
        return f"{datetime(1970, 1, 1) + timedelta(seconds=float(t)):%Y-%m-%d}"
    except OverflowError:
        return "after 9999" if t > 0 else "before year 1"


def _touch_times(df) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(arrival, earliest, latest) naive-local time of each touch: the latest is its end."""
    ready = df["ready_local"].to_numpy(dtype=float)
    start = df["start_local"].to_numpy(dtype=float)
    end = start + df["duration_s"].to_numpy(dtype=float)
    return ready, np.minimum(ready, start), np.maximum(ready, end)


def _without_far_off(df, warnings: list[str]):
    """The touches without those far outside the bulk of the log (rule in the module doc),
    a warning naming how many and their dates. Quartiles, not the first and last arrival, set
    the bulk, so one row in 9999 cannot move it. More than FAR_MAX_SHARE such touches are the
    log's shape, not typos: they are kept, with a warning."""
    ready, first, last = _touch_times(df)
    q1, q3 = np.quantile(ready, [0.25, 0.75])
    reach = FAR_REACH * max(q3 - q1, FAR_MIN_WIDTH)
    far = (first < q1 - reach) | (last > q3 + reach)
    n = int(far.sum())
    if not n:
        return df
    span = " to ".join(dict.fromkeys((_date(first[far].min()), _date(last[far].max()))))
    if n > max(1, FAR_MAX_SHARE * len(df)):
        warnings.append(
            f"{n} touches ({n / len(df):.0%}) lie far outside the middle half of the log "
            f"({_date(q1)} to {_date(q3)}), {span}; kept (too many to be typos), the load is spread over them"
        )
        return df
    rest = ready[~far]
    warnings.append(
        f"touches dated far outside the rest of the log ({span}; the rest {_date(rest.min())} to "
        f"{_date(rest.max())}): {n} dropped, taken for a wrong year or a placeholder date"
    )
    return df[~far]


def _check_span(df, source: str) -> None:
    """Refuse a log whose work spans decades: the replay walks every hour of it."""
    _, earliest, latest = _touch_times(df)
    first, last = earliest.min(), latest.max()
    if last - first > MAX_SPAN_YEARS * YEAR:
        raise ValueError(
            f"{source}: its work spans {(last - first) / YEAR:,.0f} years ({_date(first)} to {_date(last)}), "
            f"more than {MAX_SPAN_YEARS}: fix or remove the far-off timestamps"
        )


def _short_span_warning(items: list[WorkItem], calendar: Calendar, least: float) -> list[str]:
    """The warning that the offered load is taken over `least` open seconds, when the work
    arrives within less (see the module doc)."""
    arriving = calendar.open_seconds(items[0].arrival, items[-1].arrival)
    if arriving >= least:
        return []
    within = "all at one moment" if arriving == 0 else f"within {arriving / 60:.0f} minutes of opening time"
    return [
        f"the log's work ({len(items)} items) arrives {within}: too short to show a rate; the offered load "
        f"is its touch time over {least / 3600:.2g} h (an hour, or its longest touch), as if it all came "
        "in that time (a longer log gives a truer load)"
    ]


def _default_words(options: LogOptions, terms: dict[str, ActivityTerms]) -> str:
    given = sum(1 for t in terms.values() if t.sla_hours is not None)
    return f"{given} of {len(terms)} activities given, the rest {options.default_sla_hours:g} h"


def _markers(df) -> set[str]:
    """Activities that are start/end markers: a marker name and no touch that takes time."""
    total = df.groupby("activity")["duration_s"].max()
    return {a for a, longest in total.items() if str(a).strip().lower() in MARKER_NAMES and longest <= 0}


def _items(df, terms, sla, estimate, calendar, default_priority) -> list[WorkItem]:
    items: list[WorkItem] = []
    counters: dict[tuple[str, str], int] = {}
    due_cache: dict[tuple[float, float], float] = {}
    for case, act, ready, h, value, prio in zip(
        df["case"].to_numpy(),
        df["activity"].to_numpy(),
        df["ready_local"].to_numpy(),
        df["handling"].to_numpy(),
        df["value"].to_numpy(dtype=float),
        df["priority"].to_numpy(dtype=float),
    ):
        k = counters[(case, act)] = counters.get((case, act), 0) + 1
        t = terms[act]
        key = (float(ready), sla[act])
        due = due_cache.get(key)
        if due is None:
            due = due_cache[key] = calendar.add_open_seconds(float(ready), sla[act] * 3600)
        items.append(
            WorkItem(
                id=f"{case}:{act}:{k}",
                work_type=act,
                required_skills={act: 1},
                arrival=float(ready),
                handling_seconds=float(h),
                due=due,
                priority=t.priority
                if t.priority is not None
                else (default_priority if math.isnan(prio) else float(prio)),
                value=t.value if t.value is not None else (0.0 if math.isnan(value) else float(value)),
                effort_estimate=float(estimate[act]),
            )
        )
    items.sort(key=lambda it: it.arrival)
    return items


def _profiles(df, estimate, options: LogOptions) -> list[SkillProfile]:
    profiles: list[SkillProfile] = []
    named = df[df["resource"] != ""]
    floor = min(options.min_profile_volume, max(1, len(df) // 100))
    for res, counts in named.groupby("resource")["activity"].value_counts().groupby(level=0):
        total = int(counts.sum())
        if total < floor:
            continue
        skills = {
            act: min(5, 1 + int(math.log10(c)))
            for (_, act), c in counts.items()
            if c >= options.min_skill_share * total
        }
        profiles.append(SkillProfile(skills, float(total), str(res)))
    return profiles or [SkillProfile({a: 1 for a in estimate}, 1.0, "generalist")]
