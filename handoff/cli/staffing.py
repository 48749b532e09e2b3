"""CLI: `staff` - how many people: Erlang C / A for a service level, or by simulation for deadline work.

Simulation (`--workload`) searches for the smallest team over several team draws
(handoff.analytics.simulation.smallest) and reports the range and the protective capacity.
"""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from handoff.cli.shown import shown
from handoff.cli.simulation import JsonOpt
from handoff.cli.simulation import WorkloadArgs
from handoff.cli.simulation import WorkloadHelp
from handoff.cli.simulation import load
from handoff.cli.simulation import options_checked
from handoff.cli.simulation import workload_console
from handoff.cli.simulation import workload_options


@workload_options
def staff_command(
    arrivals_per_hour: Annotated[
        float | None, typer.Option("--arrivals-per-hour", help="Erlang: arrivals per hour.")
    ] = None,
    aht_seconds: Annotated[
        float | None, typer.Option("--aht-seconds", help="Erlang: average handling time, s.")
    ] = None,
    target_sl: Annotated[
        float, typer.Option("--target-sl", help="Erlang: share answered within target, e.g. 0.8.")
    ] = 0.8,
    target_seconds: Annotated[
        float, typer.Option("--target-seconds", help="Erlang: the service-level threshold, s.")
    ] = 20.0,
    max_occupancy: Annotated[float | None, typer.Option("--max-occupancy", help="Cap on occupancy, e.g. 0.85.")] = None,
    shrinkage: Annotated[float, typer.Option("--shrinkage", help="Share of paid time not available, e.g. 0.3.")] = 0.0,
    patience_seconds: Annotated[
        float | None, typer.Option("--patience-seconds", help="Mean patience: adds Erlang A (abandonment).")
    ] = None,
    workload: Annotated[str | None, typer.Option("--workload", help="Staff by simulation: " + WorkloadHelp)] = None,
    target_on_time: Annotated[
        float, typer.Option("--target-on-time", help="Simulation: on-time share, e.g. 0.95.")
    ] = 0.95,
    policy: Annotated[str, typer.Option("--policy", help="Simulation: routing policy.")] = "push",
    max_staff: Annotated[int | None, typer.Option("--max-staff", help="Simulation: largest team to try.")] = None,
    draws: Annotated[
        int,
        typer.Option(
            "--draws", help="Simulation: team draws (seeds) to search over; the answer meets the target with all."
        ),
    ] = 5,
    json_out: JsonOpt = False,
    *,
    workload_args: WorkloadArgs,
) -> None:
    """How many people: Erlang C/A for a service level (--arrivals-per-hour, --aht-seconds), or
    the smallest team meeting an on-time target in simulation (--workload)."""
    if workload is not None:
        wl = load(workload, workload_args)
        _staff_by_simulation(
            wl,
            target_on_time,
            policy,
            max_staff,
            draws,
            shrinkage,
            workload_args.seed,
            workload_args.volume_factor,
            json_out,
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

    with options_checked():
        c = staffing.agents_for_service_level(
            arrivals_per_hour, aht_seconds, target_sl, target_seconds, max_occupancy, shrinkage
        )
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
        with options_checked():
            a_needed = staffing.agents_for_service_level_erlang_a(
                arrivals_per_hour, aht_seconds, patience_seconds, target_sl, target_seconds
            )
            a_at_c = staffing.erlang_a(n, arrivals_per_hour, aht_seconds, patience_seconds, target_seconds)
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
    t.add_row(
        "protective capacity N - R",
        f"{c.protective_capacity:.2f} agents ({c.protective_capacity / load:.0%} of R)" if load else "-",
    )
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
    wl, target_on_time, policy, max_staff, draws, shrinkage, seed, volume_factor, json_out
) -> None:
    from handoff.analytics.simulation.compare import parse_policies
    from handoff.analytics.simulation.smallest import smallest_team_over_draws

    with options_checked():
        parse_policies(policy)
        if draws < 1:
            raise ValueError("--draws must be at least 1")
        if not 0 < target_on_time <= 1:
            raise ValueError(f"--target-on-time is a share: {target_on_time:g} is not in (0, 1] (95 % is 0.95)")
        if not 0 <= shrinkage < 1:
            raise ValueError("--shrinkage must be in [0, 1)")
        if max_staff is not None and max_staff < 1:
            raise ValueError("--max-staff must be at least 1")
    load_r = wl.offered_load()
    console = workload_console(
        wl,
        json_out,
        f"[bold]{shown(wl.name)}[/bold] at volume x{volume_factor:g}: {len(wl.items)} work items, offered load "
        f"R = {load_r:.2f} reps busy while open (peak week {max(wl.weekly_load()):.2f}; {wl.calendar.describe()}); "
        f"policy {policy}; target {_pct(target_on_time)} on time; {draws} team draws (seeds {seed}..{seed + draws - 1})",
    )
    with console.status("simulating team sizes...") as status:
        found = smallest_team_over_draws(
            wl,
            policy,
            target_on_time,
            seed=seed,
            draws=draws,
            max_staff=max_staff,
            on_trial=lambda tr: status.update(f"draw {tr.draw}: {tr.staff} reps, {tr.on_time_pct:.1f} % on time"),
        )
    answer = found.answer
    rostered = math.ceil(answer / (1 - shrinkage) - 1e-12) if answer is not None else None
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "workload": wl.summary(),
                    "policy": policy,
                    "target_on_time": target_on_time,
                    "volume_factor": volume_factor,
                    "draws": draws,
                    "seed": seed,
                    **found.as_dict(),
                    "rostered_after_shrinkage": rostered,
                    "shrinkage": shrinkage,
                },
                indent=2,
            )
        )
        return
    t = Table(title=f"Smallest team for {_pct(target_on_time)} on time under {policy}, {draws} team draws")
    for col in (
        "staff",
        "load/rep",
        "protective capacity N-R",
        "beta",
        "draws met",
        "on-time % min-max",
        "p95 late h max",
        "util %",
    ):
        t.add_column(col, justify="right")
    goal = 100 * target_on_time - 1e-9
    for n, trials in found.by_size():
        on = [tr.on_time_pct for tr in trials]
        met = sum(v >= goal for v in on)
        spread = f"{min(on):.1f}" if f"{min(on):.1f}" == f"{max(on):.1f}" else f"{min(on):.1f}-{max(on):.1f}"
        t.add_row(
            str(n),
            f"{load_r / n:.2f}",
            f"{n - load_r:+.2f}",
            f"{trials[0].beta:+.2f}",
            f"[bold green]{met}/{len(on)}[/bold green]" if met == len(on) else f"{met}/{len(on)}",
            spread,
            f"{max(tr.p95_lateness_h for tr in trials):.2f}",
            f"{100 * sum(tr.utilisation for tr in trials) / len(trials):.0f}",
        )
    console.print(t)
    per_draw = ", ".join(f"{d}: {'-' if n is None else n}" for d, n in found.by_draw.items())
    if answer is None:
        console.print(
            f"[red]Not every draw meets the target with up to {max(tr.staff for tr in found.trials)} reps[/red] (smallest team per draw: {per_draw})."
        )
        return
    extra = f"; rostered after {_pct(shrinkage)} shrinkage: {rostered}" if shrinkage else ""
    console.print(
        f"Answer: [bold]{answer} reps[/bold] (staffed seats over the opening hours) meet {_pct(target_on_time)} on time "
        f"under {policy} at volume x{volume_factor:g} with every team draw; the smallest team ranges "
        f"{found.low}-{answer} across draws (per draw: {per_draw}). Protective capacity N - R = {answer - load_r:+.2f} "
        f"seats over the offered load {load_r:.2f} (spare capacity {found.spare_capacity_pct():+.0f} % of seat time)"
        + (" - below the load: the team catches up after hours or after the last arrival" if answer < load_r else "")
        + f"{extra}."
    )
