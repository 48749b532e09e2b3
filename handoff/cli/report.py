"""`handoff report`: the work-in-progress review in the terminal.

    handoff report                    queues, on-time %, jobs likely to be late, problem cases, defect log
    handoff report --json             the same, as JSON for machines
    handoff report --chart PATH       also save the backlog / on-time chart (a .png file, or a directory)

The lead's handoff/cli.py mounts it with `register(app)`. The numbers come from
handoff.analytics.reports, the same functions the `wip-review` flow publishes as Prefect artifacts.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from handoff.analytics import reports
from handoff.cli.shown import shown

# A review looks at history and a few days ahead; far outside these, dates run off the calendar.
EARLIEST_REVIEW, LATEST_REVIEW = datetime(1971, 1, 1), datetime(9000, 1, 1)


def _console() -> Console:
    # Made per command so output goes wherever stdout is at that moment (tests capture it).
    return Console()


def _table(title: str, rows: list[dict[str, Any]], empty: str) -> Table | str:
    if not rows:
        return f"[bold]{title}[/bold]: [green]{empty}[/green]"
    table = Table(*rows[0].keys(), title=title, title_justify="left", title_style="bold")
    for row in rows:
        table.add_row(*("" if v is None else shown(v) for v in row.values()))
    return table


def _on_time_line(review: reports.WipReview) -> str:
    t = review.overall
    colour = "green" if (t.today_pct or 0) >= 90 else "yellow" if (t.today_pct or 0) >= 75 else "red"
    if t.today_pct is None:
        colour = "dim"
    return (
        f"On time today: [bold {colour}]{reports.fmt_pct(t.today_pct)}[/bold {colour}] "
        f"({t.today_on_time} of {t.today_completed}) · last {t.days} days: "
        f"[bold]{reports.fmt_pct(t.week_pct)}[/bold] ({t.week_on_time} of {t.week_completed}) · target 90 %"
    )


def report(
    as_json: bool = typer.Option(False, "--json", help="Print the review as JSON (for machines)."),
    chart: Path | None = typer.Option(
        None, "--chart", help="Save the backlog / on-time chart: a .png file, or a directory to put it in."
    ),
    now: datetime | None = typer.Option(
        None, "--now", help="Review as of this UTC time (replays and tests); default: now."
    ),
    days: int = typer.Option(reports.DEFAULT_CHART_DAYS, min=1, max=90, help="Days of history in the chart."),
    waiting_minutes: float = typer.Option(
        reports.DEFAULT_WAITING_MINUTES, min=1, help="An unassigned item waiting longer is a problem case."
    ),
    limit: int = typer.Option(25, min=1, help="Rows shown per long table (late jobs, problems, defects)."),
) -> None:
    """The work-in-progress review: queues, jobs likely to be late, problem cases, defect log, on-time %."""
    from handoff.core.db import session

    if now is not None and not EARLIEST_REVIEW <= now.replace(tzinfo=None) <= LATEST_REVIEW:
        raise typer.BadParameter(
            f"review a time between {EARLIEST_REVIEW:%Y} and {LATEST_REVIEW:%Y}", param_hint="--now"
        )
    if not waiting_minutes < 60 * 24 * 366:  # inf, or so large no item could ever wait that long
        raise typer.BadParameter("at most a year of minutes", param_hint="--waiting-minutes")
    if chart is not None and chart.exists() and not chart.is_dir() and chart.suffix.lower() != ".png":
        raise typer.BadParameter(f"{chart} exists and is not a .png file or a directory", param_hint="--chart")
    with session() as s:
        review = reports.build_review(s, now, waiting_minutes=waiting_minutes)
        hist = reports.history(s, review.now, days=days) if chart is not None else None
    try:
        chart_path = reports.save_chart(hist, chart, review.now) if hist is not None else None
    except OSError as cannot:
        raise typer.BadParameter(
            f"cannot save the chart there: {cannot.strerror or cannot}", param_hint="--chart"
        ) from None

    if as_json:
        data: dict[str, Any] = reports.to_jsonable(review)
        data["chart"] = str(chart_path) if chart_path else None
        typer.echo(json.dumps(data, indent=2))
        return

    console = _console()
    tables = reports.display_tables(review, limit=limit)
    console.print(f"[bold]Work-in-progress review[/bold] — {review.now:%Y-%m-%d %H:%M} UTC")
    console.print(_on_time_line(review))
    console.print(_table("On-time completion by work type", tables["on_time"][1:], "nothing completed lately"))
    console.print(_table("Queues", tables["queues"], "no work waiting"))
    console.print(
        _table(f"Jobs likely to be late ({len(review.late_jobs)}), most urgent first", tables["late_jobs"], "none")
    )
    console.print(_table(f"Problem cases ({len(review.problems)})", tables["problems"], "none"))
    console.print(_table(f"Defect log ({len(review.defects)})", tables["defects"], "no defects found"))
    console.print(_table("Quotations", tables["quotations"], "no requests for quotation"))
    console.print(_table("Quotes about to expire", tables["expiring_quotes"], "none"))
    longest = max(len(review.late_jobs), len(review.problems), len(review.defects))
    if longest > limit:
        console.print(f"[dim]Long tables show their first {limit} rows; use --limit or --json for all.[/dim]")
    if chart_path:
        console.print(f"Chart saved to {chart_path}")


def register(app: typer.Typer) -> None:
    """Mount `report` on the handoff CLI."""
    app.command("report")(report)


__all__ = ["register", "report"]
