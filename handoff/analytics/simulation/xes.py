"""Read the human work out of an XES event log (BPI Challenge 2012 and logs of the same shape).

A *work item* in the replay is one **touch**: a START event and the COMPLETE event that closes
it, for the same case and the same activity. Rules, and why:

- Pairing: each case keeps a stack of open STARTs per activity; a COMPLETE closes the most
  recent open START of the same case and activity. Pairing a COMPLETE with "the previous
  event" instead gives negative durations, because a case often has several activities open.
  COMPLETEs with no open START and STARTs never closed are dropped (and counted).
- Which activities are human work: those that have START events (BPIC's `W_*` activities;
  its `A_*` and `O_*` events are instantaneous system events with COMPLETE only). An optional
  name prefix narrows it further.
- When a touch became ready: the first touch after a SCHEDULE event is ready at the SCHEDULE
  time; a later touch of the same case and activity with no new SCHEDULE (a follow-up call, a
  second sitting) is ready at its own logged START - the log does not say when it was really
  ready, and pulling it forward to the previous COMPLETE would invent work the customer was
  not yet ready for. SCHEDULEs never started are dropped (and counted).
- Touch time is the COMPLETE minus START (time-zone aware); interruption capping is applied
  by the workload builder, not here, so the cache keeps the raw facts.

Times come out twice: `*_local` are naive local wall-clock epoch seconds (what shift calendars
use), durations are true elapsed seconds.

Parsing 74 MB of XML takes a few seconds, so the result is cached as a pickle keyed by the
file's size and modification time (pyarrow is not a dependency, so no parquet).
"""

from __future__ import annotations

import gzip
import os
import pickle
import xml.etree.ElementTree as ET
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

CACHE_VERSION = 1
_XES_NS = "{http://www.xes-standard.org/}"


@dataclass
class ParsedLog:
    """The touches of a log plus the counts a reader needs to trust them."""

    touches: pd.DataFrame  # one row per touch, columns below
    stats: dict[str, int] = field(default_factory=dict)

    COLUMNS = ("case", "activity", "resource", "ready_local", "start_local", "duration_s", "value", "scheduled")


def default_cache_dir() -> Path:
    return Path(os.environ.get("HANDOFF_CACHE_DIR", Path.home() / ".cache" / "handoff"))


def load_touches(
    path: str | Path,
    cache_dir: str | Path | None = None,
    value_attribute: str = "AMOUNT_REQ",
    activity_prefix: str = "",
) -> ParsedLog:
    """Touches of an XES log (gzip or plain), from the cache when the file has not changed."""
    path = Path(path)
    st = path.stat()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = f"{path.name}-{st.st_size}-{st.st_mtime_ns}-{value_attribute}-{activity_prefix}-v{CACHE_VERSION}.pkl"
    cache = cache_dir / key
    if cache.exists():
        try:
            with cache.open("rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError):
            pass  # a broken cache is rebuilt below
    parsed = parse_xes(path, value_attribute=value_attribute, activity_prefix=activity_prefix)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(parsed, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home still gets its answer, just without a cache
    return parsed


def _times(ts: str) -> tuple[float, float]:
    """(aware epoch seconds, naive-local epoch seconds) of an ISO timestamp."""
    dt = datetime.fromisoformat(ts)
    aware = dt.timestamp()
    offset = dt.utcoffset()
    return aware, aware + (offset.total_seconds() if offset is not None else 0.0)


def _events(path: Path):
    """Yield (case_id, case_value, [event dicts]) per trace, streaming."""
    opener = gzip.open if path.suffix == ".gz" else open
    ev_tag, tr_tag = _XES_NS + "event", _XES_NS + "trace"
    with opener(path, "rb") as f:
        in_trace = in_event = False
        case_attrs: dict[str, str] = {}
        events: list[dict[str, str]] = []
        for action, el in ET.iterparse(f, events=("start", "end")):
            tag = el.tag
            if tag.startswith(_XES_NS):
                tag_local = tag[len(_XES_NS) :]
            else:  # logs written without the namespace
                tag_local = tag
                tag = _XES_NS + tag
            if action == "start":
                if tag == ev_tag:
                    in_event = True
                elif tag == tr_tag:
                    in_trace, case_attrs, events = True, {}, []
                continue
            if tag == ev_tag:
                events.append({c.get("key"): c.get("value") for c in el})
                in_event = False
                el.clear()
            elif tag == tr_tag:
                yield case_attrs, events
                in_trace = False
                el.clear()
            elif in_trace and not in_event and tag_local in ("string", "date", "int", "float"):
                case_attrs[el.get("key")] = el.get("value")


def parse_xes(path: str | Path, value_attribute: str = "AMOUNT_REQ", activity_prefix: str = "") -> ParsedLog:
    path = Path(path)
    rows: list[tuple] = []
    stats = defaultdict(int)
    for case_attrs, events in _events(path):
        stats["cases"] += 1
        stats["events"] += len(events)
        case = case_attrs.get("concept:name", f"case{stats['cases']}")
        try:
            value = float(case_attrs.get(value_attribute, 0) or 0)
        except ValueError:
            value = 0.0
        work = []
        for seq, ev in enumerate(events):
            act = ev.get("concept:name")
            life = (ev.get("lifecycle:transition") or "").upper()
            ts = ev.get("time:timestamp")
            if act is None or ts is None or life not in ("SCHEDULE", "START", "COMPLETE"):
                continue
            if activity_prefix and not act.startswith(activity_prefix):
                continue
            aware, local = _times(ts)
            work.append((aware, seq, act, life, ev.get("org:resource"), local))
        work.sort()  # by time; ties keep log order
        started = {a for _, _, a, life, _, _ in work if life == "START"}
        pending: dict[str, deque] = defaultdict(deque)  # SCHEDULE times not yet taken up
        open_: dict[str, list] = defaultdict(list)  # stack of open STARTs per activity
        for aware, _, act, life, res, local in work:
            if act not in started:  # never started in this case: not (replayable) human work
                if life == "SCHEDULE":
                    stats["schedules_never_started"] += 1
                continue
            stats["work_events"] += 1
            if life == "SCHEDULE":
                pending[act].append(local)
            elif life == "START":
                q = pending[act]
                if q and q[0] <= local:
                    ready, scheduled = q.popleft(), True
                    while q and q[0] <= local:  # repeated SCHEDULEs before one START: one item
                        q.popleft()
                        stats["merged_schedules"] += 1
                else:
                    ready, scheduled = local, False
                open_[act].append((aware, local, ready, scheduled, res))
            else:  # COMPLETE
                stack = open_[act]
                if not stack:
                    stats["orphan_completes"] += 1
                    continue
                s_aware, s_local, ready, scheduled, s_res = stack.pop()
                rows.append((case, act, res or s_res or "", ready, s_local, aware - s_aware, value, scheduled))
        stats["unclosed_starts"] += sum(len(v) for v in open_.values())
        stats["schedules_never_started"] += sum(len(v) for v in pending.values())
    df = pd.DataFrame(rows, columns=list(ParsedLog.COLUMNS))
    stats["touches"] = len(df)
    return ParsedLog(df, dict(stats))
