"""The business-hours clock, per-type SLAs, learned effort, and shifts."""

from __future__ import annotations

import json
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from handoff.core import sla
from handoff.core.clock import in_shift
from handoff.core.clock import on_shift
from handoff.core.clock import parse_hhmm
from handoff.core.sla import BusinessClock
from handoff.core.sla import BusinessHours
from handoff.core.work_types import WORK_TYPES  # every registered type, not a copy that drifts

H = 3600.0


@pytest.fixture
def clean_config(monkeypatch, tmp_path):
    from handoff.core.settings import settings

    monkeypatch.delenv(sla.ENV_VAR, raising=False)
    monkeypatch.setattr(settings, "home", tmp_path)
    sla.reload_config()
    yield monkeypatch
    monkeypatch.delenv(sla.ENV_VAR, raising=False)
    sla.reload_config()


def test_every_work_type_has_an_sla_and_a_default_effort(clean_config):
    for work_type in WORK_TYPES:
        assert sla.sla_seconds(work_type) > 0
        assert sla.default_effort_seconds(work_type) > 0
    assert sla.sla_seconds("something-new") == 8 * H  # unknown types get the default


def test_due_dates_skip_the_weekend(clean_config):
    friday_afternoon = datetime(2026, 11, 27, 16, 30)
    assert sla.due_at("order-approval", friday_afternoon) == datetime(2026, 11, 30, 16, 30)
    # Created on Saturday: the clock starts Monday 09:00.
    assert sla.due_at("discount-approval", datetime(2026, 11, 28, 11, 0)) == datetime(2026, 11, 30, 13, 0)
    # Created before opening: counted from 09:00.
    assert sla.due_at("discount-approval", datetime(2026, 11, 25, 6, 0)) == datetime(2026, 11, 25, 13, 0)


def test_business_seconds_between_counts_only_open_hours(clean_config):
    fri, mon = datetime(2026, 11, 27, 16, 30), datetime(2026, 11, 30, 10, 0)
    assert sla.business_seconds_between(fri, mon) == 1.5 * H
    assert sla.business_seconds_between(mon, fri) == -1.5 * H
    saturday, sunday = datetime(2026, 11, 28, 10, 0), datetime(2026, 11, 29, 18, 0)
    assert sla.business_seconds_between(saturday, sunday) == 0
    week = sla.business_seconds_between(datetime(2026, 11, 23), datetime(2026, 11, 30))
    assert week == 5 * 8 * H
    aware = datetime(2026, 11, 27, 17, 30, tzinfo=timezone(timedelta(hours=1)))  # = 16:30 UTC
    assert sla.business_seconds_between(aware, mon) == 1.5 * H


def test_holidays_and_overrides_come_from_the_json_config(clean_config):
    clean_config.setenv(
        sla.ENV_VAR,
        json.dumps(
            {
                "holidays": ["2026-12-24", "2026-12-25"],
                "work_types": {"credit-review": {"sla_hours": 2}},
                "min_samples": 3,
            }
        ),
    )
    sla.reload_config()
    assert sla.sla_seconds("credit-review") == 2 * H
    assert sla.default_effort_seconds("credit-review") == 30 * 60  # untouched field keeps its default
    wednesday_late = datetime(2026, 12, 23, 16, 0)
    # 1 h on the 23rd, then the 24th and 25th are holidays, the 26th/27th a weekend: Monday 28th.
    assert sla.due_at("credit-review", wednesday_late) == datetime(2026, 12, 28, 10, 0)
    assert sla.config().min_samples == 3


def test_config_can_come_from_a_file_and_rejects_nonsense(clean_config, tmp_path):
    path = tmp_path / "my-sla.json"
    path.write_text(json.dumps({"business_hours": {"start": "08:00", "end": "18:00", "days": "0123456"}}))
    clean_config.setenv(sla.ENV_VAR, str(path))
    sla.reload_config()
    assert sla.business_seconds_between(datetime(2026, 11, 28, 0, 0), datetime(2026, 11, 29, 0, 0)) == 10 * H
    path.write_text(json.dumps({"business_hours": {"start": "25:00"}}))
    with pytest.raises(ValueError):
        sla.reload_config()


def test_a_clock_in_another_time_zone():
    berlin = BusinessClock(BusinessHours(start="09:00", end="17:00", timezone="Europe/Berlin"))
    # 07:30 UTC on a winter Wednesday is 08:30 in Berlin: closed; 08:00 UTC = 09:00 opens.
    assert not berlin.is_open(datetime(2026, 11, 25, 7, 30))
    assert berlin.is_open(datetime(2026, 11, 25, 8, 0))
    assert berlin.add(datetime(2026, 11, 25, 7, 0), 2 * H) == datetime(2026, 11, 25, 10, 0)
    # Summer time: 09:00 Berlin is 07:00 UTC.
    assert berlin.add(datetime(2026, 7, 1, 6, 0), 1 * H) == datetime(2026, 7, 1, 8, 0)


def test_a_clock_with_holidays_passed_directly():
    clock = BusinessClock(BusinessHours(), holidays=[date(2026, 11, 26)])
    assert clock.add(datetime(2026, 11, 25, 16, 0), 2 * H) == datetime(2026, 11, 27, 10, 0)
    assert clock.seconds_between(datetime(2026, 11, 26, 9), datetime(2026, 11, 26, 17)) == 0


def test_effort_is_the_default_until_enough_items_are_completed_then_the_median(routing_db, make_item, s, now):
    from handoff.core.models import WorkItemState

    default = sla.default_effort_seconds("invoice-approval")
    minutes = [10, 12, 14, 16]
    for m in minutes:
        make_item(
            work_type="invoice-approval",
            state=WorkItemState.COMPLETED,
            started_at=now,
            completed_at=now + timedelta(minutes=m),
        )
    assert sla.effort_estimate(s, "invoice-approval") == default  # 4 < 5 samples
    # One item never marked started: assigned -> completed counts; one left over a weekend.
    make_item(
        work_type="invoice-approval",
        state=WorkItemState.COMPLETED,
        assigned_at=now,
        completed_at=now + timedelta(minutes=18),
    )
    make_item(
        work_type="invoice-approval",
        state=WorkItemState.COMPLETED,
        started_at=now,
        completed_at=now + timedelta(days=3),
    )
    make_item(work_type="invoice-approval")  # open items do not count
    assert sla.effort_estimate(s, "invoice-approval") == 15 * 60  # median of 10,12,14,16,18,4320 min
    assert sla.effort_estimate(s, "credit-review") == sla.default_effort_seconds("credit-review")


def test_shifts_in_local_time_including_overnight_shifts():
    assert parse_hhmm("24:00") == 1440
    for bad in ("9", "9:5", "25:00", "ab:cd", "12:60"):
        with pytest.raises(ValueError):
            parse_hhmm(bad)
    wed_2300 = datetime(2026, 11, 25, 23, 0)
    thu_0300 = datetime(2026, 11, 26, 3, 0)
    assert in_shift(wed_2300, "22:00", "06:00", "2")  # Wednesday night shift
    assert in_shift(thu_0300, "22:00", "06:00", "2")  # ...still Wednesday's shift at 03:00 Thursday
    assert not in_shift(thu_0300, "22:00", "06:00", "3")
    assert not in_shift(wed_2300, "09:00", "17:00", "01234")

    class Rep:
        timezone, shift_start, shift_end, work_days = "America/New_York", "09:00", "17:00", "01234"

    assert on_shift(Rep, datetime(2026, 11, 25, 15, 0))  # 10:00 in New York
    assert not on_shift(Rep, datetime(2026, 11, 25, 23, 0))  # 18:00 in New York


# daylight saving north and south, none, a half-hour offset, clocks that change at midnight
# (Santiago) and by half an hour (Lord Howe)
_ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Santiago",
    "Australia/Lord_Howe",
]


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    zone_name=st.sampled_from(_ZONES),
    start=st.integers(0, 23 * 60),
    length=st.integers(1, 10 * 60),
    days=st.sets(st.integers(0, 6), min_size=1, max_size=7),
    holidays=st.lists(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=6),
    pairs=st.lists(
        st.tuples(
            st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
            st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
        ),
        min_size=1,
        max_size=30,
    ),
)
@hypothesis.example(  # hours inside Berlin's spring-forward gap: found by CI, stop 28
    zone_name="Europe/Berlin",
    start=121,
    length=59,
    days={0, 1, 6},
    holidays=[],
    pairs=[(datetime(2026, 1, 1), datetime(2027, 1, 1))],
)
def test_many_pairs_at_once_count_what_one_pair_at_a_time_counts(zone_name, start, length, days, holidays, pairs):
    """The watch's vectorised business time equals the day-by-day count, across time zones
    with daylight saving, holidays, short and long days, and pairs either way round."""
    end = min(start + length, 24 * 60 - 1)
    if end <= start:
        return
    hours = BusinessHours(
        start=f"{start // 60:02d}:{start % 60:02d}",
        end=f"{end // 60:02d}:{end % 60:02d}",
        days="".join(str(d) for d in sorted(days)),
        timezone=zone_name,
    )
    clock = BusinessClock(hours, holidays)
    epoch = datetime(1970, 1, 1)
    a = np.array([(x - epoch).total_seconds() for x, _ in pairs])
    b = np.array([(y - epoch).total_seconds() for _, y in pairs])
    many = clock.seconds_between_many(a, b)
    one = [clock.seconds_between(x, y) for x, y in pairs]
    assert np.allclose(many, one, rtol=0, atol=1e-3)
    # asked again, over a wider span, from the table it extended: the same answers
    wider = clock.seconds_between_many(np.concatenate((a, [0.0])), np.concatenate((b, [a.max() + 400 * 86400])))
    assert np.allclose(wider[:-1], one, rtol=0, atol=1e-3)


def test_an_order_promised_for_a_day_is_due_at_that_day_s_end_in_the_business_time_zone(clean_config):
    """The order's steps took midnight UTC at the start of the promised day (a New York order
    promised for 1 December was due at 19:00 on 30 November there, and one opened on the day was
    overdue at once), while the report judged the order at the end of the day in New York."""
    from flows.order_entry import approval_step
    from flows.order_entry import credit_review_step
    from tasks.orders import Findings
    from tasks.orders import OrderView

    clean_config.setenv(sla.ENV_VAR, json.dumps({"business_hours": {"timezone": "America/New_York"}}))
    sla.reload_config()
    end_of_first = datetime(2026, 12, 2, 5, 0)  # midnight in New York, as naive UTC
    assert sla.promised_by(date(2026, 12, 1)) == sla.clock().end_of_day(date(2026, 12, 1)) == end_of_first
    assert sla.promised_by(date(2026, 7, 1)) == datetime(2026, 7, 2, 4, 0)  # summer time
    order = OrderView(
        order_id="O-1",
        customer_id="C-1",
        customer_name="ACME",
        country=None,
        order_date=date(2026, 11, 30),
        due_date=date(2026, 12, 1),
        total=100.0,
        status="received",
        lines=[],
    )
    for step in (approval_step(order, Findings(errors=[], warnings=[]), ["large"]), credit_review_step(order, "no")):
        assert step.due_at == end_of_first


def test_an_sla_longer_than_the_calendar_can_count_is_refused_with_its_reason(clean_config):
    """Accepted, it failed every item of its type as it opened, saying the calendar had no
    business hours."""
    for config, why in (
        ({"work_types": {"order-approval": {"sla_hours": 30000}}}, "30000 business hours is more than"),
        ({"business_hours": {"days": "0"}, "default": {"sla_hours": 5000}}, "5000 business hours is more than"),
        ({"work_types": {"order-approval": {"sla_hours": "Infinity"}}}, "finite number"),
    ):
        clean_config.setenv(sla.ENV_VAR, json.dumps(config))
        with pytest.raises(ValueError, match=why):
            sla.reload_config()
    with pytest.raises(sla.TooLong, match="more than the business calendar holds in ten years"):
        BusinessClock(BusinessHours()).add(datetime(2026, 1, 1), 30000 * 3600)


def test_business_hours_the_clocks_skip_count_nothing_that_day():
    """Hours of 02:01-03:00 on the Sunday Berlin springs forward (29 March 2026) do not exist:
    that day adds no business time, on the day-by-day count and the tabled one alike, and
    nothing is open then; the Sunday after counts its 59 minutes."""
    hours = BusinessHours(start="02:01", end="03:00", days="6", timezone="Europe/Berlin")
    clock = BusinessClock(hours)
    gap_day = (datetime(2026, 3, 28, 12), datetime(2026, 3, 29, 12))
    next_sunday = (datetime(2026, 4, 4, 12), datetime(2026, 4, 5, 12))
    assert clock.seconds_between(*gap_day) == 0
    assert clock.seconds_between(*next_sunday) == 59 * 60
    epoch = datetime(1970, 1, 1)
    a = np.array([(x - epoch).total_seconds() for x, _ in (gap_day, next_sunday)])
    b = np.array([(y - epoch).total_seconds() for _, y in (gap_day, next_sunday)])
    assert clock.seconds_between_many(a, b).tolist() == [0.0, 59 * 60.0]
    assert not clock.is_open(datetime(2026, 3, 29, 1, 0, 30))
    # time added across the skipped day lands on the next Sunday that has the hours
    assert clock.add(datetime(2026, 3, 28, 12), 60) == datetime(2026, 4, 5, 0, 2)
