"""Read the human work out of a CSV event log (what most ticketing and workflow tools export).

A column mapping says which column is what: `case`, `activity`, `resource`, and the times -
either `start` and `end` (one row per piece of work: an interval), or `timestamp` and
`lifecycle` (one row per START / COMPLETE event, paired as in XES). `value` and `priority` are
optional per-row numbers. Unmapped roles are guessed from common header names (Disco's
`Case ID` / `Start Timestamp` / `Complete Timestamp`, pm4py's `case:concept:name` /
`start_timestamp` / `time:timestamp`, and plain `case`, `activity`, `start`, `end`).

The delimiter (`,` `;` tab `|`) is sniffed. Timestamps: ISO 8601 with or without an offset is
read exactly (local wall clock kept); anything else is handed to pandas. Rows without a
usable end time are dropped and counted.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from handoff.analytics.simulation.touches import NAN
from handoff.analytics.simulation.touches import Event
from handoff.analytics.simulation.touches import ParsedLog
from handoff.analytics.simulation.touches import cached
from handoff.analytics.simulation.touches import iso_times
from handoff.analytics.simulation.touches import touches_from_cases

ROLES = ("case", "activity", "resource", "start", "end", "timestamp", "lifecycle", "value", "priority")
# Header names recognised per role, compared without case, spaces, underscores, dashes or colons.
GUESSES: dict[str, tuple[str, ...]] = {
    "case": ("caseconceptname", "caseid", "case", "casenumber", "ticket", "ticketid", "orderid"),
    "activity": ("conceptname", "activity", "activityname", "task", "taskname", "eventname", "step"),
    "resource": ("orgresource", "resource", "user", "employee", "agent", "assignee", "worker"),
    "start": ("starttimestamp", "start", "starttime", "timestart", "started", "startedat"),
    "end": ("completetimestamp", "endtimestamp", "end", "endtime", "complete", "completed", "completedat", "finished"),
    "timestamp": ("timetimestamp", "timestamp", "time", "eventtime", "datetime"),
    "lifecycle": ("lifecycletransition", "lifecycle", "transition", "eventtype"),
    "value": ("value", "amount", "ordervalue", "casevalue"),
    "priority": ("priority", "prio"),
}


def parse_columns(text: str | None) -> dict[str, str]:
    """`case=CaseID,activity=Activity,...` -> {role: column}; unknown roles are refused."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        role, sep, column = part.partition("=")
        role = role.strip().lower()
        if not sep or not column.strip():
            raise ValueError(f"--columns: {part!r} is not role=column")
        if role not in ROLES:
            raise ValueError(f"--columns: unknown role {role!r}; roles are {', '.join(ROLES)}")
        mapping[role] = column.strip()
    return mapping


def _norm(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def resolve_columns(header: list[str], given: dict[str, str]) -> dict[str, str]:
    """The mapping to use: the given roles (checked against the header), the rest guessed."""
    missing = [c for c in given.values() if c not in header]
    if missing:
        raise ValueError(f"column(s) {', '.join(map(repr, missing))} not in the CSV; it has {', '.join(header)}")
    by_norm = {_norm(h): h for h in reversed(header)}
    out = dict(given)
    taken = set(given.values())
    for role in ROLES:
        if role in out:
            continue
        for guess in GUESSES[role]:
            col = by_norm.get(guess)
            if col is not None and col not in taken:
                out[role] = col
                taken.add(col)
                break
    if "end" not in out and "timestamp" in out and ("start" in out or "lifecycle" not in out):
        out["end"] = out.pop("timestamp")  # an interval log's single timestamp is the end
    for role in ("case", "activity"):
        if role not in out:
            raise ValueError(f"the CSV needs a {role} column (--columns {role}=...); it has {', '.join(header)}")
    if "end" not in out and "timestamp" not in out:
        raise ValueError(f"the CSV needs an end time column (--columns end=...); it has {', '.join(header)}")
    return out


def load_csv_touches(path: str | Path, columns: dict[str, str] | None = None, cache_dir=None) -> ParsedLog:
    path = Path(path)
    key = "csv-" + ",".join(f"{k}={v}" for k, v in sorted((columns or {}).items()))
    return cached(path, key, cache_dir, lambda: parse_csv(path, columns))


def _read(path: Path) -> pd.DataFrame:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        import gzip

        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        sep = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)


def _times(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(aware, local) epoch seconds per row; nan where empty or unreadable."""
    n = len(values)
    aware, local = np.full(n, NAN), np.full(n, NAN)
    odd: list[int] = []
    for i, v in enumerate(values.tolist()):
        if not v or not v.strip():
            continue
        try:
            aware[i], local[i] = iso_times(v)
        except ValueError:
            odd.append(i)
    if odd:
        parsed = pd.to_datetime(values.iloc[odd], errors="coerce", format="mixed")
        for i, ts in zip(odd, parsed):
            if ts is not pd.NaT and not pd.isna(ts):
                aware[i], local[i] = iso_times(ts.isoformat())
    return aware, local


def _numbers(df: pd.DataFrame, col: str | None) -> np.ndarray:
    if col is None:
        return np.full(len(df), NAN)
    return pd.to_numeric(df[col].str.replace(",", ".", regex=False), errors="coerce").to_numpy(dtype=float)


def parse_csv(path: str | Path, columns: dict[str, str] | None = None) -> ParsedLog:
    path = Path(path)
    df = _read(path)
    m = resolve_columns(list(df.columns), columns or {})
    end_col = m.get("end", m.get("timestamp"))
    e_aware, e_local = _times(df[end_col])
    s_aware, s_local = _times(df[m["start"]]) if "start" in m else (np.full(len(df), NAN), np.full(len(df), NAN))
    life = df[m["lifecycle"]].str.strip().str.upper().to_numpy() if "lifecycle" in m else None
    resource = df[m["resource"]].to_numpy() if "resource" in m else [None] * len(df)
    value, priority = _numbers(df, m.get("value")), _numbers(df, m.get("priority"))
    stats: dict[str, int] = defaultdict(int)
    stats["events"] = len(df)
    by_case: dict[str, list[Event]] = defaultdict(list)
    for i, (case, act) in enumerate(zip(df[m["case"]].to_numpy(), df[m["activity"]].to_numpy())):
        if math.isnan(e_aware[i]) or not act:
            stats["events_without_time"] += 1
            continue
        res = resource[i] or None
        if not math.isnan(s_aware[i]):
            ev = (e_aware[i], i, act, "INTERVAL", res, e_local[i], s_aware[i], s_local[i], value[i], priority[i])
        elif life is not None and life[i] in ("SCHEDULE", "START", "COMPLETE"):
            ev = (e_aware[i], i, act, life[i], res, e_local[i], NAN, NAN, value[i], priority[i])
        elif "start" in m:
            stats["rows_without_start"] += 1
            continue
        else:
            ev = (e_aware[i], i, act, "COMPLETE", res, e_local[i], NAN, NAN, value[i], priority[i])
        by_case[case].append(ev)
    parsed = touches_from_cases(((c, 0.0, evs) for c, evs in by_case.items()), stats=dict(stats))
    parsed.stats["columns"] = m  # type: ignore[assignment]  (what was read, for the notes)
    return parsed
