"""CLI: `simulate` (compare routing policies by replaying a workload) and `staff` (how many people).

The project's CLI adds these with:

    from handoff.cli.simulation import register as register_simulation
    register_simulation(app)

Both commands print a rich table, or JSON with `--json` (nothing else on stdout then).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table

from handoff.analytics.simulation.compare import TABLE_COLUMNS, RunOutcome, table_rows

WORKLOADS = ("bpic2012", "northwind", "synthetic")


def register(app: typer.Typer) -> None:
    """Add the `simulate` and `staff` commands to `app`."""
    app.command("simulate")(simulate_command)
    app.command("staff")(staff_command)


# --- shared options ----------------------------------------------------------------------------

XesOpt = Annotated[Optional[Path], typer.Option("--xes", help="An XES event log (gzip or plain) of BPIC 2012's shape.")]
NorthwindOpt = Annotated[Optional[Path], typer.Option("--northwind-db", help="Northwind SQLite file.")]
CacheOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="Where parsed logs are cached (default ~/.cache/handoff).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for team draws, synthetic work and random choices.")]
WeeksOpt = Annotated[Optional[float], typer.Option("--weeks", help="Replay only the first N weeks of work.")]
VolumeOpt = Annotated[float, typer.Option("--volume-factor", help="Scale the arrivals (1.2 = 20 % more work).")]
CompressionOpt = Annotated[
    float, typer.Option("--compression", help="Northwind: business days of orders replayed per business day.")
]
ItemsOpt = Annotated[int, typer.Option("--items", help="Synthetic: number of work items.")]
RateOpt = Annotated[float, typer.Option("--rate", help="Synthetic: arrivals per open hour.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _workload(name: str, xes, northwind_db, cache_dir, seed, weeks, volume_factor, compression, items, rate):
    from handoff.analytics.simulation.workloads import load_workload

    if name not in WORKLOADS:
        raise typer.BadParameter(f"choose one of {', '.join(WORKLOADS)}", param_hint="--workload")
    if xes is not None and not Path(xes).exists():
        raise typer.BadParameter(f"{xes} does not exist", param_hint="--xes")
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
    )


# --- simulate --------------------------------------------------------------------------------------


def simulate_command(
    workload: Annotated[str, typer.Option("--workload", help="bpic2012, northwind or synthetic.")] = "bpic2012",
    policies: Annotated[str, typer.Option("--policies", help="Comma-separated: push,fifo,self.")] = "push,fifo,self",
    staff: Annotated[
        Optional[str], typer.Option("--staff", help="Team sizes: 2..8 or 3,5,8 (default: around the offered load).")
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
        Optional[Path], typer.Option("--charts-dir", help="Save PNG charts (on-time vs staff, backlog) here.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay a workload under each routing policy and team size; compare on-time %, lateness,
    utilisation, fairness and backlog."""
    from handoff.analytics.simulation.compare import auto_staff, parse_policies, parse_staff, run_grid, save_charts

    try:
        names = parse_policies(policies)
        wl = _workload(workload, xes, northwind_db, cache_dir, seed, weeks, volume_factor, compression, items, rate)
        sizes = parse_staff(staff) if staff else auto_staff(wl.offered_load())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console(stderr=json_out)
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


# --- staff ---------------------------------------------------------------------------------------------


def staff_command(
    arrivals_per_hour: Annotated[Optional[float], typer.Option("--arrivals-per-hour", help="Erlang: arrivals per hour.")] = None,
    aht_seconds: Annotated[Optional[float], typer.Option("--aht-seconds", help="Erlang: average handling time, s.")] = None,
    target_sl: Annotated[float, typer.Option("--target-sl", help="Erlang: share answered within target, e.g. 0.8.")] = 0.8,
    target_seconds: Annotated[float, typer.Option("--target-seconds", help="Erlang: the service-level threshold, s.")] = 20.0,
    max_occupancy: Annotated[Optional[float], typer.Option("--max-occupancy", help="Cap on occupancy, e.g. 0.85.")] = None,
    shrinkage: Annotated[float, typer.Option("--shrinkage", help="Share of paid time not available, e.g. 0.3.")] = 0.0,
    patience_seconds: Annotated[
        Optional[float], typer.Option("--patience-seconds", help="Mean patience: adds Erlang A (abandonment).")
    ] = None,
    workload: Annotated[
        Optional[str], typer.Option("--workload", help="Staff by simulation: bpic2012, northwind or synthetic.")
    ] = None,
    target_on_time: Annotated[float, typer.Option("--target-on-time", help="Simulation: on-time share, e.g. 0.95.")] = 0.95,
    policy: Annotated[str, typer.Option("--policy", help="Simulation: routing policy.")] = "push",
    max_staff: Annotated[Optional[int], typer.Option("--max-staff", help="Simulation: largest team to try.")] = None,
    seed: SeedOpt = 0,
    xes: XesOpt = None,
    northwind_db: NorthwindOpt = None,
    cache_dir: CacheOpt = None,
    weeks: WeeksOpt = None,
    volume_factor: VolumeOpt = 1.0,
    compression: CompressionOpt = 20.0,
    items: ItemsOpt = 5000,
    rate: RateOpt = 30.0,
    json_out: JsonOpt = False,
) -> None:
    """How many people: Erlang C/A for a service level (--arrivals-per-hour, --aht-seconds), or
    the smallest team meeting an on-time target in simulation (--workload)."""
    if workload is not None:
        _staff_by_simulation(
            workload, target_on_time, policy, max_staff, shrinkage, seed, xes, northwind_db, cache_dir, weeks,
            volume_factor, compression, items, rate, json_out,
        )
        return
    if arrivals_per_hour is None or aht_seconds is None:
        raise typer.BadParameter("give --arrivals-per-hour and --aht-seconds (Erlang), or --workload (simulation)")
    _staff_by_erlang(
        arrivals_per_hour, aht_seconds, target_sl, target_seconds, max_occupancy, shrinkage, patience_seconds, json_out
    )


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _staff_by_erlang(
    arrivals_per_hour: float,
    aht_seconds: float,
    target_sl: float,
    target_seconds: float,
    max_occupancy: float | None,
    shrinkage: float,
    patience_seconds: float | None,
    json_out: bool,
) -> None:
    from handoff.analytics import staffing

    try:
        c = staffing.agents_for_service_level(
            arrivals_per_hour, aht_seconds, target_sl, target_seconds, max_occupancy, shrinkage
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    n, load = c.agents_occupancy_capped, c.offered_load
    hw_beta = staffing.beta_for_wait_probability(c.p_wait) if 0 < c.p_wait < 1 else None
    out: dict = {"erlang_c": c.as_dict()}
    out["sqrt_staffing"] = {
        "offered_load": load,
        "agents": n,
        "beta_implied": c.sqrt_beta,
        "protective_capacity": c.protective_capacity,
        "halfin_whitt_beta_for_p_wait": hw_beta,
        "halfin_whitt_agents": staffing.sqrt_staffing(load, hw_beta) if hw_beta is not None else None,
    }
    a_needed = a_at_c = None
    if patience_seconds is not None:
        try:
            a_needed = staffing.agents_for_service_level_erlang_a(
                arrivals_per_hour, aht_seconds, patience_seconds, target_sl, target_seconds
            )
            a_at_c = staffing.erlang_a(n, arrivals_per_hour, aht_seconds, patience_seconds, target_seconds)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        out["erlang_a"] = {
            "patience_seconds": patience_seconds,
            "needed": a_needed.as_dict(),
            "at_erlang_c_team": a_at_c.as_dict(),
            "rostered_after_shrinkage": math.ceil(a_needed.n / (1 - shrinkage) - 1e-12),
        }
    if json_out:
        typer.echo(json.dumps(out, indent=2))
        return

    console = Console()
    t = Table(title=f"Staffing for {_pct(target_sl)} answered within {target_seconds:g} s (Erlang C)")
    t.add_column("")
    t.add_column("value", justify="right")
    t.add_row("offered load R", f"{load:.2f} Erlangs ({arrivals_per_hour:g}/h x {aht_seconds:g} s)")
    t.add_row("agents for the service level (raw)", str(c.agents_raw))
    cap = "no cap" if max_occupancy is None else f"occupancy <= {_pct(max_occupancy)}"
    t.add_row(f"after occupancy cap ({cap})", str(n))
    t.add_row(f"rostered after shrinkage {_pct(shrinkage)}", str(c.agents_rostered))
    t.add_row("P(wait)", _pct(c.p_wait))
    t.add_row("service level achieved", _pct(c.service_level))
    t.add_row("average speed of answer", f"{c.asa_seconds:.1f} s")
    t.add_row("occupancy", _pct(c.occupancy))
    t.add_section()
    t.add_row("square-root rule N = R + beta sqrt(R)", f"beta = {c.sqrt_beta:.2f}")
    t.add_row("protective capacity N - R", f"{c.protective_capacity:.2f} agents ({c.protective_capacity / load:.0%} of R)" if load else "-")
    if hw_beta is not None:
        t.add_row(
            "Halfin-Whitt: beta for this P(wait)",
            f"{hw_beta:.2f} -> N = {staffing.sqrt_staffing(load, hw_beta)}",
        )
    if a_needed is not None and a_at_c is not None:
        t.add_section()
        t.add_row(f"Erlang A (mean patience {patience_seconds:g} s): agents needed", str(a_needed.n))
        t.add_row("  rostered after shrinkage", str(out["erlang_a"]["rostered_after_shrinkage"]))
        t.add_row("  P(wait) / P(abandon)", f"{_pct(a_needed.p_wait)} / {_pct(a_needed.p_abandon)}")
        t.add_row("  service level (abandons are misses)", _pct(a_needed.service_level))
        t.add_row("  ASA / occupancy", f"{a_needed.asa_seconds:.1f} s / {_pct(a_needed.occupancy)}")
        t.add_row(
            f"  with the Erlang C team of {n}",
            f"P(abandon) {_pct(a_at_c.p_abandon)}, SL {_pct(a_at_c.service_level)}",
        )
    console.print(t)


def _staff_by_simulation(
    workload, target_on_time, policy, max_staff, shrinkage, seed, xes, northwind_db, cache_dir, weeks,
    volume_factor, compression, items, rate, json_out,
) -> None:
    from handoff.analytics.simulation.compare import parse_policies, smallest_team

    try:
        parse_policies(policy)
        wl = _workload(workload, xes, northwind_db, cache_dir, seed, weeks, volume_factor, compression, items, rate)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console(stderr=json_out)
    load = wl.offered_load()
    if not json_out:
        console.print(
            f"[bold]{wl.name}[/bold] at volume x{volume_factor:g}: {len(wl.items)} work items, offered load "
            f"R = {load:.2f} reps busy while open (peak week {max(wl.weekly_load()):.2f}; {wl.calendar.describe()}); "
            f"policy {policy}; "
            f"target {_pct(target_on_time)} on time"
        )
    with console.status("simulating team sizes...") as status:
        answer, trials = smallest_team(
            wl, policy, target_on_time, seed=seed, max_staff=max_staff,
            on_trial=lambda tr: status.update(f"{tr.staff} reps: {tr.on_time_pct:.1f} % on time"),
        )
    rostered = math.ceil(answer / (1 - shrinkage) - 1e-12) if answer is not None else None
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "workload": wl.summary(),
                    "policy": policy,
                    "target_on_time": target_on_time,
                    "volume_factor": volume_factor,
                    "answer": answer,
                    "rostered_after_shrinkage": rostered,
                    "shrinkage": shrinkage,
                    "trials": [tr.as_dict() for tr in trials],
                },
                indent=2,
            )
        )
        return
    t = Table(title=f"Smallest team for {_pct(target_on_time)} on time under {policy}")
    for col in ("staff", "load/rep", "protective capacity N-R", "beta", "on-time %", "p95 late h", "util %"):
        t.add_column(col, justify="right")
    for tr in trials:
        ok = tr.on_time_pct >= 100 * target_on_time - 1e-9
        t.add_row(
            str(tr.staff),
            f"{tr.offered_load / tr.staff:.2f}",
            f"{tr.protective_capacity:+.2f}",
            f"{tr.beta:+.2f}",
            f"[bold green]{tr.on_time_pct:.1f}[/bold green]" if ok else f"{tr.on_time_pct:.1f}",
            f"{tr.p95_lateness_h:.2f}",
            f"{100 * tr.utilisation:.0f}",
        )
    console.print(t)
    if answer is None:
        console.print(f"[red]No team up to {trials[-1].staff if trials else max_staff} reps meets the target.[/red]")
    else:
        extra = f"; rostered after {_pct(shrinkage)} shrinkage: {rostered}" if shrinkage else ""
        console.print(
            f"Answer: [bold]{answer} reps[/bold] (staffed seats over the opening hours) for {_pct(target_on_time)} "
            f"on time under {policy} at volume x{volume_factor:g}; protective capacity {answer - load:.2f} "
            f"above the offered load {load:.2f}{extra}."
        )


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
