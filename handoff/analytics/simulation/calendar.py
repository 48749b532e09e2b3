"""Working hours for the simulator: when a rep is on shift, and what "due in 8 business hours" means.

Simulated time is seconds on a *local wall clock* expressed as if it were UTC ("naive local
epoch seconds"): the day and hour of a timestamp are read without any time-zone arithmetic, so
a weekly shift pattern is simple integer maths. Workloads convert their timestamps to this
clock once (BPIC 2012's +01:00/+02:00 offsets are dropped after the durations are computed).

Two calendars:
- `WeeklyCalendar`: opening hours per weekday (Monday = 0), e.g. Mon-Fri 09:00-21:00.
- `AlwaysOpen`: a 24x7 team (used for the queueing-theory checks and the synthetic workload).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from handoff.core.clock import open_seconds_by
from handoff.core.clock import parse_hhmm
from handoff.core.clock import parse_work_days

DAY = 86_400.0
WEEK = 7 * DAY
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Calendar(Protocol):
    def intervals(self, start: float, end: float) -> Iterator[tuple[float, float]]:
        """Open intervals overlapping [start, end), clipped to it, in time order."""
        ...

    def open_seconds(self, start: float, end: float) -> float: ...

    def add_open_seconds(self, start: float, seconds: float) -> float:
        """The moment `seconds` of open time after `start` have passed (due-date maths)."""
        ...

    def positions(self, times: np.ndarray) -> np.ndarray:
        """Open seconds since a fixed origin at each instant (push's business clock:
        handoff.core.routing.urgency)."""
        ...

    def describe(self) -> str: ...


def weekday(t: float) -> int:
    """Monday = 0 for a naive-local timestamp."""
    return (int(t // DAY) + _EPOCH_WEEKDAY) % 7


@dataclass(frozen=True)
class AlwaysOpen:
    """A team that is always at work (24x7)."""

    def intervals(self, start: float, end: float) -> Iterator[tuple[float, float]]:
        if end > start:
            yield (start, end)

    def open_seconds(self, start: float, end: float) -> float:
        return max(0.0, end - start)

    def add_open_seconds(self, start: float, seconds: float) -> float:
        return start + seconds

    def positions(self, times: np.ndarray) -> np.ndarray:
        return np.asarray(times, dtype=float)

    def describe(self) -> str:
        return "always open (24x7)"


ALWAYS_OPEN = AlwaysOpen()


@dataclass(frozen=True)
class WeeklyCalendar:
    """Opening hours that repeat every week: `hours[weekday]` = ((start_h, end_h), ...)."""

    hours: tuple[tuple[tuple[float, float], ...], ...]  # 7 entries, Monday first

    def __post_init__(self) -> None:
        if len(self.hours) != 7:
            raise ValueError("a weekly calendar needs 7 days (Monday first)")
        if not any(self.hours):
            raise ValueError("a weekly calendar must be open at some time")
        for day in self.hours:
            for s, e in day:
                if not 0 <= s < e <= 24:
                    raise ValueError(f"bad opening hours {s}-{e}")

    @classmethod
    def from_shift(cls, start: str = "09:00", end: str = "17:00", work_days: str = "01234") -> WeeklyCalendar:
        """The same shift strings a live Worker has (handoff.core.routing.eligibility)."""
        s, e = parse_hhmm(start) / 60, parse_hhmm(end) / 60
        days = parse_work_days(work_days)
        if s >= e:
            raise ValueError("overnight shifts are not supported by the simulator calendar")
        return cls(tuple(((s, e),) if d in days else () for d in range(7)))

    @classmethod
    def from_dict(cls, hours: dict[int, list[tuple[float, float]]]) -> WeeklyCalendar:
        return cls(tuple(tuple((float(s), float(e)) for s, e in hours.get(d, [])) for d in range(7)))

    def intervals(self, start: float, end: float) -> Iterator[tuple[float, float]]:
        day0 = math.floor(start / DAY)
        day = day0
        while day * DAY < end:
            for s_h, e_h in self.hours[(day + _EPOCH_WEEKDAY) % 7]:
                s = max(day * DAY + s_h * 3600, start)
                e = min(day * DAY + e_h * 3600, end)
                if e > s:
                    yield (s, e)
            day += 1

    def open_seconds(self, start: float, end: float) -> float:
        if end <= start:
            return 0.0
        weekly = sum(e - s for day in self.hours for s, e in day) * 3600
        whole_weeks = math.floor((end - start) / WEEK)
        rest_start = start + whole_weeks * WEEK
        return whole_weeks * weekly + sum(e - s for s, e in self.intervals(rest_start, end))

    def add_open_seconds(self, start: float, seconds: float) -> float:
        remaining = seconds
        weekly = self.weekly_hours() * 3600
        whole = math.floor(remaining / weekly) - 1  # every week holds `weekly`: skip all but the last
        if whole > 0:  # day by day, an SLA of 10 million hours took minutes per item
            start += whole * WEEK
            remaining -= whole * weekly
        day = math.floor(start / DAY)
        while True:
            for s_h, e_h in self.hours[(day + _EPOCH_WEEKDAY) % 7]:
                s = max(day * DAY + s_h * 3600, start)
                e = day * DAY + e_h * 3600
                if e <= s:
                    continue
                if remaining <= e - s:
                    return s + remaining
                remaining -= e - s
            day += 1

    def positions(self, times: np.ndarray) -> np.ndarray:
        """Open seconds since the Monday 00:00 before the epoch (day 0 was a Thursday): whole
        weeks times the weekly hours, plus what the week's table has counted by then."""
        t = np.asarray(times, dtype=float) + _EPOCH_WEEKDAY * DAY
        weeks = np.floor(t / WEEK)
        into_week = t - weeks * WEEK
        return weeks * (self.weekly_hours() * 3600) + open_seconds_by(*self._week_table, into_week)

    @cached_property
    def _week_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(opens, lengths, open seconds before each) of one week's spans, seconds from Monday 00:00."""
        spans = [(d * DAY + s * 3600, (e - s) * 3600) for d in range(7) for s, e in self.hours[d]]
        opens = np.array([s for s, _ in spans])
        lengths = np.array([n for _, n in spans])
        return opens, lengths, np.concatenate(([0.0], np.cumsum(lengths)[:-1]))

    def weekly_hours(self) -> float:
        return sum(e - s for day in self.hours for s, e in day)

    def describe(self) -> str:
        """e.g. 'Mon-Fri 09-21, Sat 10-17' (days with the same hours grouped)."""
        parts: list[str] = []
        d = 0
        while d < 7:
            if not self.hours[d]:
                d += 1
                continue
            j = d
            while j + 1 < 7 and self.hours[j + 1] == self.hours[d]:
                j += 1
            days = DAY_NAMES[d] if j == d else f"{DAY_NAMES[d]}-{DAY_NAMES[j]}"
            spans = ",".join(f"{_hh(s)}-{_hh(e)}" for s, e in self.hours[d])
            parts.append(f"{days} {spans}")
            d = j + 1
        return ", ".join(parts)


def _hh(h: float) -> str:
    whole = int(h)
    minutes = round((h - whole) * 60)
    return f"{whole:02d}" if minutes == 0 else f"{whole:02d}:{minutes:02d}"


_DAY_INDEX = {name.lower(): k for k, name in enumerate(DAY_NAMES)}
_SPAN = re.compile(
    r"\s*(?P<days>[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?(?:\s*,\s*[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?)*)"
    r"\s+(?P<start>\d{1,2}(?::\d{2})?)\s*-\s*(?P<end>\d{1,2}(?::\d{2})?)\s*(?:[,;]|$)"
)


def _hours(text: str) -> float:
    h, _, m = text.partition(":")
    if m and not 0 <= int(m) < 60:  # 08:60 is no time of day (it was read as 09:00)
        raise ValueError(f"{text} is not a time of day")
    return int(h) + (int(m) / 60 if m else 0.0)


def parse_hours(text: str) -> Calendar:
    """Opening hours as a person writes them: "Mon-Fri 08:00-17:00", "Mon-Fri 09-21, Sat 10-17",
    "Mon,Wed 08-12; Tue 13-17", or "24x7" / "always". Raises ValueError naming what is wrong."""
    t = text.strip()
    if t.lower() in ("24x7", "24/7", "always", "always open"):
        return ALWAYS_OPEN
    hours: dict[int, list[tuple[float, float]]] = {}
    pos = 0
    while pos < len(t):
        m = _SPAN.match(t, pos)
        if m is None:
            raise ValueError(
                f'opening hours {text!r}: cannot read {t[pos:]!r}; write e.g. "Mon-Fri 08:00-17:00, Sat 10-14"'
            )
        try:
            start, end = _hours(m["start"]), _hours(m["end"])
        except ValueError as bad:
            raise ValueError(f"opening hours {text!r}: {bad}") from None
        if not 0 <= start < end <= 24:
            raise ValueError(f"opening hours {text!r}: {m['start']}-{m['end']} is not a span within one day")
        for part in m["days"].split(","):
            a, _, b = (x.strip().lower() for x in part.partition("-"))
            if a not in _DAY_INDEX or (b and b not in _DAY_INDEX):
                raise ValueError(f"opening hours {text!r}: unknown day in {part.strip()!r} (use Mon..Sun)")
            first, last = _DAY_INDEX[a], _DAY_INDEX[b or a]
            days = range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
            for d in days:
                hours.setdefault(d, []).append((start, end))
        pos = m.end()
    if not hours:
        raise ValueError(f"opening hours {text!r}: no days given")
    return WeeklyCalendar.from_dict({d: _merged(spans) for d, spans in hours.items()})


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
