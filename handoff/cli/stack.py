"""`handoff demo`, `handoff up`, `handoff worker` and `handoff deploy`: the back office run as a
whole, on this machine (the embedded stack, or a work pool's workers) or registered with a work
pool for workers on other machines. The commands read their options; handoff.runtime does the work.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table

from handoff.cli.shown import shown
from handoff.core.settings import settings

console = Console()


def demo(
    orders: int | None = typer.Option(None, "--orders", "-n", help="Only the first N Northwind orders."),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Stand-in reps answer the human steps."),
    concurrency: int = typer.Option(8, help="Flow runs at once."),
    keep_server: bool = typer.Option(False, "--keep-server", help="Leave the Prefect server running afterwards."),
    fresh: bool = typer.Option(True, "--fresh/--continue", help="Start from an empty demo database."),
) -> None:
    """Run Northwind's orders through the whole back office on the embedded stack; print a summary."""
    from handoff.runtime import prefect_server
    from handoff.runtime.demo import mean
    from handoff.runtime.demo import run_demo
    from handoff.runtime.demo import with_local_server

    if not auto_approve:
        console.print(
            "Without --auto-approve, human steps wait for you: give a rep a password "
            "(`handoff workers set-password NAME`), then `handoff login` and `handoff complete ITEM` "
            "(the Prefect UI's Resume dialog is refused: it cannot prove who answers)."
        )
    progress = Progress(
        TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    bars: dict[str, int] = {}

    def on_progress(kind: str, label: str, n: int) -> None:
        if kind == "start":
            bars[label] = progress.add_task(label, total=n)
        else:
            progress.advance(bars[label], n)

    quiet_prefect_console()
    with progress:
        summary, proc = with_local_server(run_demo, orders, auto_approve, concurrency, fresh, on_progress)
    if keep_server or proc is None:
        console.print(f"Prefect UI: {settings.prefect_ui_url}")
    if not keep_server:
        prefect_server.flush_and_stop(proc)

    i, approvals = summary.intake, summary.approvals
    counts = Table("", "count", title="handoff demo", show_header=False)
    for name, value in [
        ("submitted", i.submitted),
        ("accepted", len(i.accepted)),
        ("duplicates", len(i.duplicates)),
        ("quarantined", len(i.quarantined)),
        ("approvals asked", approvals.asked),
        ("approved", approvals.outcomes.get("approve", 0)),
        ("rejected", approvals.outcomes.get("reject", 0)),
        *[(f"orders {status}", n) for status, n in sorted(summary.orders_by_status.items())],
        *[(f"handoff meetings {status}", n) for status, n in sorted(summary.meetings.items())],
        ("failed runs", summary.runs_failed),
        ("seconds", f"{summary.seconds:.1f}"),
    ]:
        counts.add_row(name, str(value))
    console.print(counts)

    q, answers = summary.quotations, ("accepted", "declined", "expired")
    quotes = Table("", "count", title="quotations (requests for quotation first)", show_header=False)
    for name, value in [
        ("requests", q.requests.submitted),
        ("requests accepted by intake", len(q.requests.accepted)),
        ("requests quarantined", len(q.requests.quarantined)),
        ("quotes sent", q.sent),
        # the customer's three answers always, any other end state as it occurs
        *[(f"quotes {state}", q.by_state.get(state, 0)) for state in answers],
        *[(f"quotes {state}", n) for state, n in sorted(q.by_state.items()) if state not in answers],
        ("orders from accepted quotes", len(q.orders)),
        ("mean s request → quote sent", f"{mean(q.turnaround_seconds):.1f}"),
        ("max s request → quote sent", f"{max(q.turnaround_seconds, default=0.0):.1f}"),
    ]:
        quotes.add_row(name, str(value))
    console.print(quotes)

    steps = Table("work type", "asked", "completed", "outcomes", "mean s to complete", title="human steps")
    for work_type, f in sorted(summary.human_steps.items()):
        outcomes = ", ".join(f"{k} {v}" for k, v in f.outcomes.most_common())
        steps.add_row(work_type, str(f.asked), str(f.completed), outcomes, f"{mean(f.seconds):.1f}")
    console.print(steps)

    stages = Table("stage reached", "orders", "mean s from the stage before", title="pipeline stages")
    for stage, values in summary.stage_seconds.items():
        stages.add_row(stage, str(len(values)), f"{mean(values):.1f}")
    console.print(stages)

    effects = Table("side effect", "count", title="other systems (sandbox ledger)")
    for name, n in sorted(summary.side_effects.items()):
        effects.add_row(name, str(n))
    console.print(effects)
    for failure in summary.failures[:10]:
        console.print(f"[red]{failure}[/red]")
    if summary.runs_failed:
        raise typer.Exit(1)


def up(
    feed: str | None = typer.Option(None, help="Feed orders as events: 'northwind'."),
    rate: str = typer.Option("6/min", help="How fast the feed submits orders, e.g. 6/min."),
    limit: int | None = typer.Option(None, help="Stop the feed after N orders."),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Run the flows on N workers of a work pool (0: one runner in this process)."
    ),
    postgres: bool = typer.Option(
        False, "--postgres", help="Both databases on a throwaway local PostgreSQL cluster (Debian's postgresql)."
    ),
    prefect_database_url: str | None = typer.Option(
        None,
        envvar="PREFECT_SERVER_DATABASE_CONNECTION_URL",
        help="Prefect server's database (postgresql+asyncpg://…).",
    ),
    pool: str = typer.Option("back-office", help="The work pool's name (with --workers)."),
    lock_ui: bool | None = typer.Option(
        None, "--lock-ui/--open-ui", help="Protect the Prefect UI and API with basic auth (default: HANDOFF_LOCK_UI)."
    ),
) -> None:
    """Run the back office: Prefect server and UI, sandbox systems, HTTP intake, the reps' worklist, every deployment."""
    from sqlalchemy.exc import SQLAlchemyError

    from handoff.runtime.pipeline_starts import Feed
    from handoff.runtime.up import run_up
    from handoff.runtime.worker_stack import StackSpec
    from handoff.runtime.worker_stack import run_stack

    feed_spec = None
    if feed:
        try:
            per_minute = float(rate.removesuffix("/min"))
        except ValueError:
            console.print(f"[red]--rate: expected a number of orders per minute like 6/min, got {rate!r}[/red]")
            raise typer.Exit(2) from None
        if per_minute <= 0:
            console.print("[red]--rate: must be more than 0/min[/red]")
            raise typer.Exit(2)
        feed_spec = Feed(feed, per_minute, limit)
    say = lambda text: console.print(f"[bold cyan]handoff[/bold cyan] {text}")  # noqa: E731
    if workers or postgres or prefect_database_url:
        if lock_ui:
            console.print(
                "[red]--lock-ui: not available with the worker stack yet (set PREFECT_SERVER_API_AUTH_STRING "
                "on the server and PREFECT_API_AUTH_STRING on every worker)[/red]"
            )
            raise typer.Exit(2)
    try:
        if workers or postgres or prefect_database_url:
            run_stack(
                StackSpec(workers, postgres, prefect_database_url, pool, warm=settings.warm_start), feed_spec, say
            )
        else:
            run_up(feed_spec, say=say, lock_ui=lock_ui)
    except (OSError, RuntimeError, SQLAlchemyError) as cannot:  # what is started is stopped by then
        console.print(f"[red]handoff up stopped:[/red] {shown(cannot)}")
        raise typer.Exit(1) from None


def worker(
    pool: str = typer.Option(..., "--pool", help="The work pool to take flow runs from."),
    name: str | None = typer.Option(None, help="The worker's name (default: made up by Prefect)."),
    limit: int | None = typer.Option(None, min=1, help="Flow runs at once (default HANDOFF_RUNNER_PROCESS_LIMIT)."),
    warm: bool = typer.Option(
        settings.warm_start,
        "--warm/--cold",
        help="Fork runs from a warm process, or a fresh interpreter each (HANDOFF_WARM_START).",
    ),
) -> None:
    """Run flow runs of a work pool on this machine (PREFECT_API_URL names the server)."""
    from handoff.runtime.worker_stack import run_worker

    run_worker(pool, name, limit, warm, say=lambda text: console.print(f"[bold cyan]handoff[/bold cyan] {text}"))


def deploy(
    pool: str = typer.Option(..., "--pool", help="The Prefect work pool whose workers run the flows."),
    source: str | None = typer.Option(
        None, help="Where workers get the code (git URL or path); default: this checkout."
    ),
) -> None:
    """Register every deployment with a work pool, for workers on other machines."""
    from deployments import deploy_all

    for deployment_id in deploy_all(pool, source):
        console.print(f"deployment {deployment_id}")


def quiet_prefect_console() -> None:
    """Prefect's INFO lines still reach the server (and the UI); only the terminal is spared."""
    import logging

    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()  # Prefect configures logging lazily; do it now, then turn the terminal down
    for logger in [
        logging.root,
        *(l for l in logging.root.manager.loggerDict.values() if isinstance(l, logging.Logger)),
    ]:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


def register(app: typer.Typer) -> None:
    """Mount `demo`, `up`, `worker` and `deploy` on the handoff CLI."""
    app.command("demo")(demo)
    app.command("up")(up)
    app.command("worker")(worker)
    app.command("deploy")(deploy)


__all__ = ["register"]
