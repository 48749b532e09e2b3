"""The `simulate` and `staff` commands, on a throw-away typer app (the project CLI calls the same
`register`)."""

from __future__ import annotations

import json
import re

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
            "simulate",
            "--workload",
            "synthetic",
            "--items",
            "600",
            "--rate",
            "40",
            "--policies",
            "push,fifo,self",
            "--staff",
            "2..4",
            "--seed",
            "3",
            "--draws",
            "2",
            "--json",
            "--charts-dir",
            str(tmp_path / "charts"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    runs = out["runs"]
    assert [(r["staff"], r["policy"], r["seed"]) for r in runs] == [
        (n, p, seed) for n in (2, 3, 4) for p in ("push", "fifo", "self") for seed in (3, 4)
    ]
    # each cell: the mean and range of its two team draws
    assert [(c["staff"], c["policy"], c["seeds"]) for c in out["cells"]] == [
        (n, p, [3, 4]) for n in (2, 3, 4) for p in ("push", "fifo", "self")
    ]
    for c, pair in zip(out["cells"], zip(runs[::2], runs[1::2])):
        got = [r["on_time_pct"] for r in pair]
        assert c["on_time_pct"]["min"] == pytest.approx(min(got), abs=1e-4)
        assert c["on_time_pct"]["max"] == pytest.approx(max(got), abs=1e-4)
        assert c["on_time_pct"]["mean"] == pytest.approx(sum(got) / 2, abs=1e-4)
    runs = runs[::2]  # the first draw (seed 3), as the same command with --draws 1 gives it below
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
        [
            "simulate",
            "--workload",
            "synthetic",
            "--items",
            "600",
            "--rate",
            "40",
            "--staff",
            "2..4",
            "--seed",
            "3",
            "--draws",
            "1",
            "--json",
        ],
    )

    def strip(rs):
        return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rs]

    assert strip(json.loads(again.stdout)["runs"]) == strip(runs)


def test_simulate_prints_a_table(app):
    result = runner.invoke(
        app,
        ["simulate", "--workload", "synthetic", "--items", "300", "--staff", "3", "--policies", "fifo"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "on-time %" in result.output and "fifo" in result.output
    assert "offered load" in result.output
    assert "mean [min-max] over seeds 0..4" in result.output  # five team draws unless told
    assert re.search(r"fifo\s+│\s+3\s+│\s+[\d.]+\s+│\s+[\d.]+ \[[\d.]+-[\d.]+\]", result.output), result.output


def test_simulate_rejects_bad_input(app):
    assert runner.invoke(app, ["simulate", "--workload", "nope"]).exit_code != 0
    assert runner.invoke(app, ["simulate", "--workload", "synthetic", "--policies", "magic"]).exit_code != 0
    assert runner.invoke(app, ["simulate", "--workload", "synthetic", "--staff", "5..2"]).exit_code != 0


def test_staff_by_erlang_c_and_a(app):
    result = runner.invoke(
        app,
        [
            "staff",
            "--arrivals-per-hour",
            "200",
            "--aht-seconds",
            "180",
            "--target-sl",
            "0.8",
            "--target-seconds",
            "20",
            "--max-occupancy",
            "0.85",
            "--shrinkage",
            "0.3",
            "--patience-seconds",
            "120",
            "--json",
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


def test_staff_by_simulation_finds_the_smallest_team_over_draws(app):
    args = [
        "staff",
        "--workload",
        "synthetic",
        "--items",
        "800",
        "--rate",
        "40",
        "--target-on-time",
        "0.9",
        "--policy",
        "push",
        "--draws",
        "5",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    trials, answer, by_draw = out["trials"], out["answer"], out["by_draw"]
    assert len(by_draw) == 5 and answer == max(by_draw.values())
    assert out["range"] == [min(by_draw.values()), answer]
    for draw, n in by_draw.items():
        mine = {t["staff"]: t["on_time_pct"] for t in trials if t["draw"] == int(draw)}
        assert mine[n] >= 90  # meets it ...
        assert n == 1 or mine[n - 1] < 90  # ... and one seat fewer was tried and does not
    # Protective capacity: N - R, and the spare share of seat time.
    assert out["protective_capacity"] == pytest.approx(answer - out["offered_load"], abs=1e-3)
    assert out["spare_capacity_pct"] == pytest.approx(100 * (answer - out["offered_load"]) / answer, abs=0.01)
    for t in trials:
        assert t["protective_capacity"] == pytest.approx(t["staff"] - t["offered_load"], abs=1e-3)
    # More volume never needs fewer people.
    more = runner.invoke(app, args[:1] + ["--volume-factor", "1.5"] + args[1:])
    assert json.loads(more.stdout)["answer"] >= answer
    table = runner.invoke(app, args[:-1], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "draws met" in table.output and "spare capacity" in table.output


def test_staff_searches_below_the_offered_load(app, monkeypatch):
    """With SLAs of weeks, a team well under the offered load still finishes everything on time
    (the backlog never outgrows the SLA): the search must go below R, not start at it."""
    args = [
        "staff",
        "--workload",
        "synthetic",
        "--items",
        "400",
        "--rate",
        "40",
        "--target-on-time",
        "0.95",
        "--policy",
        "fifo",
        "--draws",
        "2",
        "--json",
    ]
    from handoff.analytics.simulation import workloads
    from handoff.analytics.simulation.synthetic import TypeSpec

    original = workloads.synthetic_workload

    def long_slas(**kw):
        return original(types=(TypeSpec("letters", 1.0, 300.0, 60 * 24 * 3600.0),), **kw)

    monkeypatch.setattr(workloads, "synthetic_workload", long_slas)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["offered_load"] > 2.5
    assert out["answer"] <= out["offered_load"] - 1
    assert out["protective_capacity"] < 0


def test_staff_needs_either_erlang_inputs_or_a_workload(app):
    assert runner.invoke(app, ["staff"]).exit_code != 0


# --- event logs through the CLI ------------------------------------------------------------------


def test_simulate_reads_xes_with_either_namespace_spelling_and_names_the_workload(app, tmp_path):
    from test_sim_eventlogs import lifecycle_cases
    from test_sim_eventlogs import write_xes

    outs = []
    for ns, name in (
        ("http://www.xes-standard.org/", "slash"),
        ("http://www.xes-standard.org", "no-slash"),
        ("http://code.deckfour.org/xes", "deckfour"),
    ):
        path = write_xes(tmp_path / f"{name}.xes.gz", lifecycle_cases(), ns)
        result = runner.invoke(
            app,
            [
                "simulate",
                "--workload",
                str(path),
                "--staff",
                "1,2",
                "--policies",
                "fifo",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["workload"]["workload"] == name
        outs.append([{k: v for k, v in r.items() if k != "wall_seconds"} for r in out["runs"]])
    assert outs[0] == outs[1] == outs[2]  # the same log, whatever the spelling


def test_simulate_reads_a_csv_with_options_and_warns(app, tmp_path):
    from test_sim_eventlogs import write_csv

    path = write_csv(tmp_path / "desk.csv")
    sla = tmp_path / "sla.csv"
    sla.write_text("activity,sla_hours,priority,value\nrefund,2,3,900\n")
    args = [
        "simulate",
        "--workload",
        str(path),
        "--columns",
        "case=Case ID,activity=Task,resource=Who,start=Began,end=Done",
        "--sla-file",
        str(sla),
        "--sla",
        "answer mail=6",
        "--default-sla-hours",
        "5",
        "--touch-cap-hours",
        "0.1",
        "--hours",
        "Mon-Fri 08:00-17:00",
        "--staff",
        "1",
        "--policies",
        "push",
        "--cache-dir",
        str(tmp_path / "c"),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    wl = out["workload"]
    assert wl["workload"] == "desk" and wl["items"] == 150 and wl["opening_hours"] == "Mon-Fri 08-17"
    assert wl["sla"] == {"answer mail": "6 opening hours", "refund": "2 opening hours"}
    assert any("touch cap cut 100%" in w for w in wl["warnings"])  # every touch is over 6 minutes
    assert "touch cap cut" in result.stderr  # warnings reach the user even with --json


def test_simulate_reads_interval_xes(app, tmp_path):
    path = tmp_path / "intervals.xes"
    events = "".join(
        f'<trace><string key="concept:name" value="{k}"/><event><string key="concept:name" value="pick"/>'
        f'<date key="start_timestamp" value="2024-03-0{4 + k % 5}T{9 + k % 8:02d}:00:00"/>'
        f'<date key="time:timestamp" value="2024-03-0{4 + k % 5}T{9 + k % 8:02d}:20:00"/></event></trace>'
        for k in range(40)
    )
    path.write_text(f"<log>{events}</log>")
    result = runner.invoke(
        app,
        [
            "simulate",
            "--workload",
            str(path),
            "--staff",
            "1",
            "--policies",
            "self",
            "--cache-dir",
            str(tmp_path / "c"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["workload"]["items"] == 40 and out["runs"][0]["completed"] == 40


def test_unusable_logs_and_bad_options_are_refused_with_the_reason(app, tmp_path):
    from test_sim_eventlogs import write_xes

    done = write_xes(tmp_path / "done.xes.gz", [("c1", [("check", "complete", "2024-03-04T09:00:00", "a")])], None)
    result = runner.invoke(app, ["simulate", "--workload", str(done), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code != 0
    said = " ".join(result.output.replace("│", " ").split())  # rich wraps the error in a box
    assert "START and COMPLETE per work item" in said and "start_timestamp" in said
    for bad in (["--hours", "whenever"], ["--columns", "colour=red"], ["--sla", "check"], ["--sla-file", "/nope.json"]):
        r = runner.invoke(app, ["simulate", "--workload", str(done), *bad])
        assert r.exit_code != 0, bad
    missing = runner.invoke(app, ["simulate", "--workload", str(tmp_path / "absent.xes")])
    assert missing.exit_code != 0
    assert "neither a named workload nor an event log" in " ".join(missing.output.replace("│", " ").split())


def test_broken_logs_and_impossible_options_are_refused_with_their_reason(app, tmp_path):
    """A log cut short, a file that is not XML, an SLA of NaN or infinity (which had the business
    clock walk for ever), a malformed SLA file, a share given as a percentage: each is one clear
    line naming the problem, not a traceback, a bare "Aborted." or a hang."""
    import gzip

    from test_sim_eventlogs import lifecycle_cases
    from test_sim_eventlogs import write_xes

    log = write_xes(tmp_path / "log.xes.gz", lifecycle_cases(days=10), "http://www.xes-standard.org")
    whole = gzip.decompress(log.read_bytes())
    cut = tmp_path / "cut.xes.gz"
    cut.write_bytes(log.read_bytes()[: len(log.read_bytes()) // 2])
    half = tmp_path / "half.xes"
    half.write_bytes(whole[: len(whole) // 2])
    empty = tmp_path / "empty.xes"
    empty.write_bytes(b"")
    number_only = tmp_path / "sla.json"
    number_only.write_text('{"check": 4}')
    wrong_column = tmp_path / "sla.csv"
    wrong_column.write_text("activity,sla,priority\ncheck,4,1\n")
    infinite = tmp_path / "inf.json"
    infinite.write_text('{"check": {"sla_hours": 1e400}}')
    cache = ["--cache-dir", str(tmp_path / "cache")]
    cases = [
        (["simulate", "--workload", str(cut)], "ends too soon"),
        (["simulate", "--workload", str(half)], "not well-formed XML"),
        (["simulate", "--workload", str(empty)], "not well-formed XML"),
        (["simulate", "--workload", str(log), "--sla", "check=nan"], "finite"),
        (["simulate", "--workload", str(log), "--sla", "check=inf"], "finite"),
        (["simulate", "--workload", str(log), "--sla", "check=-3"], "positive"),
        (["simulate", "--workload", str(log), "--default-sla-hours", "inf"], "finite"),
        (["simulate", "--workload", str(log), "--sla-file", str(infinite)], "finite"),
        (["simulate", "--workload", str(log), "--sla-file", str(number_only)], "its terms"),
        (["simulate", "--workload", str(log), "--sla-file", str(wrong_column)], "not 'sla'"),
        (["simulate", "--workload", str(log), "--weeks", "0"], "--weeks"),
        (["simulate", "--workload", str(log), "--volume-factor", "inf"], "--volume-factor"),
        (["simulate", "--workload", str(log), "--volume-factor", "0.0001"], "no work items left"),
        (["staff", "--workload", str(log), "--target-on-time", "95"], "is a share"),
    ]
    for args, reason in cases:
        result = runner.invoke(
            app,
            [
                *args,
                "--policies" if args[0] == "simulate" else "--draws",
                "fifo" if args[0] == "simulate" else "1",
                "--staff" if args[0] == "simulate" else "--max-staff",
                "2",
                *cache,
            ],
            env={"COLUMNS": "400"},
        )
        assert result.exit_code == 2 and reason in " ".join(result.output.split()), (args, result.output[-600:])
        assert "Traceback" not in result.output


def test_hostile_text_numbers_and_sizes_in_a_log_or_its_options_end_in_words_or_an_answer(app, tmp_path):
    """Found by writing odd logs (1 December): a closing markup tag in an option or a timestamp
    crashed the warning printer with a traceback; an SLA of ten million hours walked the
    calendar day by day for minutes; a value of 1e308 made the JSON say NaN and Infinity; a
    time with no date was dated the day the command ran; '-1' as a timestamp stopped the whole
    load; an SLA file nested 100,000 deep was a RecursionError."""
    from test_sim_eventlogs import _day
    from test_sim_eventlogs import lifecycle_cases
    from test_sim_eventlogs import write_xes

    log = write_xes(tmp_path / "log.xes.gz", lifecycle_cases(days=10), "http://www.xes-standard.org")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    quick = ["--staff", "2", "--draws", "1", "--policies", "push,fifo", *cache]

    def run(*args: str):
        result = runner.invoke(app, ["simulate", "--workload", *args, *quick], env={"COLUMNS": "400"})
        assert (
            "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
        ), result.output[-800:]
        return result.exit_code, " ".join(result.output.split())

    code, out = run(str(log), "--sla", "[/]=4", "--drop-activities", "[/x]")
    assert code == 0 and "not in the log: [/]" in out
    marked = tmp_path / "marked.csv"
    rows = [f"c{d},check,ann,{_day(d)}T09:00:00,{_day(d)}T09:30:00" for d in range(10)]
    marked.write_text("case,activity,resource,start,end\n" + "\n".join([*rows, "c99,check,ann,[/bold],[/]"]))
    code, out = run(str(marked))
    assert code == 0 and "without a readable timestamp: 1 dropped (e.g. '[/]')" in out
    code, out = run(str(log), "--sla", "check=1e7")  # due in 1,141 years: answered, at once
    assert code == 0 and "│ push" in out
    result = runner.invoke(
        app,
        ["simulate", "--workload", str(log), "--sla", "check=0.01", "--value", "check=1e308", "--json", *quick],
    )
    assert result.exit_code == 0, result.output[-800:]
    cells = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))["cells"]
    assert all(0 <= c["value_weighted_lateness_h"]["mean"] < 1e6 for c in cells)
    times_only = tmp_path / "times.csv"
    times_only.write_text(
        "case,activity,resource,start,end\n" + "\n".join(f"c{k},check,ann,09:0{k},09:3{k}" for k in range(5))
    )
    code, out = run(str(times_only))
    assert code == 2 and "5 without a readable timestamp" in out
    minus = tmp_path / "minus.csv"
    minus.write_text("case,activity,resource,start,end\n" + "\n".join([*rows, "c99,check,ann,-1,-0"]))
    code, out = run(str(minus))
    assert code == 0 and "without a readable timestamp" in out and "10 work items" in out
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, out = run(str(log), "--sla-file", str(deep))
    assert code == 2 and "nested too deeply" in out


def test_two_logs_of_one_name_in_two_folders_are_not_one_cache_entry(tmp_path):
    """Same file name, size and modification time, different work: each is read as itself."""
    import os

    from test_sim_eventlogs import _day

    from handoff.analytics.simulation.eventlog import load_event_log

    def log(folder: str, activity: str):
        path = tmp_path / folder / "log.csv"
        path.parent.mkdir()
        lines = ["case:concept:name,concept:name,org:resource,start_timestamp,time:timestamp"]
        lines += [f"{d},{activity},ann,{_day(d)}T09:00:00,{_day(d)}T09:30:00" for d in range(10)]
        path.write_text("\n".join(lines))
        return path

    a, b = log("a", "approve"), log("b", "confirm")  # the same number of bytes
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))
    assert a.stat().st_size == b.stat().st_size and a.stat().st_mtime_ns == b.stat().st_mtime_ns
    read = [{i.work_type for i in load_event_log(p, cache_dir=tmp_path / "cache").items} for p in (a, b)]
    assert read == [{"approve"}, {"confirm"}]


def test_simulate_a_batch_log_and_day_first_dates(app, tmp_path):
    """Work logged at one minute gave R = 72,000 (and a grid of 72,000 reps): now taken over an
    hour, with the warning on stderr. --dayfirst / --monthfirst settle ambiguous dates."""
    batch = tmp_path / "batch.csv"
    batch.write_text(
        "case,activity,start,end\n" + "".join(f"k{k},Review,2024-03-04 09:00,2024-03-04 09:30\n" for k in range(40))
    )
    common = ["--policies", "fifo", "--staff", "2", "--cache-dir", str(tmp_path / "c"), "--json"]
    result = runner.invoke(app, ["simulate", "--workload", str(batch), *common])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["workload"]["offered_load"] == pytest.approx(20.0)
    assert "too short to show a rate" in " ".join(result.stderr.split())  # rich wraps the lines
    dates = tmp_path / "dates.csv"  # Monday 4 to Friday 8 March, or 3 April to 3 August?
    dates.write_text(
        "case,activity,start,end\n"
        + "".join(f"c{d},Review,0{d}/03/2024 09:00,0{d}/03/2024 09:30\n" for d in range(4, 9))
    )
    weeks = {}
    for flag in ("--dayfirst", "--monthfirst"):
        result = runner.invoke(app, ["simulate", "--workload", str(dates), flag, *common])
        assert result.exit_code == 0, result.output
        assert "could be day or month first" not in " ".join(result.stderr.split())  # told, not guessed
        weeks[flag] = json.loads(result.stdout)["workload"]["weeks"]
    assert weeks == {"--dayfirst": pytest.approx(4 / 7, abs=0.01), "--monthfirst": pytest.approx(122 / 7, abs=0.01)}
    result = runner.invoke(app, ["simulate", "--workload", str(dates), *common])
    guessed = " ".join(result.stderr.split())
    assert "could be day or month first" in guessed and "--dayfirst" in guessed
