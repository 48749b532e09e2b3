"""Workloads: XES pairing rules, the BPIC 2012 builder (on a slice of the real log), Northwind,
the synthetic generator, and how teams are drawn."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from handoff.analytics.simulation import xes as xes_module
from handoff.analytics.simulation.bpic2012 import BPIC_SLA_HOURS
from handoff.analytics.simulation.bpic2012 import bpic2012_workload
from handoff.analytics.simulation.calendar import WEEK
from handoff.analytics.simulation.calendar import weekday
from handoff.analytics.simulation.northwind import NORTHWIND_STEPS
from handoff.analytics.simulation.northwind import northwind_workload
from handoff.analytics.simulation.synthetic import synthetic_workload
from handoff.analytics.simulation.xes import load_touches
from handoff.analytics.simulation.xes import parse_xes
from handoff.core.settings import settings

TRACE = """
  <trace>
    <string key="concept:name" value="{case}"/>
    <string key="AMOUNT_REQ" value="{amount}"/>
{events}
  </trace>"""
EVENT = """    <event>
      <string key="concept:name" value="{act}"/>
      <string key="lifecycle:transition" value="{life}"/>
      {res}<date key="time:timestamp" value="{ts}"/>
    </event>"""


def write_xes(path: Path, traces: list[tuple[str, float, list[tuple[str, str, str, str | None]]]]) -> Path:
    body = []
    for case, amount, events in traces:
        evs = "\n".join(
            EVENT.format(act=a, life=life, ts=ts, res=f'<string key="org:resource" value="{r}"/>' if r else "")
            for a, life, ts, r in events
        )
        body.append(TRACE.format(case=case, amount=amount, events=evs))
    text = (
        '<?xml version="1.0" encoding="UTF-8" ?>\n<log xmlns="http://www.xes-standard.org/">'
        + "".join(body)
        + "\n</log>\n"
    )
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


def test_touches_pair_start_and_complete_of_the_same_case_and_activity(tmp_path):
    """Case 1 interleaves two activities (naive "previous event" pairing would give a negative
    duration); W_B is touched twice after one SCHEDULE; a COMPLETE without START is dropped;
    A_SUBMITTED (COMPLETE only) is a system event, not human work."""
    ts = "2011-10-03T{}:00.000+02:00"
    path = write_xes(
        tmp_path / "mini.xes.gz",
        [
            (
                "1",
                5000,
                [
                    ("A_SUBMITTED", "COMPLETE", ts.format("08:00"), "112"),
                    ("W_A", "SCHEDULE", ts.format("08:00"), "112"),
                    ("W_B", "SCHEDULE", ts.format("08:30"), None),
                    ("W_A", "START", ts.format("09:00"), "10"),
                    ("W_B", "START", ts.format("09:05"), "11"),
                    ("W_A", "COMPLETE", ts.format("09:10"), "10"),
                    ("W_B", "COMPLETE", ts.format("09:20"), "11"),
                    ("W_B", "START", ts.format("14:00"), "12"),
                    ("W_B", "COMPLETE", ts.format("14:03"), "12"),
                    ("W_A", "COMPLETE", ts.format("15:00"), "10"),  # orphan
                ],
            ),
            ("2", 0, [("W_A", "START", ts.format("10:00"), None), ("W_A", "COMPLETE", ts.format("10:01"), None)]),
        ],
    )
    parsed = parse_xes(path)
    df = parsed.touches.sort_values(["case", "start_local"]).reset_index(drop=True)
    assert len(df) == 4
    assert (df["duration_s"] > 0).all()
    assert list(df["activity"]) == ["W_A", "W_B", "W_B", "W_A"]
    assert list(df["duration_s"]) == [600.0, 900.0, 180.0, 60.0]

    # Ready: first touches at their SCHEDULE, the follow-up touch and case 2 at their START.
    def local(hhmm):
        return xes_module._times(ts.format(hhmm))[1]

    assert list(df["ready_local"]) == [local("08:00"), local("08:30"), local("14:00"), local("10:00")]
    assert list(df["scheduled"]) == [True, True, False, False]
    assert list(df["value"]) == [5000.0, 5000.0, 5000.0, 0.0]
    assert parsed.stats["orphan_completes"] == 1
    # Naive local time keeps the wall clock: 09:00 +02:00 is hour 9 of a Monday.
    assert (df["start_local"][0] % 86400) / 3600 == 9.0 and weekday(df["start_local"][0]) == 0


def test_parsed_logs_are_cached(tmp_path, monkeypatch):
    ts = "2011-10-03T{}:00.000+02:00"
    path = write_xes(
        tmp_path / "c.xes.gz",
        [("1", 0, [("W_A", "START", ts.format("09:00"), "1"), ("W_A", "COMPLETE", ts.format("09:01"), "1")])],
    )
    first = load_touches(path, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir())

    def boom(*a, **k):
        raise AssertionError("parsed again despite the cache")

    monkeypatch.setattr(xes_module, "parse_xes", boom)
    again = load_touches(path, cache_dir=tmp_path / "cache")
    assert again.touches.equals(first.touches)


@pytest.fixture(scope="module")
def bpic_slice(tmp_path_factory) -> Path:
    """The first 1,500 cases of the real BPIC 2012 log (about two weeks of work)."""
    if not settings.bpic_path.exists():
        pytest.skip("BPIC 2012 log not available")
    out = tmp_path_factory.mktemp("bpic") / "bpic-slice.xes.gz"
    traces = 0
    with gzip.open(settings.bpic_path, "rt", encoding="utf-8") as src, gzip.open(out, "wt", encoding="utf-8") as dst:
        for line in src:
            dst.write(line)
            if line.strip() == "</trace>":
                traces += 1
                if traces == 1500:
                    break
        dst.write("</log>\n")
    return out


def test_bpic_slice_becomes_a_replayable_workload(bpic_slice, tmp_path):
    wl = bpic2012_workload(bpic_slice, cache_dir=tmp_path)
    assert len(wl.items) > 5000
    types = {it.work_type for it in wl.items}
    assert types <= set(BPIC_SLA_HOURS) and "W_Valideren aanvraag" in types
    arrivals = [it.arrival for it in wl.items]
    assert arrivals == sorted(arrivals)
    for it in wl.items:
        assert 1.0 <= it.handling_seconds <= 3600.0  # capped at the interruption rule
        assert it.due > it.arrival
        assert it.required_skills == {it.work_type: 1}
    # Due dates are SLA hours of *opening* time: never shorter than the SLA in wall-clock time.
    lead = next(it for it in wl.items if it.work_type == "W_Afhandelen leads")
    assert lead.due - lead.arrival >= BPIC_SLA_HOURS["W_Afhandelen leads"] * 3600
    assert wl.calendar.weekly_hours() > 40  # the bank's back office works evenings too
    assert 0.5 < wl.offered_load() < 20
    # The router sees the type's mean touch time, not the item's own.
    estimates = {}
    for it in wl.items:
        estimates.setdefault(it.work_type, set()).add(it.effort_estimate)
    assert all(len(v) == 1 for v in estimates.values())


def test_teams_cover_every_work_type_and_are_nested(bpic_slice, tmp_path):
    wl = bpic2012_workload(bpic_slice, cache_dir=tmp_path)
    share = wl.load_share()
    for n in (1, 2, 5):
        team = wl.team(n, seed=4)
        assert len(team) == n and len({r.id for r in team}) == n
        for work_type, s in share.items():
            holders = sum(1 for r in team if r.skills.get(work_type, 0) >= 1)
            assert holders >= min(n, max(1, math.ceil(1.5 * s * n - 1e-9))), (n, work_type)
    small, big = wl.team(3, seed=4), wl.team(4, seed=4)
    # Nested draws: the first three reps of the bigger team are the same people (cross-training
    # adds level-1 skills only, so the drawn profile shows in the levels above 1).
    for a, b in zip(small, big):
        assert {k: v for k, v in a.skills.items() if v > 1} == {k: v for k, v in b.skills.items() if v > 1}
    assert [r.skills for r in wl.team(4, seed=4)] == [r.skills for r in big]  # same seed, same team


def test_volume_factor_and_slicing(bpic_slice, tmp_path):
    wl = bpic2012_workload(bpic_slice, cache_dir=tmp_path)
    double = wl.scaled(2.0)
    assert len(double.items) == 2 * len(wl.items)
    assert double.offered_load() == pytest.approx(2 * wl.offered_load(), rel=1e-9)
    more = wl.scaled(1.25, seed=1)
    assert 1.2 < len(more.items) / len(wl.items) < 1.3
    assert len({it.id for it in more.items}) == len(more.items)
    week = wl.sliced(1.0)
    assert all(it.arrival < wl.start + WEEK for it in week.items)
    assert 0 < len(week.items) < len(wl.items)


def test_northwind_orders_become_three_chained_steps():
    if not settings.northwind_path.exists():
        pytest.skip("Northwind database not available")
    wl = northwind_workload(settings.northwind_path, compression=20, seed=1)
    assert len(wl.items) == 830 * len(NORTHWIND_STEPS)
    by_id = {it.id: it for it in wl.items}
    entries = [it for it in wl.items if it.work_type == "order entry"]
    for entry in entries:
        order = entry.id.split(":")[0]
        ship, bill = by_id[f"{order}:provisioning"], by_id[f"{order}:billing"]
        assert ship.after == entry.id and bill.after == ship.id and entry.after is None
        assert entry.due <= ship.due <= bill.due  # 20 %, 80 %, 100 % of the window
        assert bill.due > entry.arrival  # the promise is never in the past
        assert entry.value > 0 and entry.value == bill.value
        assert entry.handling_seconds > 0 and entry.effort_estimate >= 360  # 5 min + 1 min a line
    large = [it for it in entries if it.required_skills["order entry"] == 2]
    assert large and all(it.priority == 2.0 and it.value >= settings.large_order_value for it in large)
    # Arrivals only in opening hours (Mon-Fri 09-17).
    for it in entries:
        hour = (it.arrival % 86400) / 3600
        assert weekday(it.arrival) < 5 and 9 <= hour <= 17
    # Compression is the load knob: half the compression, half the load.
    slower = northwind_workload(settings.northwind_path, compression=10, seed=1)
    assert slower.offered_load() == pytest.approx(wl.offered_load() / 2, rel=0.1)
    # Every team can do the approvals.
    for n in (1, 3):
        assert any(r.skills.get("order entry", 0) >= 2 for r in wl.team(n))


def test_synthetic_workload_has_the_rates_it_was_asked_for():
    wl = synthetic_workload(n_items=20_000, arrivals_per_hour=60, seed=2)
    gaps = np.diff([it.arrival for it in wl.items])
    assert gaps.mean() == pytest.approx(60.0, rel=0.03)
    mean_handling = np.mean([it.handling_seconds for it in wl.items])
    expected = 0.5 * 300 + 0.3 * 600 + 0.2 * 240
    assert mean_handling == pytest.approx(expected, rel=0.03)
    assert wl.offered_load() == pytest.approx(60 * expected / 3600, rel=0.05)
    for it in wl.items[:100]:
        assert it.due > it.arrival
    same = synthetic_workload(n_items=20_000, arrivals_per_hour=60, seed=2)
    assert [it.handling_seconds for it in same.items] == [it.handling_seconds for it in wl.items]


def test_weekly_load_shows_the_peak_the_average_hides(bpic_slice, tmp_path):
    wl = bpic2012_workload(bpic_slice, cache_dir=tmp_path)
    weekly = wl.weekly_load()
    assert len(weekly) >= 1
    assert max(weekly) >= wl.offered_load() >= min(weekly)
    assert wl.summary()["offered_load_peak_week"] == pytest.approx(max(weekly), abs=1e-3)
    # A steady synthetic stream (always open, 4 weeks) has every week close to the average.
    steady = synthetic_workload(n_items=13_440, arrivals_per_hour=20, seed=5)
    assert all(w == pytest.approx(steady.offered_load(), rel=0.1) for w in steady.weekly_load())
