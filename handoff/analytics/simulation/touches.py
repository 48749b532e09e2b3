"""Touches: the human work in an event log, whatever wrote it (XES reader in xes.py, CSV in csvlog.py).

A *work item* in the replay is one **touch**: a stretch of work on one activity of one case,
with a start and an end. Event logs record it in one of two ways, and both are read here:

- **Lifecycle pairs** (BPIC 2012, ProM, Disco): a START event and the COMPLETE event that closes
  it, for the same case and the same activity. Each case keeps a stack of open STARTs per
  activity; a COMPLETE closes the most recent open START of the same case and activity.
  Pairing a COMPLETE with "the previous event" instead gives negative durations, because a case
  often has several activities open. COMPLETEs with no open START and STARTs never closed are
  dropped (and counted).
- **Intervals** (pm4py, Celonis-style exports): one event carrying both a start time
  (`start_timestamp`) and an end time (`time:timestamp`), no lifecycle. One event = one touch.

Which activities are human work: in lifecycle logs, those that have START events in the case
(BPIC's `W_*` activities; its `A_*` and `O_*` events are instantaneous system events with
COMPLETE only). In interval logs, every event. An optional name prefix narrows it further.

When a touch became ready: the first touch after a SCHEDULE event is ready at the SCHEDULE
time; a later touch of the same case and activity with no new SCHEDULE (a follow-up call, a
second sitting), and every interval touch, is ready at its own logged start - the log does not
say when it was really ready, and pulling it forward to the previous end would invent work the
customer was not yet ready for. SCHEDULEs never started are dropped (and counted).

Times come out twice: `*_local` are naive local wall-clock epoch seconds (what shift calendars
use), durations are true elapsed seconds (time-zone aware). Interruption capping is applied by
the workload builder, not here, so the cache keeps the raw facts.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
from collections import defaultdict
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from pathlib import Path

import pandas as pd

CACHE_VERSION = 4  # 3: shared lifecycle mapping, date order, drop counts, reader notes; 4: encodings, numbers

# One event as the pairing sees it: (aware end/at, seq, activity, life, resource, local end/at,
# aware start or nan, local start or nan, value or nan, priority or nan). life is SCHEDULE,
# START, COMPLETE or INTERVAL (an event that carries its own start).
Event = tuple[float, int, str, str, str | None, float, float, float, float, float]
NAN = math.nan


@dataclass
class ParsedLog:
    """The touches of a log plus the counts a reader needs to trust them."""

    touches: pd.DataFrame  # one row per touch, columns below
    stats: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how the reader read it (date order)
    warnings: list[str] = field(default_factory=list)  # what it had to guess (an ambiguous date order)

    COLUMNS = (
        "case",
        "activity",
        "resource",
        "ready_local",
        "start_local",
        "duration_s",
        "value",
        "scheduled",
        "priority",
    )


def default_cache_dir() -> Path:
    return Path(os.environ.get("HANDOFF_CACHE_DIR", Path.home() / ".cache" / "handoff"))


def cached(path: Path, options: str, cache_dir: str | Path | None, build: Callable[[], ParsedLog]) -> ParsedLog:
    """`build()`'s answer for this file and these reader options, from a pickle cache keyed by
    the file's size and modification time (parsing 74 MB of XML takes seconds; pyarrow is not a
    dependency, so no parquet). A broken or unwritable cache only costs the time."""
    st = path.stat()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # Which file (two logs of one name in two folders, same size and time, are not one), and
    # every reader option in full (a shortened spelling of them let two option sets share).
    which = hashlib.sha256(f"{path.resolve()}\0{st.st_dev}:{st.st_ino}\0{options}".encode()).hexdigest()[:24]
    cache = cache_dir / f"{path.name}-{st.st_size}-{st.st_mtime_ns}-{which}-v{CACHE_VERSION}.pkl"
    if cache.exists():
        try:
            with cache.open("rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass  # rebuilt below
    parsed = build()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(parsed, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache)
    except OSError:
        pass
    return parsed


def iso_times(ts: str) -> tuple[float, float]:
    """(aware epoch seconds, naive-local epoch seconds) of an ISO timestamp (a date alone is
    its midnight; no offset = local time, read as UTC)."""
    dt = datetime.fromisoformat(ts.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    aware = dt.timestamp() if dt.tzinfo is not None else (dt - datetime(1970, 1, 1)).total_seconds()
    offset = dt.utcoffset()
    return aware, aware + (offset.total_seconds() if offset is not None else 0.0)


# lifecycle:transition values that bound a touch. ATE_* is how some exporters spell the plain
# ones; every other transition (assign, suspend, resume, withdraw, ...) is not a touch boundary.
LIFECYCLES = {
    "SCHEDULE": "SCHEDULE",
    "START": "START",
    "COMPLETE": "COMPLETE",
    "ATE_START": "START",
    "ATE_COMPLETE": "COMPLETE",
}


def lifecycle(value: str | None) -> str | None:
    """SCHEDULE, START or COMPLETE for a logged transition, None for any other. No value is a
    COMPLETE (the XES default). One mapping for XES and CSV, so the same log exported either
    way gives the same touches: taking an unknown value (suspend) as COMPLETE cut touches short."""
    text = (value or "").strip().upper()
    return LIFECYCLES.get(text or "COMPLETE")


def note_example(stats: dict, what: str, value: str | None) -> None:
    """Count one dropped event under `what` and keep the first unreadable value as an example
    (stats[what + "_example"]), so the warning can show the user what could not be read."""
    stats[what] += 1
    if value is not None and value.strip() and not stats.get(f"{what}_example"):
        stats[f"{what}_example"] = value.strip()[:40]


def touches_from_cases(
    cases: Iterable[tuple[str, float, list[Event]]], activity_prefix: str = "", stats: dict | None = None
) -> ParsedLog:
    """Pair every case's events into touches (rules in the module docstring)."""
    rows: list[tuple] = []
    st: dict[str, int] = defaultdict(int, stats or {})
    for case, case_value, events in cases:
        st["cases"] += 1
        if activity_prefix:
            events = [e for e in events if e[2].startswith(activity_prefix)]
        _pair_case(case, case_value, events, st, rows)
    df = pd.DataFrame(rows, columns=list(ParsedLog.COLUMNS))
    st["touches"] = len(df)
    return ParsedLog(df, dict(st))


def _pair_case(case: str, case_value: float, events: list[Event], st: dict, rows: list) -> None:
    events = sorted(events, key=lambda e: (e[0], e[1]))  # by time; ties keep log order
    started = {e[2] for e in events if e[3] == "START"}
    pending: dict[str, deque] = defaultdict(deque)  # SCHEDULE times not yet taken up
    open_: dict[str, list] = defaultdict(list)  # stack of open STARTs per activity
    for aware, _, act, life, res, local, s_aware_iv, s_local_iv, value, priority in events:
        if math.isnan(value):
            value = case_value
        if life == "INTERVAL":
            st["interval_events"] += 1
            duration = aware - s_aware_iv
            if duration < 0:
                st["negative_intervals"] += 1
                continue
            rows.append((case, act, res or "", s_local_iv, s_local_iv, duration, value, False, priority))
            continue
        if act not in started:  # never started in this case: not (replayable) human work
            if life == "SCHEDULE":
                st["schedules_never_started"] += 1
            elif life == "COMPLETE":
                st["complete_only_events"] += 1
            continue
        st["work_events"] += 1
        if life == "SCHEDULE":
            pending[act].append(local)
        elif life == "START":
            q = pending[act]
            if q and q[0] <= local:
                ready, scheduled = q.popleft(), True
                while q and q[0] <= local:  # repeated SCHEDULEs before one START: one item
                    q.popleft()
                    st["merged_schedules"] += 1
            else:
                ready, scheduled = local, False
            open_[act].append((aware, local, ready, scheduled, res, priority))
        else:  # COMPLETE
            stack = open_[act]
            if not stack:
                st["orphan_completes"] += 1
                continue
            s_aware, s_local, ready, scheduled, s_res, s_priority = stack.pop()
            prio = priority if not math.isnan(priority) else s_priority
            rows.append((case, act, res or s_res or "", ready, s_local, aware - s_aware, value, scheduled, prio))
    st["unclosed_starts"] += sum(len(v) for v in open_.values())
    st["schedules_never_started"] += sum(len(v) for v in pending.values())


def why_unusable(parsed: ParsedLog, source: str) -> str:
    """The error a user gets when a log yields no touches: what it holds, and what is missing."""
    st = parsed.stats
    found = (
        f"{st.get('cases', 0)} cases, {st.get('events', 0)} events"
        + (f", {st['complete_only_events']} of them COMPLETE-only" if st.get("complete_only_events") else "")
        + (f", {st['orphan_completes']} COMPLETEs without a START" if st.get("orphan_completes") else "")
        + (f", {st['unclosed_starts']} STARTs never completed" if st.get("unclosed_starts") else "")
        + (f", {st['events_without_time']} without a readable timestamp" if st.get("events_without_time") else "")
        + (f", {st['rows_without_start']} without a readable start" if st.get("rows_without_start") else "")
        + (f", {st['events_without_activity']} without an activity" if st.get("events_without_activity") else "")
    )
    return (
        f"{source}: no work items found ({found}). The simulator needs how long each piece of work took: "
        "START and COMPLETE per work item (lifecycle:transition), or a start_timestamp attribute per event, "
        "or, in a CSV, a start column beside the end column (--columns start=...,end=...)."
    )
