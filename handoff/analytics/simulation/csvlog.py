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

Numeric dates (04/03/2024, 04.03.2024, 04-03-2024) are read in one order for the whole file,
never row by row (pandas' mixed format read 13/03 as day-first and 04/03 as month-first in one
column): day first when any date has a first field above 12 or the dates are dotted, month
first when any has a second field above 12, else month first with a warning (--dayfirst says
otherwise). A date impossible in the chosen order is unreadable (dropped and counted).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from handoff.analytics.simulation.touches import NAN
from handoff.analytics.simulation.touches import Event
from handoff.analytics.simulation.touches import ParsedLog
from handoff.analytics.simulation.touches import cached
from handoff.analytics.simulation.touches import iso_times
from handoff.analytics.simulation.touches import lifecycle
from handoff.analytics.simulation.touches import note_example
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


def load_csv_touches(
    path: str | Path, columns: dict[str, str] | None = None, cache_dir=None, dayfirst: bool | None = None
) -> ParsedLog:
    path = Path(path)
    key = "csv-" + ",".join(f"{k}={v}" for k, v in sorted((columns or {}).items())) + f"-dayfirst={dayfirst}"
    return cached(path, key, cache_dir, lambda: parse_csv(path, columns, dayfirst))


def _read(path: Path, warnings: list[str]) -> pd.DataFrame:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        import gzip

        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        # Excel on Windows writes cp1252: decoding it as UTF-8 with replacements turned
        # "Prüfung" and "Präfung" into one activity, "Pr\ufffdfung".
        text = raw.decode("cp1252", errors="replace")
        warnings.append(
            f"not UTF-8 (byte {raw[bad.start]:#04x} at {bad.start:,}): read as Windows-1252 (Excel's "
            "encoding); save the file as UTF-8 if its names look wrong"
        )
    try:
        sep = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    if not text.strip():
        raise ValueError(f"{path}: the CSV is empty: it needs a header row and one row per event")
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as bad:  # e.g. a row with more fields than the header
        raise ValueError(f"{path}: the CSV cannot be read as a table: {bad}") from None


# A numeric date, year last, at the start of a timestamp: 04/03/2024, 4.3.2024 09:00, 04-03-24.
NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?=[\sT]|$)")


def date_order(columns: list[pd.Series], dayfirst: bool | None = None) -> tuple[bool, list[str], list[str]]:
    """(day first?, notes, warnings) for the numeric dates in the time columns, decided once for
    the whole file (rules in the module doc); `dayfirst` given (--dayfirst / --monthfirst) wins."""
    found = [m for col in columns for v in col.tolist() if v and (m := NUMERIC_DATE.match(v))]
    if not found or dayfirst is not None:
        words = "day first" if dayfirst else "month first"
        return bool(dayfirst), [f"numeric dates read {words} (as told)"] if found else [], []
    day = next((m.group(0).strip() for m in found if int(m.group(1)) > 12), None)
    month = next((m.group(0).strip() for m in found if int(m.group(3)) > 12), None)
    if day and month:
        mixed = f"the dates mix orders ({day!r} is day first, {month!r} month first); read month first"
        return False, [], [f"{mixed}, the dates impossible that way are dropped (--dayfirst to read day first)"]
    if day or month:
        words = "day first" if day else "month first"
        return bool(day), [f"numeric dates read {words} (as {(day or month)!r} shows)"], []
    example, ours = found[0].group(0).strip(), found[0]
    if any(m.group(2) == "." for m in found):
        return True, [f"dotted dates read day first ({example!r} = {_iso_date(ours, True)})"], []
    return (
        False,
        [],
        [
            f"{len(found)} dates such as {example!r} could be day or month first (no field above 12); read "
            f"month first ({example!r} = {_iso_date(ours, False)}); give --dayfirst if the day comes first "
            "(--monthfirst to confirm)"
        ],
    )


def _iso_date(m: re.Match, dayfirst: bool) -> str:
    """The ISO date of a NUMERIC_DATE match in the given order (may be impossible: 2024-13-04)."""
    a, b, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
    day, month = (a, b) if dayfirst else (b, a)
    if len(m.group(4)) == 2:  # as strptime's %y: 00-68 are 2000-2068
        year += 2000 if year < 69 else 1900
    return f"{year:04d}-{month:02d}-{day:02d}"


def _times(values: pd.Series, dayfirst: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(aware, local) epoch seconds per row; nan where empty or unreadable. Numeric dates are
    rewritten as ISO in the file's one date order first (see date_order)."""
    n = len(values)
    aware, local = np.full(n, NAN), np.full(n, NAN)
    odd: list[int] = []
    texts = values.tolist()
    for i, v in enumerate(texts):
        if not v or not v.strip():
            continue
        m = NUMERIC_DATE.match(v)
        if m:
            texts[i] = v = _iso_date(m, dayfirst) + v[m.end() :]
        try:
            aware[i], local[i] = iso_times(v)
        except ValueError:
            odd.append(i)
    if odd:
        for i, ts in zip(odd, _other_spellings([texts[i] for i in odd], dayfirst)):
            if ts is not None:
                try:
                    aware[i], local[i] = iso_times(ts.isoformat())
                except (ValueError, OverflowError):  # '-1' read by pandas as the year -1: unreadable
                    continue
    return aware, local


EPOCH = re.compile(r"\s*(\d{10}|\d{13})(?:\.\d+)?\s*")  # Unix seconds or milliseconds (2001-2286)
# A time of day with no date, or words with no digit at all ('now', 'today'): no moment in a log.
NOT_A_MOMENT = re.compile(r"\s*(?:\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp][Mm])?|[^\d]*)\s*")


def _other_spellings(texts: list[str], dayfirst: bool) -> list[pd.Timestamp | None]:
    """Timestamps that are not ISO: Unix epoch seconds or milliseconds (UTC), else what pandas
    reads. Each keeps its own UTC offset: a log whose offsets change with daylight saving time
    ("Mon, 18 Mar 2024 09:00:00 +0100", then +0200) refused whole in one batch."""
    out: list[pd.Timestamp | None] = []
    rest: list[int] = []
    for i, text in enumerate(texts):
        epoch = EPOCH.fullmatch(text)
        if NOT_A_MOMENT.fullmatch(text):  # pandas would date '09:03', 'now' or 'today' today
            out.append(None)
        elif epoch:
            number = float(text)
            out.append(pd.Timestamp(number / 1000 if len(epoch[1]) == 13 else number, unit="s", tz="UTC"))
        else:
            out.append(None)
            rest.append(i)
    try:
        read = list(
            pd.to_datetime(pd.Series([texts[i] for i in rest]), errors="coerce", format="mixed", dayfirst=dayfirst)
        )
    except ValueError:  # offsets that differ: one at a time
        read = [_one_timestamp(texts[i], dayfirst) for i in rest]
    for i, ts in zip(rest, read):
        out[i] = None if ts is None or ts is pd.NaT or pd.isna(ts) else ts
    return out


def _one_timestamp(text: str, dayfirst: bool) -> pd.Timestamp | None:
    try:
        ts = pd.to_datetime(text, format="mixed", dayfirst=dayfirst)
    except (ValueError, OverflowError):
        return None
    return None if pd.isna(ts) else ts


def _numbers(df: pd.DataFrame, col: str | None, warnings: list[str]) -> np.ndarray:
    """A value or priority column as numbers, its separators read one way for the whole column:
    "1,234.50" and "1.234,50" are both 1234.5 (the last separator in a number that has both is
    the decimal one); a comma alone is a decimal comma, said in a warning when every such number
    could have been thousands ("1,500"). Currency signs and spaces are ignored; what is still
    not a number is counted in a warning (it was read as 0 without a word)."""
    if col is None:
        return np.full(len(df), NAN)
    given = df[col].astype(str)
    text = given.str.replace(r"[^\d.,eE+-]", "", regex=True)
    both = text[text.str.contains(",", regex=False) & text.str.contains(".", regex=False)]
    comma_decimal = True
    if len(both):
        comma_decimal = int((both.str.rfind(",") > both.str.rfind(".")).sum()) * 2 >= len(both)
    if comma_decimal:
        commas = text[text.str.contains(",", regex=False) & ~text.str.contains(".", regex=False)]
        if len(commas) and commas.str.fullmatch(r"-?\d{1,3}(,\d{3})+").all() and not len(both):
            warnings.append(
                f"{col}: numbers like {commas.iloc[0]!r} read with a decimal comma ({commas.iloc[0].replace(',', '.')}); "
                "write them without a thousands separator if they meant thousands"
            )
        text = (
            text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
            if len(both)
            else text.str.replace(",", ".", regex=False)
        )
    else:
        text = text.str.replace(",", "", regex=False)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, copy=True)
    numbers[~np.isfinite(numbers)] = np.nan  # '1e309', 'inf': no amount of money or priority
    unreadable = np.isnan(numbers) & (given.str.strip() != "").to_numpy()
    if unreadable.any():
        first = given[unreadable].iloc[0]
        warnings.append(f"{col}: {int(unreadable.sum())} values are not numbers (e.g. {first!r}); read as none")
    return numbers


def parse_csv(path: str | Path, columns: dict[str, str] | None = None, dayfirst: bool | None = None) -> ParsedLog:
    path = Path(path)
    read_warnings: list[str] = []
    df = _read(path, read_warnings)
    m = resolve_columns(list(df.columns), columns or {})
    end_col = m.get("end", m.get("timestamp"))
    time_cols = [df[c] for c in (m.get("start"), end_col) if c is not None]
    day_first, notes, warnings = date_order(time_cols, dayfirst)
    warnings = read_warnings + warnings
    e_aware, e_local = _times(df[end_col], day_first)
    s_aware, s_local = (
        _times(df[m["start"]], day_first) if "start" in m else (np.full(len(df), NAN), np.full(len(df), NAN))
    )
    life = df[m["lifecycle"]].to_numpy() if "lifecycle" in m else None
    resource = df[m["resource"]].to_numpy() if "resource" in m else [None] * len(df)
    value, priority = _numbers(df, m.get("value"), warnings), _numbers(df, m.get("priority"), warnings)
    stats: dict[str, int] = defaultdict(int)
    stats["events"] = len(df)
    by_case: dict[str, list[Event]] = defaultdict(list)
    for i, (case, act) in enumerate(zip(df[m["case"]].to_numpy(), df[m["activity"]].to_numpy())):
        kind = lifecycle(life[i] if life is not None else None)
        if not act:
            stats["events_without_activity"] += 1
        elif math.isnan(e_aware[i]):
            note_example(stats, "events_without_time", df[end_col].iat[i])
        elif not math.isnan(s_aware[i]):
            interval = (s_aware[i], s_local[i], value[i], priority[i])
            by_case[case].append((e_aware[i], i, act, "INTERVAL", resource[i] or None, e_local[i], *interval))
        elif "start" in m and (life is None or not life[i].strip()):
            note_example(stats, "rows_without_start", df[m["start"]].iat[i])  # an interval row without its start
        elif kind is None:
            stats["other_lifecycle_events"] += 1
        else:
            by_case[case].append(
                (e_aware[i], i, act, kind, resource[i] or None, e_local[i], NAN, NAN, value[i], priority[i])
            )
    parsed = touches_from_cases(((c, 0.0, evs) for c, evs in by_case.items()), stats=dict(stats))
    parsed.stats["columns"] = m  # type: ignore[assignment]  (what was read, for the notes)
    parsed.notes, parsed.warnings = notes, warnings
    return parsed
