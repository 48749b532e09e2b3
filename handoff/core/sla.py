"""Service levels: how long each kind of work may take, counted in business hours.

A customer's tolerance is measured in working time: an order approval received on Friday at
16:30 with an 8-hour SLA is due on Monday afternoon, not on Saturday morning. The clock here
counts only business hours (default 09:00-17:00, Monday to Friday, in one configured time
zone) and skips configured holidays.

Configuration (defaults below, overridden per field):
- env `HANDOFF_SLA_CONFIG`: inline JSON, or the path of a JSON file; otherwise
  `<HANDOFF_HOME>/sla.json` if it exists. Shape:
      {"business_hours": {"start": "08:00", "end": "18:00", "days": "01234", "timezone": "Europe/Berlin"},
       "holidays": ["2026-12-25", "2026-12-26"],
       "min_samples": 5,
       "work_types": {"credit-review": {"sla_hours": 12, "effort_minutes": 45}}}
- `sla_hours` are business hours; `effort_minutes` is the effort assumed for a work type until
  enough completed items exist to learn it (`effort_estimate`). The defaults are each work
  type's declaration in handoff.core.work_types.

All datetimes in and out are naive UTC, as stored in the database; aware ones are accepted.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import work_types
from handoff.core.clock import as_utc_naive
from handoff.core.clock import epoch
from handoff.core.clock import from_epoch
from handoff.core.clock import open_seconds_by
from handoff.core.clock import parse_hhmm
from handoff.core.clock import parse_work_days
from handoff.core.clock import zone
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.settings import settings

ENV_VAR = "HANDOFF_SLA_CONFIG"
MAX_DAYS = 3660  # a clock with no business days at all must fail, not loop for ever


class TooLong(ValueError):
    """More business time than the calendar holds within its horizon (MAX_DAYS)."""


class WorkTypeSla(BaseModel):
    sla_hours: float = Field(default=8.0, gt=0, allow_inf_nan=False, description="Business hours from creation to due.")
    effort_minutes: float = Field(default=30.0, gt=0, allow_inf_nan=False, description="Assumed effort until learned.")


class BusinessHours(BaseModel):
    start: str = Field(default="09:00", description="Local time the business day starts.")
    end: str = Field(default="17:00", description="Local time the business day ends (24:00 allowed).")
    days: str = Field(default="01234", description="Business weekdays, Monday=0.")
    timezone: str = Field(default="UTC", description="IANA zone the hours are read in.")

    @field_validator("start", "end")
    @classmethod
    def _time_of_day(cls, v: str) -> str:
        parse_hhmm(v)
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: str) -> str:
        if not parse_work_days(v):
            raise ValueError("at least one business day is needed")
        return v


def _default_work_types() -> dict[str, WorkTypeSla]:
    # Business hours to due, and the effort assumed before any history exists: as each work
    # type is declared (handoff.core.work_types).
    return {
        name: WorkTypeSla(sla_hours=kind.sla_hours, effort_minutes=kind.effort_minutes)
        for name, kind in work_types.WORK_TYPES.items()
    }


class SlaConfig(BaseModel):
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    holidays: list[date] = Field(default_factory=list)
    min_samples: int = Field(default=5, ge=1, description="Completed items needed before effort is learned.")
    default: WorkTypeSla = Field(
        default_factory=lambda: WorkTypeSla(
            sla_hours=8, effort_minutes=getattr(settings, "default_effort_seconds", 1800.0) / 60
        ),
        description="For work types not listed.",
    )
    work_types: dict[str, WorkTypeSla] = Field(default_factory=_default_work_types)

    @model_validator(mode="after")
    def _countable(self) -> SlaConfig:
        """Every SLA fits in the business calendar's horizon: one that does not was accepted,
        then failed each item of its type as it opened, saying the calendar had no hours."""
        longest = max([w.sla_hours for w in self.work_types.values()] + [self.default.sla_hours])
        try:
            BusinessClock(self.business_hours, self.holidays).add(datetime(2000, 1, 3), longest * 3600)
        except TooLong:
            raise ValueError(
                f"an SLA of {longest:g} business hours is more than these business hours hold in ten years"
            ) from None
        return self

    def for_type(self, work_type: str) -> WorkTypeSla:
        return self.work_types.get(work_type, self.default)


def _override_text() -> str | None:
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw.startswith("{"):
        return raw
    if raw:
        return Path(raw).read_text()
    local = settings.home / "sla.json"
    return local.read_text() if local.exists() else None


@lru_cache(maxsize=1)
def config() -> SlaConfig:
    """Defaults, overridden field by field by the JSON override (see the module docstring)."""
    base = SlaConfig()
    text = _override_text()
    if not text:
        return base
    override = json.loads(text)
    merged = base.model_dump()
    for key, value in override.items():
        if key == "work_types":
            for name, fields in value.items():
                merged["work_types"][name] = {**merged["work_types"].get(name, base.default.model_dump()), **fields}
        elif key in ("business_hours", "default"):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return SlaConfig.model_validate(merged)


def reload_config() -> SlaConfig:
    """Forget the cached configuration (after changing the override) and read it again."""
    config.cache_clear()
    _clock.cache_clear()
    return config()


class BusinessClock:
    """Counts and adds business time: only the business hours of business days, no holidays."""

    def __init__(self, hours: BusinessHours, holidays: Iterable[date] = ()) -> None:
        self.start = parse_hhmm(hours.start)
        self.end = parse_hhmm(hours.end)
        if self.end <= self.start:
            raise ValueError("business hours must end after they start (no overnight business day)")
        self.days = parse_work_days(hours.days)
        self.tz = zone(hours.timezone)
        self.holidays = frozenset(holidays)
        # (first day, last day, opens, lengths, business seconds before each): the business
        # windows as epoch seconds, for `seconds_between_many`; one tuple, replaced whole
        self._windows: tuple[date, date, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The business hours of a local date as naive UTC, or None on a weekend/holiday or
        when the clocks skip them: hours that lie inside a spring-forward gap (02:01-03:00 in
        Berlin on the last Sunday of March) would otherwise end before they open, and a
        negative day would take time off every total that spans it."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        opens = self._utc(datetime.combine(day, time()) + timedelta(minutes=self.start))
        closes = self._utc(datetime.combine(day, time()) + timedelta(minutes=self.end))
        if closes <= opens:
            return None
        return opens, closes

    def _utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz).astimezone(UTC).replace(tzinfo=None)

    def _local_date(self, utc_naive: datetime) -> date:
        return utc_naive.replace(tzinfo=UTC).astimezone(self.tz).date()

    def date_of(self, at: datetime) -> date:
        """The local calendar date at a moment (naive UTC or aware)."""
        return self._local_date(as_utc_naive(at))

    def seconds_between(self, a: datetime, b: datetime) -> float:
        """Business seconds from a to b (negative when b is before a)."""
        a, b = as_utc_naive(a), as_utc_naive(b)
        if b < a:
            return -self.seconds_between(b, a)
        total = 0.0
        day = self._local_date(a)
        last = self._local_date(b)
        while day <= last:
            window = self._window(day)
            if window is not None:
                lo, hi = max(window[0], a), min(window[1], b)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def seconds_between_many(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`seconds_between` of many pairs at once (epoch seconds, UTC): the business seconds
        from a to b (negative when b is before a). The business windows of the days asked
        about are tabled once with their running total; each instant is then a table lookup,
        so a watch round over 100,000 items does not walk the calendar day by day for each."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a.size == 0:
            return np.zeros(0)
        elapsed = self.positions(np.concatenate((a, b)))
        return elapsed[a.size :] - elapsed[: a.size]

    def positions(self, times: np.ndarray) -> np.ndarray:
        """Where instants (epoch seconds, UTC) fall on the business clock: business seconds
        since an origin before all of them. The origin is the same for every instant of one
        call and may differ between calls: only differences within a call mean anything (push
        ages late work and looks ahead on these, routing/urgency.py)."""
        times = np.asarray(times, dtype=float)
        if times.size == 0:
            return np.zeros(0)
        opens, lengths, before = self._table(from_epoch(float(times.min())), from_epoch(float(times.max())))
        return open_seconds_by(opens, lengths, before, times)

    def _table(self, first: datetime, last: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(opens, lengths, business seconds before each) of the business windows of the local
        days of `first` .. `last` and more (a day either side, and whatever was tabled before)."""
        lo = self._local_date(first) - timedelta(days=1)
        hi = self._local_date(last) + timedelta(days=1)
        known = self._windows
        if known is not None:
            if known[0] <= lo and hi <= known[1]:
                return known[2], known[3], known[4]
            lo, hi = min(lo, known[0]), max(hi, known[1])
        opens, lengths = [], []
        day = lo
        while day <= hi:
            window = self._window(day)
            if window is not None:
                opens.append(epoch(window[0]))
                lengths.append((window[1] - window[0]).total_seconds())
            day += timedelta(days=1)
        if not opens:  # no business hours in the range: nothing is ever counted
            opens, lengths = [np.inf], [0.0]
        length = np.array(lengths)
        table = (np.array(opens), length, np.concatenate(([0.0], np.cumsum(length)[:-1])))
        self._windows = (lo, hi, *table)
        return table

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment `seconds` of business time after `start` (naive UTC)."""
        start = as_utc_naive(start)
        left = max(0.0, seconds)
        if left == 0:
            return start
        day = self._local_date(start)
        for _ in range(MAX_DAYS):
            window = self._window(day)
            if window is not None:
                lo, hi = max(window[0], start), window[1]
                if hi > lo:
                    span = (hi - lo).total_seconds()
                    if left <= span:
                        return lo + timedelta(seconds=left)
                    left -= span
            day += timedelta(days=1)
        raise TooLong(f"{seconds / 3600:g} business hours is more than the business calendar holds in ten years")

    def start_of_day(self, day: date) -> datetime:
        """The start of a local calendar day (its midnight), as naive UTC."""
        return self._utc(datetime.combine(day, time()))

    def end_of_day(self, day: date) -> datetime:
        """The end of a local calendar day (the next one's midnight), as naive UTC: when
        something promised "by" that day is late."""
        return self.start_of_day(day + timedelta(days=1))

    def is_open(self, at: datetime) -> bool:
        at = as_utc_naive(at)
        window = self._window(self._local_date(at))
        return window is not None and window[0] <= at < window[1]


@lru_cache(maxsize=1)
def _clock() -> BusinessClock:
    cfg = config()
    return BusinessClock(cfg.business_hours, cfg.holidays)


def clock() -> BusinessClock:
    """The configured business clock."""
    return _clock()


def business_seconds_between(a: datetime, b: datetime) -> float:
    """Business seconds from a to b on the configured clock (negative if b < a)."""
    return clock().seconds_between(a, b)


def business_today(at: datetime | None = None) -> date:
    """The date in the business's time zone (now, or at `at`): the day quotes are valid through,
    expire after, and orders from them are dated. The machine's own date (`date.today()`) was
    used beside UTC dates: a quote accepted in its last valid hours could be refused as expired,
    and its order dated the day before the request."""
    return clock().date_of(at if at is not None else utcnow())


def promised_by(day: date) -> datetime:
    """When an order promised to a customer for `day` is late: the end of that day in the
    business's time zone (naive UTC). One meaning for the steps that work on the order and the
    reports that judge it (the steps took midnight UTC at its start: a day early, and already
    overdue when opened on the day itself)."""
    return clock().end_of_day(day)


def seconds_left(now: datetime, due: datetime) -> float:
    """The time a rep has left for an item, as worklists show it: the business seconds to its
    due time while it is not yet due, and once it is, minus the wall-clock time since (as
    `handoff report` counts overdue work). Business seconds alone left an item that fell due at
    Friday's close at "0.0 h left", not late, all weekend: no business time passed."""
    now, due = as_utc_naive(now), as_utc_naive(due)
    if now > due:
        return -(now - due).total_seconds()
    return clock().seconds_between(now, due)


def add_business_seconds(start: datetime, seconds: float) -> datetime:
    return clock().add(start, seconds)


def sla_seconds(work_type: str) -> float:
    """The SLA of a work type, in business seconds."""
    return config().for_type(work_type).sla_hours * 3600.0


def due_at(work_type: str, start: datetime) -> datetime:
    """When an item of this type, created at `start`, is due (naive UTC)."""
    return add_business_seconds(start, sla_seconds(work_type))


def default_effort_seconds(work_type: str) -> float:
    return config().for_type(work_type).effort_minutes * 60.0


def effort_estimate(s: Session, work_type: str, recent: int = 200) -> float:
    """Seconds of effort to expect for an item of this type.

    Learned as the median of completed_at - started_at over the most recent completed items of
    the type (assigned_at when an item was never marked started) once at least
    `min_samples` exist; the configured default before that. The median, because one item left
    open over a weekend must not double the estimate.
    """
    rows = s.execute(
        select(WorkItem.started_at, WorkItem.assigned_at, WorkItem.completed_at)
        .where(
            WorkItem.work_type == work_type,
            WorkItem.state == WorkItemState.COMPLETED,
            WorkItem.completed_at.is_not(None),
        )
        .order_by(WorkItem.completed_at.desc())
        .limit(recent)
    ).all()
    durations = [
        (done - begun).total_seconds()
        for started, assigned, done in rows
        if (begun := started or assigned) is not None and done is not None and done >= begun
    ]
    if len(durations) >= config().min_samples:
        return float(statistics.median(durations))
    return default_effort_seconds(work_type)
