"""CLI: `simulate` (compare routing policies by replaying a workload) and `staff` (how many people).

`--workload` is a named workload (bpic2012, northwind, synthetic) or the path of any event log
(XES in any namespace spelling, interval XES, CSV with `--columns`); the log options below say
how to read a foreign log (SLA per activity, touch cap, opening hours, markers to drop).

The project's CLI adds these with:

    from handoff.cli.simulation import register as register_simulation
    register_simulation(app)

Both commands print a rich table, or JSON with `--json` (nothing else on stdout then).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from handoff.analytics.simulation.compare import TABLE_COLUMNS, RunOutcome, table_rows

WORKLOADS = ("bpic2012", "northwind", "synthetic")


def register(app: typer.Typer) -> None:
    """Add the `simulate` and `staff` commands to `app`."""
    from handoff.cli.staffing import staff_command

    app.command("simulate")(simulate_command)
    app.command("staff")(staff_command)


# --- shared options ----------------------------------------------------------------------------

XesOpt = Annotated[
    Path | None,
    typer.Option("--xes", help="bpic2012: another XES log of BPIC 2012's shape (BPIC's SLA table applies)."),
]
NorthwindOpt = Annotated[Path | None, typer.Option("--northwind-db", help="Northwind SQLite file.")]
CacheOpt = Annotated[
    Path | None, typer.Option("--cache-dir", help="Where parsed logs are cached (default ~/.cache/handoff).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for team draws, synthetic work and random choices.")]
WeeksOpt = Annotated[float | None, typer.Option("--weeks", help="Replay only the first N weeks of work.")]
VolumeOpt = Annotated[float, typer.Option("--volume-factor", help="Scale the arrivals (1.2 = 20 % more work).")]
CompressionOpt = Annotated[
    float, typer.Option("--compression", help="Northwind: business days of orders replayed per business day.")
]
ItemsOpt = Annotated[int, typer.Option("--items", help="Synthetic: number of work items.")]
RateOpt = Annotated[float, typer.Option("--rate", help="Synthetic: arrivals per open hour.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
WorkloadHelp = "bpic2012, northwind, synthetic, or the path of an event log (.xes, .xes.gz, .csv)."
# How to read an event log (--workload PATH; also bpic2012, whose own SLA table they override):
ColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="CSV: role=column pairs, e.g. case=CaseID,activity=Activity,resource=Resource,start=Start,end=End "
        "(optional value=, priority=; or timestamp= with lifecycle=). Unnamed roles are guessed from the header.",
    ),
]
SlaFileOpt = Annotated[
    Path | None, typer.Option("--sla-file", help="JSON or CSV: activity -> sla_hours, priority, value.")
]
SlaOpt = Annotated[list[str] | None, typer.Option("--sla", help="ACTIVITY=HOURS (opening hours); repeatable.")]
PriorityOpt = Annotated[
    list[str] | None, typer.Option("--priority", help="ACTIVITY=PRIORITY (1 = normal); repeatable.")
]
ValueOpt = Annotated[list[str] | None, typer.Option("--value", help="ACTIVITY=VALUE per item; repeatable.")]
DefaultSlaOpt = Annotated[float, typer.Option("--default-sla-hours", help="SLA of activities not given otherwise.")]
TouchCapOpt = Annotated[
    float,
    typer.Option(
        "--touch-cap-hours", help="A touch longer than this is an interruption and is cut to it (0 = no cap)."
    ),
]
HoursOpt = Annotated[
    str | None,
    typer.Option(
        "--hours", help='Opening hours instead of deriving them, e.g. "Mon-Fri 08:00-17:00, Sat 10-14" or "24x7".'
    ),
]
DropOpt = Annotated[
    str | None,
    typer.Option(
        "--drop-activities",
        help="Comma-separated activities that are not human work (start/end markers are dropped anyway).",
    ),
]
ValueAttrOpt = Annotated[
    str, typer.Option("--value-attribute", help="XES: the trace attribute holding the case value.")
]


def log_options(
    columns=None,
    sla_file=None,
    sla=None,
    priority=None,
    value=None,
    default_sla_hours=8.0,
    touch_cap_hours=1.0,
    hours=None,
    drop_activities=None,
    value_attribute="AMOUNT_REQ",
):
    """The LogOptions the log options describe (ValueError naming the bad option)."""
    from handoff.analytics.simulation.calendar import parse_hours
    from handoff.analytics.simulation.csvlog import parse_columns
    from handoff.analytics.simulation.eventlog import (
        ActivityTerms,
        LogOptions,
        parse_terms,
        read_sla_file,
    )

    if default_sla_hours <= 0:
        raise ValueError("--default-sla-hours must be positive")
    terms: dict[str, ActivityTerms] = dict(read_sla_file(sla_file)) if sla_file is not None else {}
    for field_name, given in (("sla_hours", sla), ("priority", priority), ("value", value)):
        for act, num in parse_terms(given or [], field_name.split("_")[0]).items():
            old = terms.get(act, ActivityTerms())
            terms[act] = ActivityTerms(**{**old.__dict__, field_name: num})
    return LogOptions(
        terms=terms,
        default_sla_hours=default_sla_hours,
        touch_cap_hours=touch_cap_hours,
        hours=parse_hours(hours) if hours else None,
        drop_activities=tuple(a.strip() for a in (drop_activities or "").split(",") if a.strip()),
        columns=parse_columns(columns),
        value_attribute=value_attribute,
    )


def load(
    name,
    xes=None,
    northwind_db=None,
    cache_dir=None,
    seed=0,
    weeks=None,
    volume_factor=1.0,
    compression=20.0,
    items=5000,
    rate=30.0,
    **log,
):
    """The workload the options name; typer.BadParameter with the reason when it cannot be built."""
    from handoff.analytics.simulation.workloads import load_workload

    if name not in WORKLOADS and not Path(name).is_file():
        raise typer.BadParameter(
            f"{name!r} is neither a named workload nor an event log file; {WorkloadHelp}", param_hint="--workload"
        )
    if xes is not None and not Path(xes).exists():
        raise typer.BadParameter(f"{xes} does not exist", param_hint="--xes")
    if log.get("sla_file") is not None and not Path(log["sla_file"]).is_file():
        raise typer.BadParameter(f"{log['sla_file']} does not exist", param_hint="--sla-file")
    try:
        return load_workload(
            name,
            xes=xes,
            northwind=northwind_db,
            cache_dir=cache_dir,
            seed=seed,
            weeks=weeks,
            volume_factor=volume_factor,
            compression=compression,
            synthetic_items=items,
            synthetic_rate=rate,
            log_options=log_options(**log) if name not in ("northwind", "synthetic") else None,
        )
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--workload") from exc


def print_warnings(console: Console, wl) -> None:
    """Warnings go to stderr always (also with --json), so nobody misses a fallback."""
    err = Console(stderr=True)
    for w in wl.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False)


# --- simulate --------------------------------------------------------------------------------------


def simulate_command(
    workload: Annotated[str, typer.Option("--workload", help=WorkloadHelp)] = "bpic2012",
    policies: Annotated[str, typer.Option("--policies", help="Comma-separated: push,fifo,self.")] = "push,fifo,self",
    staff: Annotated[
        str | None, typer.Option("--staff", help="Team sizes: 2..8 or 3,5,8 (default: around the offered load).")
    ] = None,
    seed: SeedOpt = 0,
    xes: XesOpt = None,
    northwind_db: NorthwindOpt = None,
    cache_dir: CacheOpt = None,
    weeks: WeeksOpt = None,
    volume_factor: VolumeOpt = 1.0,
    compression: CompressionOpt = 20.0,
    items: ItemsOpt = 5000,
    rate: RateOpt = 30.0,
    jobs: Annotated[int, typer.Option("--jobs", help="Runs in parallel (processes).")] = 1,
    charts_dir: Annotated[
        Path | None, typer.Option("--charts-dir", help="Save PNG charts (on-time vs staff, backlog) here.")
    ] = None,
    json_out: JsonOpt = False,
    columns: ColumnsOpt = None,
    sla_file: SlaFileOpt = None,
    sla: SlaOpt = None,
    priority: PriorityOpt = None,
    value: ValueOpt = None,
    default_sla_hours: DefaultSlaOpt = 8.0,
    touch_cap_hours: TouchCapOpt = 1.0,
    hours: HoursOpt = None,
    drop_activities: DropOpt = None,
    value_attribute: ValueAttrOpt = "AMOUNT_REQ",
) -> None:
    """Replay a workload under each routing policy and team size; compare on-time %, lateness,
    utilisation, fairness and backlog."""
    from handoff.analytics.simulation.compare import (
        auto_staff,
        parse_policies,
        parse_staff,
        run_grid,
        save_charts,
    )

    try:
        names = parse_policies(policies)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policies") from exc
    wl = load(
        workload,
        xes,
        northwind_db,
        cache_dir,
        seed,
        weeks,
        volume_factor,
        compression,
        items,
        rate,
        columns=columns,
        sla_file=sla_file,
        sla=sla,
        priority=priority,
        value=value,
        default_sla_hours=default_sla_hours,
        touch_cap_hours=touch_cap_hours,
        hours=hours,
        drop_activities=drop_activities,
        value_attribute=value_attribute,
    )
    try:
        sizes = parse_staff(staff) if staff else auto_staff(wl.offered_load())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console(stderr=json_out)
    print_warnings(console, wl)
    summary = wl.summary()
    if not json_out:
        console.print(
            f"[bold]{wl.name}[/bold]: {summary['items']} work items over {summary['weeks']} weeks, "
            f"{summary['touch_hours']} touch hours, opening hours {summary['opening_hours']}; "
            f"offered load R = {summary['offered_load']:.2f} reps busy while open "
            f"(peak week {summary['offered_load_peak_week']:.2f})"
        )
        for note in wl.notes:
            console.print(f"  - {note}")
    with console.status("simulating...") as status:
        done = [0]
        total = len(names) * len(sizes)

        def progress(_o) -> None:
            done[0] += 1
            status.update(f"simulating... {done[0]}/{total} runs")

        outcomes = run_grid(wl, names, sizes, seed=seed, jobs=jobs, on_done=progress)
    charts: list[Path] = []
    if charts_dir is not None:
        charts = save_charts(outcomes, charts_dir, wl.name)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "workload": summary,
                    "seed": seed,
                    "runs": [o.as_dict() for o in outcomes],
                    "charts": [str(p) for p in charts],
                },
                indent=2,
            )
        )
        return
    console.print(rich_table(outcomes, title=f"{wl.name}: routing policies by team size (seed {seed})"))
    for p in charts:
        console.print(f"chart: {p}")


def rich_table(outcomes: Sequence[RunOutcome], title: str = "") -> Table:
    """The grid as a terminal table, the best on-time % of each team size in bold."""
    table = Table(title=title or None)
    for header, _ in TABLE_COLUMNS:
        table.add_column(header, justify="left" if header == "policy" else "right")
    best_by_staff: dict[int, float] = {}
    for o in outcomes:
        best_by_staff[o.staff] = max(best_by_staff.get(o.staff, -1.0), o.metrics.on_time_pct)
    previous_staff = None
    for o, row in zip(outcomes, table_rows(outcomes)):
        if previous_staff is not None and o.staff != previous_staff:
            table.add_section()
        previous_staff = o.staff
        if o.metrics.on_time_pct == best_by_staff[o.staff]:
            row[3] = f"[bold]{row[3]}[/bold]"
        table.add_row(*row)
    return table
