"""The `simulate` and `staff` commands, on a throw-away typer app (the project CLI calls the same
`register`)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from handoff.cli.simulation import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")  # a second command so typer keeps sub-command names
    def noop() -> None:  # pragma: no cover
        pass

    return app


runner = CliRunner()


def test_simulate_compares_policies_by_team_size_as_json_and_charts(app, tmp_path):
    result = runner.invoke(
        app,
        [
            "simulate", "--workload", "synthetic", "--items", "600", "--rate", "40",
            "--policies", "push,fifo,self", "--staff", "2..4", "--seed", "3",
            "--json", "--charts-dir", str(tmp_path / "charts"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    runs = out["runs"]
    assert [(r["staff"], r["policy"]) for r in runs] == [(n, p) for n in (2, 3, 4) for p in ("push", "fifo", "self")]
    assert out["workload"]["items"] == 600
    for r in runs:
        assert 0 <= r["on_time_pct"] <= 100
        assert r["items"] == r["completed"] + r["unfinished"]
        assert r["load_per_rep"] == pytest.approx(out["workload"]["offered_load"] / r["staff"], rel=1e-3)
    # More people never makes FIFO later on this workload (nested teams, same arrivals).
    fifo = [r["mean_lateness_h"] for r in runs if r["policy"] == "fifo"]
    assert fifo == sorted(fifo, reverse=True)
    charts = [p for p in (tmp_path / "charts").iterdir()]
    assert {p.suffix for p in charts} == {".png"} and len(charts) == 2
    assert all(p.stat().st_size > 5000 for p in charts)
    # Same seed, same numbers.
    again = runner.invoke(
        app,
        ["simulate", "--workload", "synthetic", "--items", "600", "--rate", "40", "--staff", "2..4", "--seed", "3", "--json"],
    )
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rs]  # noqa: E731
    assert strip(json.loads(again.stdout)["runs"]) == strip(runs)


def test_simulate_prints_a_table(app):
    result = runner.invoke(
        app, ["simulate", "--workload", "synthetic", "--items", "300", "--staff", "3", "--policies", "fifo"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "on-time %" in result.output and "fifo" in result.output
    assert "offered load" in result.output


def test_simulate_rejects_bad_input(app):
    assert runner.invoke(app, ["simulate", "--workload", "nope"]).exit_code != 0
    assert runner.invoke(app, ["simulate", "--workload", "synthetic", "--policies", "magic"]).exit_code != 0
    assert runner.invoke(app, ["simulate", "--workload", "synthetic", "--staff", "5..2"]).exit_code != 0


def test_staff_by_erlang_c_and_a(app):
    result = runner.invoke(
        app,
        [
            "staff", "--arrivals-per-hour", "200", "--aht-seconds", "180", "--target-sl", "0.8",
            "--target-seconds", "20", "--max-occupancy", "0.85", "--shrinkage", "0.3",
            "--patience-seconds", "120", "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    c = out["erlang_c"]
    assert (c["agents_raw"], c["agents_occupancy_capped"], c["agents_rostered"]) == (14, 14, 20)
    assert c["service_level"] >= 0.8 and c["occupancy"] <= 0.85
    assert out["sqrt_staffing"]["protective_capacity"] == pytest.approx(4.0)
    a = out["erlang_a"]["needed"]
    assert a["service_level"] >= 0.8 and 0 < a["p_abandon"] < 0.2
    assert a["n"] <= c["agents_raw"]  # callers who give up shorten the queue

    table = runner.invoke(app, ["staff", "--arrivals-per-hour", "200", "--aht-seconds", "180"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "rostered after shrinkage" in table.output and "beta" in table.output


def test_staff_by_simulation_finds_the_smallest_team(app):
    result = runner.invoke(
        app,
        [
            "staff", "--workload", "synthetic", "--items", "800", "--rate", "40",
            "--target-on-time", "0.9", "--policy", "push", "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    trials = out["trials"]
    answer = out["answer"]
    assert answer == trials[-1]["staff"]
    assert trials[-1]["on_time_pct"] >= 90
    assert all(t["on_time_pct"] < 90 for t in trials[:-1])
    assert trials[0]["staff"] <= out["workload"]["offered_load"] + 1
    # Protective capacity is N - R at every size tried.
    for t in trials:
        assert t["protective_capacity"] == pytest.approx(t["staff"] - t["offered_load"], abs=1e-3)
    # More volume never needs fewer people.
    more = runner.invoke(
        app,
        [
            "staff", "--workload", "synthetic", "--items", "800", "--rate", "40", "--volume-factor", "1.5",
            "--target-on-time", "0.9", "--policy", "push", "--json",
        ],
    )
    assert json.loads(more.stdout)["answer"] >= answer


def test_staff_needs_either_erlang_inputs_or_a_workload(app):
    assert runner.invoke(app, ["staff"]).exit_code != 0
