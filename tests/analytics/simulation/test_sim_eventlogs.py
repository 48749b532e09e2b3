"""Event logs from any tool: XES in every namespace spelling, interval XES, CSV with a column
mapping; markers dropped; SLA terms from options and files; opening hours derived with checks;
clear errors. Every log here is written by the test itself."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from handoff.analytics.simulation.calendar import ALWAYS_OPEN
from handoff.analytics.simulation.calendar import DAY
from handoff.analytics.simulation.calendar import parse_hours
from handoff.analytics.simulation.calendar import weekday
from handoff.analytics.simulation.eventlog import LogOptions
from handoff.analytics.simulation.eventlog import load_event_log
from handoff.analytics.simulation.eventlog import read_sla_file
from handoff.analytics.simulation.eventlog import workload_name
from handoff.analytics.simulation.hours import opening_hours_from_log
from handoff.core.settings import settings

MONDAY = "2024-03-04"  # a Monday


def _day(k: int) -> str:
    """The k-th working day (Mon-Fri) from MONDAY, as a date."""
    import datetime as dt

    d = dt.date.fromisoformat(MONDAY)
    week, rest = divmod(k, 5)
    return (d + dt.timedelta(days=7 * week + rest)).isoformat()


def lifecycle_cases(days: int = 15, per_day: int = 6) -> list[tuple[str, list[tuple[str, str, str, str | None]]]]:
    """Cases worked Mon-Fri 09-17: register (COMPLETE only), check (START/COMPLETE, 10 min) and
    approve (START/COMPLETE, 5 min), by two clerks."""
    cases = []
    for d in range(days):
        for k in range(per_day):
            hh = 9 + k  # 09..14
            day = _day(d)

            def ts(h, m, day=day):
                return f"{day}T{h:02d}:{m:02d}:00.000+01:00"

            cases.append(
                (
                    f"c{d}-{k}",
                    [
                        ("register", "complete", ts(hh, 0), "System"),
                        ("check", "start", ts(hh, 5), "ann"),
                        ("check", "complete", ts(hh, 15), "ann"),
                        ("approve", "start", ts(hh, 20), "bob"),
                        ("approve", "complete", ts(hh, 25), "bob"),
                    ],
                )
            )
    return cases


def write_xes(path: Path, cases, namespace: str | None, prefix: str = "") -> Path:
    """An XES file; `namespace` None = no xmlns; `prefix` e.g. "xes:" for a prefixed namespace."""
    ns = "" if namespace is None else (f' xmlns="{namespace}"' if not prefix else f' xmlns:{prefix[:-1]}="{namespace}"')

    def t(tag):
        return f"{prefix}{tag}"

    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{t("log")}{ns}>']
    for case, events in cases:
        out.append(
            f'<{t("trace")}><{t("string")} key="concept:name" value="{case}"/><{t("string")} key="AMOUNT" value="250"/>'
        )
        for act, life, ts, res in events:
            out.append(
                f'<{t("event")}><{t("string")} key="concept:name" value="{act}"/>'
                + (f'<{t("string")} key="lifecycle:transition" value="{life}"/>' if life else "")
                + (f'<{t("string")} key="org:resource" value="{res}"/>' if res else "")
                + f'<{t("date")} key="time:timestamp" value="{ts}"/></{t("event")}>'
            )
        out.append(f"</{t('trace')}>")
    out.append(f"</{t('log')}>")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(out))
    return path


@pytest.mark.parametrize(
    "namespace,prefix",
    [
        ("http://www.xes-standard.org/", ""),
        ("http://www.xes-standard.org", ""),  # Disco and others: no trailing slash
        ("http://code.deckfour.org/xes", ""),  # older OpenXES
        (None, ""),
        ("http://www.xes-standard.org/", "xes:"),  # a prefixed namespace
    ],
)
def test_xes_in_every_namespace_spelling_gives_the_same_workload(tmp_path, namespace, prefix):
    path = write_xes(tmp_path / "claims-office.xes.gz", lifecycle_cases(), namespace, prefix)
    wl = load_event_log(path, cache_dir=tmp_path / "cache")
    assert wl.name == "claims-office"
    assert len(wl.items) == 15 * 6 * 2  # register is COMPLETE-only: an instantaneous system event
    assert {it.work_type for it in wl.items} == {"check", "approve"}
    by_type = {it.work_type: it.handling_seconds for it in wl.items}
    assert by_type == {"check": 600.0, "approve": 300.0}
    assert wl.calendar.describe() == "Mon-Fri 09-15"  # derived from the starts, 09:05..14:20
    assert not wl.warnings
    assert {p.source for p in wl.profiles} == {"ann", "bob"}


def test_interval_xes_and_markers(tmp_path):
    """pm4py-style interval events (start_timestamp + time:timestamp, no lifecycle); the
    artificial ▶ / ■ events (zero duration) are dropped, a real zero-length activity is kept."""
    lines = ['<?xml version="1.0"?>\n<log>']
    for d in range(15):
        day = _day(d)
        for k in range(4):
            h = 9 + 2 * k

            def ev(act, s, e, day=day):
                return (
                    f'<event><string key="concept:name" value="{act}"/>'
                    f'<date key="start_timestamp" value="{day}T{s}:00"/><date key="time:timestamp" value="{day}T{e}:00"/></event>'
                )

            lines.append(
                f'<trace><string key="concept:name" value="{d}-{k}"/>'
                + ev("▶", f"{h:02d}:00", f"{h:02d}:00")
                + ev("pack", f"{h:02d}:00", f"{h:02d}:30")
                + ev("ship", f"{h:02d}:40", f"{h + 2:02d}:40")
                + ev("ping", f"{h + 1:02d}:00", f"{h + 1:02d}:00")
                + ev("■", f"{h + 2:02d}:40", f"{h + 2:02d}:40")
                + "</trace>"
            )
    lines.append("</log>")
    path = tmp_path / "warehouse.xes"
    path.write_text("\n".join(lines))
    wl = load_event_log(path, LogOptions(touch_cap_hours=1.0), cache_dir=tmp_path / "cache")
    assert {it.work_type for it in wl.items} == {"pack", "ship", "ping"}
    assert any("dropped 120 touches of ■, ▶" in n for n in wl.notes)
    # Every "ship" touch (2 h) is cut by the 1 h cap: a third of the touches, so a warning.
    assert any("touch cap cut 33%" in w and "--touch-cap-hours" in w for w in wl.warnings)
    uncapped = load_event_log(path, LogOptions(touch_cap_hours=0), cache_dir=tmp_path / "cache")
    assert max(it.handling_seconds for it in uncapped.items) == 7200.0 and not uncapped.warnings
    dropped = load_event_log(path, LogOptions(drop_activities=("ping",)), cache_dir=tmp_path / "cache")
    assert {it.work_type for it in dropped.items} == {"pack", "ship"}


def write_csv(path: Path, sep: str = ",") -> Path:
    rows = [("Case ID", "Task", "Who", "Began", "Done", "Amount", "Prio")]
    for d in range(15):
        for k in range(5):
            day = _day(d)
            rows.append(
                (f"T{d}-{k}", "answer mail", "eve", f"{day} {9 + k:02d}:00:00", f"{day} {9 + k:02d}:12:00", "100", "1")
            )
            rows.append(
                (
                    f"T{d}-{k}",
                    "refund",
                    "max",
                    f"{day}T{10 + k:02d}:00:00+02:00",
                    f"{day}T{10 + k:02d}:20:00+02:00",
                    "900",
                    "3",
                )
            )
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_csv_with_a_column_mapping(tmp_path):
    path = write_csv(tmp_path / "helpdesk 2024.csv", sep=";")
    cols = {
        "case": "Case ID",
        "activity": "Task",
        "resource": "Who",
        "start": "Began",
        "end": "Done",
        "value": "Amount",
        "priority": "Prio",
    }
    wl = load_event_log(path, LogOptions(columns=cols), cache_dir=tmp_path / "cache")
    assert wl.name == "helpdesk 2024"
    assert len(wl.items) == 150
    refund = next(it for it in wl.items if it.work_type == "refund")
    assert (refund.handling_seconds, refund.priority, refund.value) == (1200.0, 3.0, 900.0)
    # The local wall clock is kept: 10:00+02:00 is hour 10 of its day.
    assert (refund.arrival % DAY) / 3600 in {10.0, 11.0, 12.0, 13.0, 14.0}
    assert wl.calendar.describe() == "Mon-Fri 09-15"
    # SLA / priority / value per activity from a file override the columns.
    sla = tmp_path / "terms.json"
    sla.write_text(json.dumps({"refund": {"sla_hours": 2, "priority": 5, "value": 50}}))
    wl2 = load_event_log(path, LogOptions(columns=cols, terms=read_sla_file(sla)), cache_dir=tmp_path / "cache")
    r2 = next(it for it in wl2.items if it.work_type == "refund")
    assert (r2.priority, r2.value) == (5.0, 50.0)
    assert r2.due == wl2.calendar.add_open_seconds(r2.arrival, 2 * 3600)
    mail = next(it for it in wl2.items if it.work_type == "answer mail")
    assert mail.due == wl2.calendar.add_open_seconds(mail.arrival, 8 * 3600)  # the default SLA


def test_csv_headers_are_guessed_and_a_csv_sla_file_is_read(tmp_path):
    path = tmp_path / "export.csv"
    lines = ["case:concept:name,concept:name,org:resource,start_timestamp,time:timestamp"]
    for d in range(10):
        lines.append(f"{d},review,ann,{_day(d)}T09:00:00,{_day(d)}T09:30:00")
    path.write_text("\n".join(lines))
    wl = load_event_log(path, cache_dir=tmp_path / "cache")
    assert len(wl.items) == 10 and wl.items[0].handling_seconds == 1800.0
    terms = tmp_path / "sla.csv"
    terms.write_text("activity,sla_hours,priority,value\nreview,4,2,\n")
    got = read_sla_file(terms)
    assert got["review"].sla_hours == 4 and got["review"].priority == 2 and got["review"].value is None
    bad = tmp_path / "bad.csv"
    bad.write_text("activity,sla_hours\nreview,soon\n")
    with pytest.raises(ValueError, match="not a number"):
        read_sla_file(bad)


def test_logs_that_cannot_be_used_say_what_is_missing(tmp_path):
    only_complete = [(f"c{k}", [("check", "complete", f"{_day(k)}T09:00:00", "ann")]) for k in range(5)]
    path = write_xes(tmp_path / "done.xes.gz", only_complete, "http://www.xes-standard.org")
    with pytest.raises(
        ValueError, match="5 of them COMPLETE-only.*START and COMPLETE per work item.*start_timestamp.*start column"
    ):
        load_event_log(path, cache_dir=tmp_path / "cache")
    csv_path = tmp_path / "ends.csv"
    csv_path.write_text("case,activity,timestamp\n1,check,2024-03-04T09:00:00\n")
    with pytest.raises(ValueError, match="start column"):
        load_event_log(csv_path, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="not in the CSV"):
        load_event_log(csv_path, LogOptions(columns={"case": "nope"}), cache_dir=tmp_path / "cache")
    garbage = tmp_path / "x.xes"
    garbage.write_text("this is not xml")
    with pytest.raises(Exception):  # noqa: B017 - an XML parse error, named by the parser
        load_event_log(garbage, cache_dir=tmp_path / "cache")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\xef\xbb\xbf \n")  # a byte-order mark and a blank line: nothing else
    with pytest.raises(ValueError, match="empty.csv: the CSV is empty: it needs a header row"):
        load_event_log(empty, cache_dir=tmp_path / "cache")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('case,activity,start,end\nc1,check,2024-03-04 09:00,2024-03-04 09:10\n"c2,check\n')
    with pytest.raises(ValueError, match="ragged.csv: the CSV cannot be read as a table"):
        load_event_log(ragged, cache_dir=tmp_path / "cache")


def test_opening_hours_fall_back_instead_of_inventing_nonsense():
    monday = 4 * DAY  # 1970-01-05
    # Day-resolution timestamps: every start at midnight.
    days = [monday + d * DAY for d in range(40)]
    cal, _, warnings = opening_hours_from_log(days)
    assert cal.describe() == "Mon-Fri 09-17" and "dates, not times of day" in warnings[0]
    # A one-day log (teleclaims' shape): 01:00-13:00 on one Thursday.
    one_day = [monday + 3 * DAY + 3600 + k * 60 for k in range(720)]
    cal, _, warnings = opening_hours_from_log(one_day)
    assert cal is ALWAYS_OPEN and "too short" in warnings[0] and "--hours" in warnings[0]
    # A regular office: Mon-Fri 08-16 over four weeks, derived without a warning.
    office = [monday + w * 7 * DAY + d * DAY + (8 + h) * 3600 for w in range(4) for d in range(5) for h in range(8)]
    cal, _, warnings = opening_hours_from_log(office)
    assert cal.describe() == "Mon-Fri 08-16" and not warnings
    assert weekday(office[0]) == 0


def test_hours_can_be_given(tmp_path):
    path = write_xes(tmp_path / "o.xes.gz", lifecycle_cases(days=2), "http://www.xes-standard.org/")
    given = load_event_log(path, LogOptions(hours=parse_hours("Mon-Fri 08:00-17:00")), cache_dir=tmp_path / "c")
    assert given.calendar.describe() == "Mon-Fri 08-17" and not given.warnings
    derived = load_event_log(path, cache_dir=tmp_path / "c")  # two days: too short to derive
    assert derived.calendar is ALWAYS_OPEN and derived.warnings
    with pytest.raises(ValueError, match="cannot read"):
        parse_hours("weekdays 9 to 5")
    with pytest.raises(ValueError, match="08:60 is not a time of day"):
        parse_hours("Mon-Fri 08:60-17:00")  # was read as 09-17


def test_workload_names_come_from_the_file():
    assert workload_name("/x/teleclaims.xes.gz") == "teleclaims"
    assert workload_name("Orders 2024.csv") == "Orders 2024"
    assert workload_name("bpic2012.xes.gz") == "bpic2012"


@pytest.mark.parametrize(
    "name,hours,types",
    [
        ("repair_example", "always open (24x7)", 4),  # a simulated process that runs day and night
        ("teleclaims", "always open (24x7)", 9),  # one 12-hour day: falls back, with a warning
        ("interval_event_log", "Mon 09-20, Tue-Thu 08-20, Fri 09-19", 8),
    ],
)
def test_the_shared_logs_load_with_sane_hours(name, hours, types, tmp_path):
    path = settings.bpic_path.parent / f"{name}.xes.gz"
    if not path.exists():
        pytest.skip(f"{path} not available")
    wl = load_event_log(path, cache_dir=tmp_path)
    assert wl.name == name
    assert wl.calendar.describe() == hours
    assert len(wl.load_share()) == types
    assert 0.1 < wl.offered_load() < 200
    assert all(it.handling_seconds > 0 and it.due > it.arrival for it in wl.items)
    if name == "teleclaims":
        assert any("too short" in w for w in wl.warnings)
        assert "end" not in wl.load_share()  # the zero-length end marker is not work


def test_broken_rows_are_dropped_and_counted_not_fatal(tmp_path):
    """A CSV with a BOM, rows without an end time, an unreadable time, and a row whose end is
    before its start: the good rows load, the others are counted in the stats."""
    from handoff.analytics.simulation.csvlog import parse_csv

    rows = ["\ufeffcase,activity,start,end"]
    rows += [f"{d},review,{_day(d)}T09:00:00,{_day(d)}T09:30:00" for d in range(10)]
    rows += [
        "x1,review,2024-03-04T09:00:00,",
        "x2,review,2024-03-04T09:00:00,not a time",
        "x3,review,2024-03-04T10:00:00,2024-03-04T09:00:00",
    ]
    path = tmp_path / "messy.csv"
    path.write_text("\n".join(rows), encoding="utf-8")
    parsed = parse_csv(path)
    assert len(parsed.touches) == 10
    assert parsed.stats["events_without_time"] == 2 and parsed.stats["negative_intervals"] == 1
    wl = load_event_log(path, cache_dir=tmp_path / "c")
    assert len(wl.items) == 10


def interval_rows(days: int = 10, per_day: int = 3, fmt: str = "%Y-%m-%d %H:%M") -> list[str]:
    """case,activity,start,end rows: `per_day` 20-minute reviews a working day, times in `fmt`."""
    import datetime as dt

    rows = []
    for d in range(days):
        for k in range(per_day):
            start = dt.datetime.fromisoformat(f"{_day(d)}T{9 + 2 * k:02d}:00")
            end = start + dt.timedelta(minutes=20)
            rows.append(f"c{d}-{k},review,{start:{fmt}},{end:{fmt}}")
    return rows


def test_work_arriving_at_one_moment_is_taken_over_an_hour_at_least(tmp_path):
    """40 half-hour touches logged at the same minute: the load was their touch time over one
    second (R = 72,000 reps, and a grid of 72,000-rep teams); now over an hour (R is touch time
    per open hour), or the longest touch if longer, with a warning saying so."""
    path = tmp_path / "batch.csv"
    path.write_text(
        "case,activity,start,end\n" + "".join(f"k{k},Review,{MONDAY} 09:00,{MONDAY} 09:30\n" for k in range(40))
    )
    wl = load_event_log(path, cache_dir=tmp_path / "c")
    assert wl.offered_load() == pytest.approx(20.0)
    assert any("arrives all at one moment" in w and "over 1 h" in w for w in wl.warnings)
    uncapped = load_event_log(path, LogOptions(touch_cap_hours=0), cache_dir=tmp_path / "c")
    assert uncapped.offered_load() == pytest.approx(20.0)
    three_hours = tmp_path / "long touches.csv"
    three_hours.write_text(
        "case,activity,start,end\n" + "".join(f"k{k},Fix,{MONDAY} 09:00,{MONDAY} 12:00\n" for k in range(4))
    )
    wl = load_event_log(three_hours, LogOptions(touch_cap_hours=0), cache_dir=tmp_path / "c")
    assert wl.offered_load() == pytest.approx(4.0)  # 12 touch hours over the 3 h of the longest touch
    # A log whose work arrives over more than that is divided by its own span, without the warning.
    long = tmp_path / "long.csv"
    long.write_text("case,activity,start,end\n" + "\n".join(interval_rows()))
    wl = load_event_log(long, cache_dir=tmp_path / "c")
    assert not any("too short to show a rate" in w for w in wl.warnings)
    assert wl.offered_load() == pytest.approx(10 / wl.calendar.open_seconds(wl.start, wl.last_arrival) * 3600)


def test_rows_dated_far_outside_the_log_are_dropped_or_the_log_refused(tmp_path):
    """A year-9999 and a year-1900 row among two weeks of work: the span was 8,000 years (the
    replay walked every hour of it) or the summary said weeks 6480. They are dropped, named."""
    rows = interval_rows(days=10, per_day=4)
    rows += ["x1,review,9999-12-31 10:00,9999-12-31 10:20", "x2,review,1900-01-01 00:00,1900-01-01 00:20"]
    path = tmp_path / "typos.csv"
    path.write_text("case,activity,start,end\n" + "\n".join(rows))
    wl = load_event_log(path, cache_dir=tmp_path / "c")
    assert len(wl.items) == 40 and wl.summary()["weeks"] < 2
    far = [w for w in wl.warnings if "far outside" in w]
    assert len(far) == 1 and "1900-01-01 to 9999-12-31" in far[0] and "2 dropped" in far[0]
    assert wl.calendar.describe() == "Mon-Fri 09-10,11-12,13-14,15-16"  # no Mon 00-01 from the 1900 row
    # Too few rows to tell the bulk from the typo: refused, saying why, instead of a hang.
    tiny = tmp_path / "tiny.csv"
    tiny.write_text(
        "case,activity,start,end\na,review,2024-03-04 09:00,2024-03-04 09:20\nb,review,9999-12-31 10:00,9999-12-31 10:20\n"
    )
    with pytest.raises(ValueError, match="spans 7,976 years .*far-off timestamps"):
        load_event_log(tiny, cache_dir=tmp_path / "c")


def test_day_first_dates_are_read_in_one_order_for_the_whole_file(tmp_path):
    """pandas' mixed format read 13/03/2024 day first but 04/03/2024 month first (April): the
    span grew from 2 weeks to 38. One order per file now, told by the dates or the option."""
    iso = tmp_path / "iso.csv"
    iso.write_text("case,activity,start,end\n" + "\n".join(interval_rows()))
    expected = [it.arrival for it in load_event_log(iso, cache_dir=tmp_path / "c").items]
    for name, fmt in [("slash", "%d/%m/%Y %H:%M"), ("dots", "%d.%m.%Y %H:%M"), ("short", "%d.%m.%y %H:%M")]:
        path = tmp_path / f"{name}.csv"
        path.write_text("case,activity,start,end\n" + "\n".join(interval_rows(fmt=fmt)))
        wl = load_event_log(path, cache_dir=tmp_path / "c")
        assert [it.arrival for it in wl.items] == expected, name
        assert not wl.warnings and any("day first" in n for n in wl.notes), name
    # Every first field <= 12 (4-8 March): month first is a guess, and the warning says so.
    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text("case,activity,start,end\n" + "\n".join(interval_rows(days=5, fmt="%d/%m/%Y %H:%M")))
    guessed = load_event_log(ambiguous, cache_dir=tmp_path / "c")
    assert any("read month first ('04/03/2024' = 2024-04-03)" in w and "--dayfirst" in w for w in guessed.warnings)
    told = load_event_log(ambiguous, LogOptions(dayfirst=True), cache_dir=tmp_path / "c")
    assert [it.arrival for it in told.items] == expected[:15] and not any("month first" in w for w in told.warnings)


def test_every_dropped_event_is_counted_in_a_warning(tmp_path):
    """Unreadable timestamps (XES), interval rows without a readable start (CSV) and intervals
    ending before they start were dropped without a word in the workload."""
    cases = lifecycle_cases(days=10)
    cases[0][1][1] = ("check", "start", "2024-03-04T09:05:00 CET", "ann")  # not ISO 8601
    cases[1][1][3] = ("approve", "start", "someday", "bob")
    xes = write_xes(tmp_path / "bad times.xes.gz", cases, "http://www.xes-standard.org/")
    wl = load_event_log(xes, cache_dir=tmp_path / "c")
    assert "events without a readable timestamp: 2 dropped (e.g. '2024-03-04T09:05:00 CET')" in wl.warnings
    rows = interval_rows()
    rows[1] = "c0-1,review,n/a,2024-03-04 11:20"
    rows[2] = "c0-2,review,2024-03-04 14:00,2024-03-04 13:00"
    path = tmp_path / "partial.csv"
    path.write_text("case,activity,start,end\n" + "\n".join(rows))
    wl = load_event_log(path, cache_dir=tmp_path / "c")
    assert len(wl.items) == 28
    assert "interval rows without a readable start time: 1 dropped (e.g. 'n/a')" in wl.warnings
    assert "intervals that end before they start: 1 dropped" in wl.warnings


def test_an_unreadable_start_timestamp_drops_its_event_not_the_log(tmp_path):
    """One bad start_timestamp in an interval XES aborted the load ("Invalid isoformat string")."""
    lines = ['<?xml version="1.0"?>\n<log>']
    for d in range(10):
        start = "not a date" if d == 0 else f"{_day(d)}T09:00:00"
        lines.append(
            f'<trace><string key="concept:name" value="c{d}"/><event><string key="concept:name" value="pack"/>'
            f'<date key="start_timestamp" value="{start}"/><date key="time:timestamp" value="{_day(d)}T09:30:00"/>'
            "</event></trace>"
        )
    path = tmp_path / "intervals.xes"
    path.write_text("\n".join(lines + ["</log>"]))
    wl = load_event_log(path, cache_dir=tmp_path / "c")
    assert len(wl.items) == 9
    assert "events without a readable timestamp: 1 dropped (e.g. 'not a date')" in wl.warnings


def test_csv_lifecycle_values_are_read_as_in_xes(tmp_path):
    """assign / suspend / resume were taken for COMPLETE in a CSV (2 touch hours instead of 15),
    ate_start / ate_complete not understood at all; XES read both right. One mapping now."""
    import datetime as dt

    rows = ["Case,Task,Time,Transition,User"]
    cases = []
    for d in range(10):
        t0 = dt.datetime.fromisoformat(f"{_day(d)}T10:00")

        def at(minutes: int, t0=t0) -> str:
            return f"{t0 + dt.timedelta(minutes=minutes):%Y-%m-%dT%H:%M:%S}"

        events = [("Assess", "assign", at(-30)), ("Assess", "start", at(0)), ("Assess", "suspend", at(2))]
        events += [("Assess", "resume", at(3)), ("Assess", "complete", at(20))]
        events += [("Decide", "ate_start", at(25)), ("Decide", "ATE_COMPLETE", at(35))]
        rows += [f"c{d},{act},{ts},{life},r{d % 2}" for act, life, ts in events]
        cases.append((f"c{d}", [(act, life, ts, f"r{d % 2}") for act, life, ts in events]))
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows))
    from_csv = load_event_log(path, cache_dir=tmp_path / "c")
    from_xes = load_event_log(write_xes(tmp_path / "events.xes.gz", cases, None), cache_dir=tmp_path / "c")
    for wl in (from_csv, from_xes):
        assert wl.summary()["touch_hours"] == 5.0  # 10 x (20 min Assess + 10 min Decide)
        assert any("ignored 30 events of other lifecycle transitions" in n for n in wl.notes)
    assert [(it.work_type, it.handling_seconds) for it in from_csv.items] == [
        (it.work_type, it.handling_seconds) for it in from_xes.items
    ]


def test_a_csv_in_excels_windows_encoding_keeps_its_names_apart(tmp_path):
    """Two activities that differ by one accented letter stay two (decoded as UTF-8 with
    replacements, both became 'Pr\ufffdfung'), and the user is told how the file was read."""
    path = tmp_path / "windows.csv"
    lines = ["case,activity,resource,start_timestamp,end_timestamp"]
    for d in range(6):
        for k, act in enumerate(("Prüfung", "Präfung")):
            lines.append(f"{d}-{k},{act},ann,{_day(d)}T09:00:00,{_day(d)}T09:30:00")
    path.write_bytes("\n".join(lines).encode("cp1252"))
    wl = load_event_log(path, cache_dir=tmp_path / "cache")
    assert {i.work_type for i in wl.items} == {"Prüfung", "Präfung"}
    assert any("not UTF-8" in w and "Windows-1252" in w for w in wl.warnings)


@pytest.mark.parametrize(
    ("written", "read", "told"),
    [
        (["1,234.50", "2,000.00", "15.25"], [1234.5, 2000.0, 15.25], None),  # thousands comma, decimal point
        (["1.234,50", "2.000,00", "15,25"], [1234.5, 2000.0, 15.25], None),  # the other way round
        (["12,5", "3,75", "100"], [12.5, 3.75, 100.0], None),  # a decimal comma alone
        (["1,500", "2,250", "7"], [1.5, 2.25, 7.0], "decimal comma"),  # could be thousands: said
        (["$ 1,200.00", "€7", "n/a"], [1200.0, 7.0, None], "not numbers"),  # signs ignored, the rest counted
        (["1e309", "inf", "12"], [None, None, 12.0], "not numbers"),  # no amount is infinite
    ],
)
def test_csv_values_are_read_one_way_per_column_and_doubts_are_said(tmp_path, written, read, told):
    path = tmp_path / "valued.csv"
    lines = ["case,activity,resource,start_timestamp,end_timestamp,amount"]
    for d, amount in enumerate(written):
        lines.append(f'{d},review,ann,{_day(d)}T09:00:00,{_day(d)}T09:30:00,"{amount}"')
    path.write_text("\n".join(lines))
    wl = load_event_log(path, cache_dir=tmp_path / "cache")
    values = [i.value for i in sorted(wl.items, key=lambda i: i.arrival)]
    assert values == [0.0 if v is None else v for v in read]
    if told is None:
        assert not [w for w in wl.warnings if "amount" in w]
    else:
        assert any("amount" in w and told in w for w in wl.warnings), wl.warnings


def test_csv_timestamps_in_other_spellings_keep_their_own_offsets(tmp_path):
    """RFC 2822 dates whose offset changes with daylight saving time (the whole log was refused
    with pandas' "Mixed timezones detected"), and Unix epoch seconds and milliseconds."""
    import datetime as dt
    from email.utils import format_datetime

    rows = ["case,activity,resource,start,end"]
    epoch_rows = ["case,activity,resource,start,end"]
    for k, day in enumerate(("2024-03-27", "2024-03-28", "2024-04-02", "2024-04-03")):  # CET, then CEST
        offset = dt.timezone(dt.timedelta(hours=1 if day < "2024-03-31" else 2))
        start = dt.datetime.fromisoformat(f"{day}T09:00:00").replace(tzinfo=offset)
        end = start + dt.timedelta(minutes=30)
        rows.append(f'{k},review,ann,"{format_datetime(start)}","{format_datetime(end)}"')
        scale = 1000 if k % 2 else 1
        epoch_rows.append(f"{k},review,ann,{int(start.timestamp() * scale)},{int(end.timestamp() * scale)}")
    for name, lines in (("rfc.csv", rows), ("epoch.csv", epoch_rows)):
        path = tmp_path / name
        path.write_text("\n".join(lines))
        wl = load_event_log(path, cache_dir=tmp_path / "cache")
        assert [i.handling_seconds for i in wl.items] == [1800.0] * 4, name
    # Wall clock kept across the change: every RFC 2822 touch starts at 09:00 local.
    rfc = load_event_log(tmp_path / "rfc.csv", cache_dir=tmp_path / "cache")
    assert {(i.arrival % DAY) / 3600 for i in rfc.items} == {9.0}


@pytest.mark.parametrize("chunk", [1000, None])
def test_a_log_is_read_the_same_whatever_the_chunks_and_however_long_an_attribute(tmp_path, monkeypatch, chunk):
    """The parser is fed the file in chunks (4 MB: with iterparse's 16 KB expat scanned a 50 MB
    attribute value from its start again with every chunk, minutes). Chunks of 1,000 bytes cut
    tokens everywhere; an 8 MB case name is read whole; the touches are those of one pass."""
    from handoff.analytics.simulation import xes

    cases = lifecycle_cases(days=10)
    if chunk is None:  # with tiny chunks a long value is the quadratic case itself: not that one
        cases[0] = ("x" * 8_000_000, cases[0][1])
    path = write_xes(tmp_path / "long.xes.gz", cases, "http://www.xes-standard.org/")
    if chunk is not None:
        monkeypatch.setattr(xes, "READ_CHUNK", chunk)
    traces = list(xes._traces(path))
    assert [t[0]["concept:name"] for t in traces] == [c for c, _ in cases]
    assert [len(t[1]) for t in traces] == [len(e) for _, e in cases]
    wl = load_event_log(path, cache_dir=tmp_path / f"cache-{chunk}")
    assert len(wl.items) == sum(1 for _, e in cases for ev in e if ev[1] == "start")


def test_a_log_whose_touches_last_no_time_says_so(tmp_path):
    """A log with dates and no times (START and COMPLETE on the same midnight) was replayed as
    work of one second each, offered load 0, with no word about it."""
    cases = [(f"c{k}", [("check", "start", _day(k), "ann"), ("check", "complete", _day(k), "ann")]) for k in range(12)]
    path = write_xes(tmp_path / "dates.xes.gz", cases, "http://www.xes-standard.org/")
    wl = load_event_log(path, cache_dir=tmp_path / "cache")
    assert len(wl.items) == 12
    assert any("100% of touches last 0 s" in w and "dates without times" in w for w in wl.warnings), wl.warnings
    timed = load_event_log(
        write_xes(tmp_path / "timed.xes.gz", lifecycle_cases(days=10), None), cache_dir=tmp_path / "c2"
    )
    assert not [w for w in timed.warnings if "last 0 s" in w]
