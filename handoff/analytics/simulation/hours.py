"""Opening hours of a back office, read from when its work was started - or a clear fallback.

`derive_opening_hours` counts touch starts per hour of the week; an hour is open if it holds at
least `threshold` x the starts of the busiest hour, and consecutive open hours merge into spans
(BPIC 2012: Mon-Fri 09-21, Sat 10-17). That only means something when the log shows the
weekly rhythm, so `opening_hours_from_log` checks first and falls back, with a warning, when:

- timestamps carry the date only (most starts at exactly 00:00:00): the hours of the day are
  unknown; derived hours would read "Mon-Sun 00-02". Fallback: Mon-Fri 09-17.
- the log covers less than a week or fewer than five working days (a one-day log would read
  "Thu 01-13" as the whole week's hours). Fallback: always open (24x7) - the work in the log
  arrives over its span and a team on duty throughout is the only reading that keeps its load.
- the derived hours are almost the whole week (a simulated or round-the-clock process): they are
  read as always open, without a warning, rather than as 24 h days with odd one-hour gaps.
- the derived hours are implausible (under 8 h a week, or they hold under 80 % of the starts).

Give the hours instead with `--hours "Mon-Fri 08:00-17:00"` (calendar.parse_hours).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from handoff.analytics.simulation.calendar import ALWAYS_OPEN
from handoff.analytics.simulation.calendar import DAY
from handoff.analytics.simulation.calendar import Calendar
from handoff.analytics.simulation.calendar import WeeklyCalendar

OFFICE_HOURS = WeeklyCalendar.from_shift("09:00", "17:00", "01234")
MIN_DAYS, MIN_SPAN_DAYS, MIN_WEEKLY_HOURS, MIN_COVERED = 5, 7.0, 8.0, 0.8
ROUND_THE_CLOCK = 0.85 * 168  # derived hours this long: the work runs day and night


def derive_opening_hours(start_local: Sequence[float], threshold: float = 0.2) -> WeeklyCalendar:
    """The open hours of the week by the busiest-hour rule (no checks; see the module doc)."""
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


def _covered(calendar: WeeklyCalendar, t: np.ndarray) -> float:
    days = np.floor(t / DAY).astype(np.int64)
    wd = (days + 3) % 7
    hour_of_day = (t - days * DAY) / 3600
    inside = np.zeros(t.size, dtype=bool)
    for d in range(7):
        on_day = wd == d
        for s, e in calendar.hours[d]:
            inside |= on_day & (hour_of_day >= s) & (hour_of_day < e)
    return float(inside.mean()) if t.size else 0.0


def opening_hours_from_log(start_local: Sequence[float], threshold: float = 0.2) -> tuple[Calendar, str, list[str]]:
    """(calendar, how it was found in words, warnings) for the touch starts of a log."""
    t = np.asarray(start_local, dtype=float)
    t = t[np.isfinite(t)]
    give = 'give the real ones with --hours "Mon-Fri 08:00-17:00"'
    if t.size == 0:
        return OFFICE_HOURS, "assumed Mon-Fri 09-17 (no touches)", ["no touch starts to derive opening hours from"]
    midnight = float(np.mean(np.mod(t, DAY) == 0.0))
    if midnight >= 0.5:
        return (
            OFFICE_HOURS,
            "assumed Mon-Fri 09-17",
            [
                (
                    f"{midnight:.0%} of touches start at exactly 00:00: the timestamps carry dates, not times of day, "
                    f"so opening hours cannot be derived; assumed Mon-Fri 09-17 ({give})"
                )
            ],
        )
    days = np.unique(np.floor(t / DAY))
    span_days = (t.max() - t.min()) / DAY
    if days.size < MIN_DAYS or span_days < MIN_SPAN_DAYS:
        return (
            ALWAYS_OPEN,
            "always open (log too short to show a week)",
            [
                (
                    f"the log covers {span_days:.1f} days ({days.size} dates with work): too short to show the weekly "
                    f"opening hours; the team is taken to be on duty throughout (24x7) ({give})"
                )
            ],
        )
    derived = derive_opening_hours(t, threshold)
    covered = _covered(derived, t)
    if derived.weekly_hours() < MIN_WEEKLY_HOURS or covered < MIN_COVERED:
        return (
            OFFICE_HOURS,
            "assumed Mon-Fri 09-17",
            [
                (
                    f"derived opening hours {derived.describe()} ({derived.weekly_hours():g} h a week, holding "
                    f"{covered:.0%} of touch starts) look wrong; assumed Mon-Fri 09-17 ({give})"
                )
            ],
        )
    if derived.weekly_hours() >= ROUND_THE_CLOCK:
        return ALWAYS_OPEN, f"derived: work starts round the clock ({derived.weekly_hours():g} of 168 h a week)", []
    return derived, f"derived from touch starts ({covered:.0%} of them fall inside)", []
