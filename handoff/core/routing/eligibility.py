"""Who may take a work item: skills at the required level, and being at work right now.

Kept free of the database so the policies, the simulator and the live router share one
definition of "eligible". The live router reads a Worker's shift fields through
`on_shift` / `available_now`; the policies only see `RoutableRep.available`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Signature = tuple[tuple[str, int], ...]


def signature(required: dict[str, int]) -> Signature:
    """A hashable key for a set of skill requirements; items with equal keys are interchangeable
    as far as eligibility goes, which is what lets the index bucket them."""
    return tuple(sorted(required.items()))


def meets(skills: dict[str, int], required: dict[str, int]) -> bool:
    """Does a rep hold every required skill at (at least) the required level?"""
    for skill, level in required.items():
        if skills.get(skill, 0) < level:
            return False
    return True


def overqualification(skills: dict[str, int], required: dict[str, int]) -> int:
    """Levels above what the item needs, summed over its skills: an expert on trivia scores
    high. The router prefers the lowest, to keep experts free for the hard work."""
    return sum(skills.get(skill, 0) - level for skill, level in required.items())


def widened(required: dict[str, int], steps: int = 1) -> dict[str, int]:
    """Requirements one level lower (never below 1): the wider pool an escalated item may
    go to when nobody at the full level is free in time."""
    return {skill: max(1, level - steps) for skill, level in required.items()}


def effective_requirements(required: dict[str, int], escalated: bool) -> dict[str, int]:
    """What the router actually asks for: the item's own requirements, widened once escalated."""
    return widened(required) if escalated else dict(required)


# --- being at work ------------------------------------------------------------------------


class ShiftHolder(Protocol):
    timezone: str
    shift_start: str
    shift_end: str
    work_days: str


def parse_hhmm(text: str) -> int:
    """'09:30' -> 570 minutes after midnight; '24:00' is allowed as the end of the day."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
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


def as_utc_naive(dt: datetime) -> datetime:
    """The database keeps naive UTC; accept aware datetimes from callers too."""
    if dt.tzinfo is not None:
        return dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


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


def on_shift(worker: ShiftHolder, now: datetime) -> bool:
    """Is the worker inside their working hours at `now` (naive UTC or aware)?"""
    if worker.shift_start == "00:00" and worker.shift_end == "24:00" and len(set(worker.work_days)) == 7:
        return True  # the default: always on shift, no time-zone arithmetic needed
    utc = as_utc_naive(now).replace(tzinfo=timezone.utc)
    local = utc.astimezone(zone(worker.timezone))
    return in_shift(local, worker.shift_start, worker.shift_end, worker.work_days)

