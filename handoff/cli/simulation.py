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

import functools
import inspect
import json
import math
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from handoff.analytics.simulation.compare import TABLE_COLUMNS
from handoff.analytics.simulation.compare import RunOutcome
from handoff.analytics.simulation.compare import cells
from handoff.analytics.simulation.compare import table_row
from handoff.cli.shown import shown

WORKLOADS = ("bpic2012", "northwind", "synthetic")
MAX_VOLUME_FACTOR = 100.0  # a hundred times the log's volume is already a different business


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
DayfirstOpt = Annotated[
    bool | None,
    typer.Option(
        "--dayfirst/--monthfirst",
        help="CSV: numeric dates (04/03/2024) are day first / month first (default: told by the dates).",
    ),
]


def log_options(args: WorkloadArgs):
    """The LogOptions the log options describe (ValueError naming the bad option)."""
    from handoff.analytics.simulation.calendar import parse_hours
    from handoff.analytics.simulation.csvlog import parse_columns
    from handoff.analytics.simulation.eventlog import ActivityTerms
    from handoff.analytics.simulation.eventlog import LogOptions
    from handoff.analytics.simulation.eventlog import parse_terms
    from handoff.analytics.simulation.eventlog import read_sla_file

    if not 0 < args.default_sla_hours < math.inf:
        raise ValueError("--default-sla-hours must be a positive, finite number")
    if args.weeks is not None and not 0 < args.weeks < math.inf:
        raise ValueError("--weeks must be a positive, finite number")
    if not 0 < args.volume_factor <= MAX_VOLUME_FACTOR:
        raise ValueError(f"--volume-factor must be above 0 and at most {MAX_VOLUME_FACTOR:g}")
    terms: dict[str, ActivityTerms] = dict(read_sla_file(args.sla_file)) if args.sla_file is not None else {}
    for field_name, given in (("sla_hours", args.sla), ("priority", args.priority), ("value", args.value)):
        for act, num in parse_terms(given or [], field_name.split("_")[0]).items():
            old = terms.get(act, ActivityTerms())
            terms[act] = ActivityTerms(**{**old.__dict__, field_name: num})
    return LogOptions(
        terms=terms,
        default_sla_hours=args.default_sla_hours,
        touch_cap_hours=args.touch_cap_hours,
        hours=parse_hours(args.hours) if args.hours else None,
        drop_activities=tuple(a.strip() for a in (args.drop_activities or "").split(",") if a.strip()),
        columns=parse_columns(args.columns),
        value_attribute=args.value_attribute,
        dayfirst=args.dayfirst,
    )


@dataclass(frozen=True)
class WorkloadArgs:
    """The workload options of a command, as given (see `workload_options`)."""

    seed: int = 0
    xes: Path | None = None
    northwind_db: Path | None = None
    cache_dir: Path | None = None
    weeks: float | None = None
    volume_factor: float = 1.0
    compression: float = 20.0
    items: int = 5000
    rate: float = 30.0
    columns: str | None = None
    sla_file: Path | None = None
    sla: list[str] | None = None
    priority: list[str] | None = None
    value: list[str] | None = None
    default_sla_hours: float = 8.0
    touch_cap_hours: float = 1.0
    hours: str | None = None
    drop_activities: str | None = None
    value_attribute: str = "AMOUNT_REQ"
    dayfirst: bool | None = None


# The typer option of each WorkloadArgs field (its default comes from the dataclass).
_WORKLOAD_OPTIONS = {
    "seed": SeedOpt,
    "xes": XesOpt,
    "northwind_db": NorthwindOpt,
    "cache_dir": CacheOpt,
    "weeks": WeeksOpt,
    "volume_factor": VolumeOpt,
    "compression": CompressionOpt,
    "items": ItemsOpt,
    "rate": RateOpt,
    "columns": ColumnsOpt,
    "sla_file": SlaFileOpt,
    "sla": SlaOpt,
    "priority": PriorityOpt,
    "value": ValueOpt,
    "default_sla_hours": DefaultSlaOpt,
    "touch_cap_hours": TouchCapOpt,
    "hours": HoursOpt,
    "drop_activities": DropOpt,
    "value_attribute": ValueAttrOpt,
    "dayfirst": DayfirstOpt,
}


def workload_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a typer command every workload option (`--seed`, `--xes`, ... `--value-attribute`),
    declared once here; the command takes them as one keyword argument `workload_args`."""
    own = inspect.signature(command, eval_str=True)
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=field.default)
        for name, option in _WORKLOAD_OPTIONS.items()
        for field in [WorkloadArgs.__dataclass_fields__[name]]
    ]

    @functools.wraps(command)
    def with_options(**given: Any) -> None:
        workload_args = WorkloadArgs(**{name: given.pop(name) for name in _WORKLOAD_OPTIONS})
        command(**given, workload_args=workload_args)

    params = [p for p in own.parameters.values() if p.name != "workload_args"]
    with_options.__signature__ = own.replace(parameters=params + added)  # type: ignore[attr-defined]
    return with_options


def load(name: str, args: WorkloadArgs):
    """The workload the options name; typer.BadParameter with the reason when it cannot be built."""
    from handoff.analytics.simulation.workloads import load_workload

    if name not in WORKLOADS and not Path(name).is_file():
        raise typer.BadParameter(
            f"{name!r} is neither a named workload nor an event log file; {WorkloadHelp}", param_hint="--workload"
        )
    if args.xes is not None and not Path(args.xes).exists():
        raise typer.BadParameter(f"{args.xes} does not exist", param_hint="--xes")
    if args.sla_file is not None and not Path(args.sla_file).is_file():
        raise typer.BadParameter(f"{args.sla_file} does not exist", param_hint="--sla-file")
    try:
        workload = load_workload(
            name,
            xes=args.xes,
            northwind=args.northwind_db,
            cache_dir=args.cache_dir,
            seed=args.seed,
            weeks=args.weeks,
            volume_factor=args.volume_factor,
            compression=args.compression,
            synthetic_items=args.items,
            synthetic_rate=args.rate,
            log_options=log_options(args) if name not in ("northwind", "synthetic") else None,
        )
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--workload") from exc
    except EOFError:  # gzip's word for a file cut short
        raise typer.BadParameter(
            f"{name}: the file ends too soon (truncated or corrupt)", param_hint="--workload"
        ) from None
    except SyntaxError as exc:  # xml.etree's ParseError
        raise typer.BadParameter(f"{name}: not well-formed XML ({exc})", param_hint="--workload") from None
    if not workload.items:
        raise typer.BadParameter(
            f"{name}: no work items left to simulate (a --weeks or --volume-factor this small keeps none)",
            param_hint="--workload",
        )
    return workload


@contextmanager
def options_checked(param_hint: str | None = None) -> Iterator[None]:
    """A ValueError inside is the user's options at fault: typer.BadParameter with its message."""
    try:
        yield
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from exc


def workload_console(wl, json_out: bool, *headline: str) -> Console:
    """The console a workload command talks on (stderr with --json, so stdout stays JSON), after
    printing the workload's warnings to stderr always, so nobody misses a fallback, and the
    headline lines unless the answer is JSON."""
    err = Console(stderr=True)
    for w in wl.warnings:
        err.print(f"[yellow]warning:[/yellow] {shown(w)}", highlight=False)  # a log's text, never markup
    console = Console(stderr=json_out)
    if not json_out:
        for line in headline:
            console.print(line)
    return console


# --- simulate --------------------------------------------------------------------------------------


@workload_options
def simulate_command(
    workload: Annotated[str, typer.Option("--workload", help=WorkloadHelp)] = "bpic2012",
    policies: Annotated[str, typer.Option("--policies", help="Comma-separated: push,fifo,self.")] = "push,fifo,self",
    staff: Annotated[
        str | None, typer.Option("--staff", help="Team sizes: 2..8 or 3,5,8 (default: around the offered load).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Runs in parallel (processes).")] = 1,
    charts_dir: Annotated[
        Path | None, typer.Option("--charts-dir", help="Save PNG charts (on-time vs staff, backlog) here.")
    ] = None,
    draws: Annotated[
        int,
        typer.Option(
            "--draws",
            help="Team draws per policy and size (seeds --seed, --seed+1, ...): the table shows mean [min-max].",
        ),
    ] = 5,
    json_out: JsonOpt = False,
    *,
    workload_args: WorkloadArgs,
) -> None:
    """Replay a workload under each routing policy and team size, over several team draws;
    compare on-time %, lateness, utilisation, fairness and backlog."""
    from handoff.analytics.simulation.compare import auto_staff
    from handoff.analytics.simulation.compare import parse_policies
    from handoff.analytics.simulation.compare import parse_staff
    from handoff.analytics.simulation.compare import run_grid
    from handoff.analytics.simulation.compare import save_charts

    with options_checked("--policies"):
        names = parse_policies(policies)
    wl = load(workload, workload_args)
    with options_checked():
        sizes = parse_staff(staff) if staff else auto_staff(wl.offered_load())
        if draws < 1:
            raise ValueError("--draws must be at least 1")
    summary = wl.summary()
    console = workload_console(
        wl,
        json_out,
        f"[bold]{shown(wl.name)}[/bold]: {summary['items']} work items over {summary['weeks']} weeks, "
        f"{summary['touch_hours']} touch hours, opening hours {summary['opening_hours']}; "
        f"offered load R = {summary['offered_load']:.2f} reps busy while open "
        f"(peak week {summary['offered_load_peak_week']:.2f})",
        *(f"  - {shown(note)}" for note in wl.notes),
    )
    with console.status("simulating...") as status:
        done = [0]
        total = len(names) * len(sizes) * draws

        def progress(_o) -> None:
            done[0] += 1
            status.update(f"simulating... {done[0]}/{total} runs")

        outcomes = run_grid(wl, names, sizes, seed=workload_args.seed, jobs=jobs, on_done=progress, draws=draws)
    charts: list[Path] = []
    if charts_dir is not None:
        charts = save_charts(outcomes, charts_dir, wl.name)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "workload": summary,
                    "seed": workload_args.seed,
                    "draws": draws,
                    "cells": [c.as_dict() for c in cells(outcomes)],
                    "runs": [o.as_dict() for o in outcomes],
                    "charts": [str(p) for p in charts],
                },
                indent=2,
            )
        )
        return
    seeds = (
        f"seed {workload_args.seed}"
        if draws == 1
        else f"mean [min-max] over seeds {workload_args.seed}..{workload_args.seed + draws - 1}"
    )
    console.print(rich_table(outcomes, title=shown(f"{wl.name}: routing policies by team size ({seeds})")))
    for p in charts:
        console.print(f"chart: {p}")


def rich_table(outcomes: Sequence[RunOutcome], title: str = "") -> Table:
    """The grid as a terminal table, the best on-time % of each team size in bold."""
    table = Table(title=title or None)
    for header, _ in TABLE_COLUMNS:
        table.add_column(header, justify="left" if header == "policy" else "right")
    by_cell = cells(outcomes)
    best_by_staff: dict[int, float] = {}
    for c in by_cell:
        best_by_staff[c.staff] = max(best_by_staff.get(c.staff, -1.0), c.mean("on_time_pct"))
    previous_staff = None
    for c in by_cell:
        row = table_row(c)
        if previous_staff is not None and c.staff != previous_staff:
            table.add_section()
        previous_staff = c.staff
        if c.mean("on_time_pct") == best_by_staff[c.staff]:
            row[3] = f"[bold]{row[3]}[/bold]"
        table.add_row(*row)
    return table
