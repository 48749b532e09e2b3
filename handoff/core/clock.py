"""Time helpers every layer shares: naive-UTC datetimes, epoch seconds, shifts in a time zone.

The database keeps naive UTC; callers may pass aware datetimes. The routing policies and the
simulator count time in float seconds since the epoch. A rep's working hours are local
wall-clock times ("09:00"-"17:00" on work days "01234", Monday = 0) in their IANA time zone.
Kept here, not in routing, because the SLA clock, reports, the simulator's calendar and the
CLI read the same strings.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

import numpy as np

_EPOCH = datetime(1970, 1, 1)


def as_utc_naive(dt: datetime) -> datetime:
    """The database keeps naive UTC; accept aware datetimes from callers too."""
    if dt.tzinfo is not None:
        return dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def epoch(dt: datetime | None) -> float:
    """Naive-UTC datetime -> epoch seconds (the policies' clock); None -> 0 (never)."""
    if dt is None:
        return 0.0
    if dt.tzinfo is not None:
        dt = as_utc_naive(dt)
    return (dt - _EPOCH).total_seconds()


def from_epoch(seconds: float) -> datetime:
    """Epoch seconds -> naive-UTC datetime (`epoch` the other way)."""
    return _EPOCH + timedelta(seconds=seconds)


def parse_hhmm(text: str) -> int:
    """'09:30' -> 570 minutes after midnight; '24:00' is allowed as the end of the day."""
    hours, sep, minutes = text.strip().partition(":")
    digits = hours.isascii() and minutes.isascii() and hours.isdigit() and minutes.isdigit()  # not "٠٩"
    if not sep or not digits or len(minutes) != 2:
        raise ValueError(f"{text!r} is not a time of day like 09:00")
    total = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or total > 24 * 60:
        raise ValueError(f"{text!r} is not a time of day between 00:00 and 24:00")
    return total


def parse_work_days(text: str) -> frozenset[int]:
    """'01234' (Mon=0) -> {0,1,2,3,4}."""
    days = set()
    for ch in text.strip():
        if ch not in "0123456":
            raise ValueError(f"work days {text!r}: use digits 0 (Monday) to 6 (Sunday), e.g. 01234")
        days.add(int(ch))
    return frozenset(days)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The rep's time zone; an unknown name falls back to UTC rather than hiding the rep."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class ShiftHolder(Protocol):
    timezone: str
    shift_start: str
    shift_end: str
    work_days: str


def in_shift(local: datetime, shift_start: str, shift_end: str, work_days: str) -> bool:
    """Is this local wall-clock time inside the shift?

    A shift that ends before it starts (22:00-06:00) runs overnight: its early-morning part
    belongs to the previous day's shift, so that day must be a work day.
    """
    start = parse_hhmm(shift_start)
    end = parse_hhmm(shift_end)
    days = parse_work_days(work_days)
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    if start == end:  # a zero-length shift means "never"; 00:00-24:00 is the all-day shift
        return False
    if start < end:
        return weekday in days and start <= minute < end
    if minute >= start:
        return weekday in days
    return minute < end and (weekday - 1) % 7 in days


def always_on(shift_start: str, shift_end: str, work_days: str) -> bool:
    """The default shift: every day, all day (no time-zone arithmetic needed)."""
    return shift_start == "00:00" and shift_end == "24:00" and len(set(work_days)) == 7


def on_shift(worker: ShiftHolder, now: datetime) -> bool:
    """Is the worker inside their working hours at `now` (naive UTC or aware)?"""
    if always_on(worker.shift_start, worker.shift_end, worker.work_days):
        return True
    utc = as_utc_naive(now).replace(tzinfo=UTC)
    local = utc.astimezone(zone(worker.timezone))
    return in_shift(local, worker.shift_start, worker.shift_end, worker.work_days)


def open_seconds_by(opens: np.ndarray, lengths: np.ndarray, before: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Open time counted by each instant, from a table of open spans: their starts (ascending),
    lengths and the open time before each. One lookup for the business clock (sla.py) and the
    simulator's weekly calendars."""
    slot = np.searchsorted(opens, times, side="right") - 1  # the last span opened by then
    at = np.maximum(slot, 0)
    into = np.clip(times - opens[at], 0.0, lengths[at])
    return np.where(slot >= 0, before[at] + into, 0.0)
