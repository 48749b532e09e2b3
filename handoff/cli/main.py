"""The `handoff` command: intake, the reps' steps, and the demo."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table

from handoff.cli.identity import register as register_identity
from handoff.cli.quotes import register as register_quotes
from handoff.cli.report import register as register_report
from handoff.cli.routing import register as register_routing
from handoff.cli.shown import shown
from handoff.cli.simulation import register as register_simulation
from handoff.core.intake import IntakeResult
from handoff.core.settings import settings

app = typer.Typer(help="handoff — the back office after the sale, as Prefect workflows.", no_args_is_help=True)
orders_app = typer.Typer(
    help="Receive orders: validate, store, announce; quarantine what is bad.", no_args_is_help=True
)
quarantine_app = typer.Typer(help="Input that was refused, kept with its reasons.", no_args_is_help=True)
app.add_typer(orders_app, name="orders")
app.add_typer(quarantine_app, name="quarantine")
register_routing(app)
register_report(app)
register_simulation(app)
register_identity(app)
register_quotes(app)
console = Console()


def show_intake(result: IntakeResult, noun: str = "order") -> None:
    """What happened to each order (or request). Every value shown came from a sender: escaped, so
    that `[/bold]` in a name is text, not markup, and a terminal escape is shown, not obeyed."""
    for rejected in result.quarantined:
        console.print(
            f"[red]quarantined[/red] {noun} {shown(rejected.reference or f'(no {noun} id)')} "
            f"(quarantine #{rejected.quarantine_id}):"
        )
        for reason in rejected.reasons:
            console.print(f"    [bold]{shown(reason['field'])}[/bold]: {shown(reason['message'])}")
    for order_id in result.duplicates:
        console.print(f"[yellow]duplicate[/yellow] {noun} {shown(order_id)}: already received, not stored again")
    console.print(
        f"submitted {result.submitted} · accepted {len(result.accepted)} · "
        f"duplicates {len(result.duplicates)} · quarantined {len(result.quarantined)}"
    )


def _announcer_if_server():  # noqa: ANN202
    """The outbox's announcer when a Prefect server listens; None stores the orders for later."""
    from handoff.runtime import outbox
    from handoff.runtime import prefect_server

    return outbox.announce_orders if prefect_server.is_up(settings.prefect_ui_url) else None


def submit_files(files: list[Path], read, submit, announce, noun: str) -> None:  # noqa: ANN001
    """The intake door for files, shared by orders and requests for quotation: each file read and
    submitted in turn, the tally shown; exits 2 on an unreadable file, 3 when intake stopped
    part-way (later files unread), 1 when anything was quarantined."""
    from handoff.core.intake import IntakeInterrupted
    from handoff.runtime import prefect_server

    total = IntakeResult()
    # Prefect's settings only matter for announcing (copying them costs a third of a second)
    with prefect_server.using(settings.prefect_ui_url) if announce else contextlib.nullcontext():
        for path in files:
            try:
                submissions = read(path)
            except OSError as exc:
                console.print(
                    f"[red]cannot read {shown(path)}:[/red] {shown(exc.strerror or exc)}; nothing taken from it"
                )
                raise typer.Exit(2) from None
            try:
                total.merge(submit(submissions, source=f"file:{path.name}", announce=announce))
            except IntakeInterrupted as stopped:
                total.merge(stopped.result)
                show_intake(total, noun=noun)
                console.print(f"[red]{shown(stopped)}[/red] (in {shown(path)}; later files were not read)")
                raise typer.Exit(3) from None
    show_intake(total, noun=noun)
    if not announce and total.accepted:
        console.print(
            f"[dim]No Prefect server at {settings.prefect_ui_url}: {noun}s are stored and will be "
            "announced when the back office runs.[/dim]"
        )
    if total.quarantined:
        raise typer.Exit(1)


@orders_app.command("submit")
def orders_submit(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="JSON or CSV files."),
) -> None:
    """Submit orders from JSON (one order, a list, or {"orders": [...]}) or CSV (a row per line)."""
    from handoff.core.intake import read_order_file
    from handoff.core.intake import submit_orders

    submit_files(files, read_order_file, submit_orders, _announcer_if_server(), noun="order")


@orders_app.command("import-northwind")
def orders_import_northwind(
    path: Path | None = typer.Argument(None, help="Northwind SQLite file (default: ../shared/data)."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Only the first N orders."),
) -> None:
    """Import Northwind's customers, products and orders (RequiredDate becomes the due date).
    A malformed source row is quarantined with its reasons; the rest is imported."""
    from handoff.core.northwind import import_northwind
    from handoff.runtime import prefect_server

    with prefect_server.using(settings.prefect_ui_url):
        try:
            result = import_northwind(path, limit=limit, announce=_announcer_if_server())
        except (FileNotFoundError, sqlite3.DatabaseError) as exc:
            console.print(f"[red]cannot read the Northwind database:[/red] {shown(exc)}")
            raise typer.Exit(2) from None
        show_intake(result)


@quarantine_app.command("list")
def quarantine_list(limit: int = typer.Option(50, help="How many, newest first.")) -> None:
    """Show refused input with the reason for each bad field."""
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import Quarantine

    table = Table("#", "when", "source", "order", "reasons")
    with session() as s:
        for q in s.scalars(select(Quarantine).order_by(Quarantine.id.desc()).limit(limit)):
            reasons = "\n".join(f"{shown(r.get('field', ''))}: {shown(r.get('message', ''))}" for r in q.reasons)
            table.add_row(
                str(q.id), f"{q.received_at:%Y-%m-%d %H:%M}", shown(q.source), shown(q.reference or ""), reasons
            )
    console.print(table)


@quarantine_app.command("show")
def quarantine_show(
    quarantine_id: int,
    save: Path | None = typer.Option(None, "--save", help="Write the input's exact bytes to this file."),
) -> None:
    """Show one refused input as it was received (unprintable characters as escapes like \\x1b)."""
    from handoff.core.db import session
    from handoff.core.intake.text import printable
    from handoff.core.models import Quarantine

    with session() as s:
        q = s.get(Quarantine, quarantine_id) if 0 < quarantine_id < 2**63 else None
        if q is None:
            console.print(f"[red]no quarantine entry #{quarantine_id}[/red]")
            raise typer.Exit(1)
        console.print_json(
            json.dumps(
                {
                    "id": q.id,
                    "source": printable(q.source),
                    "reference": printable(q.reference) if q.reference else None,
                    "received_at": str(q.received_at),
                    "reasons": q.reasons,
                }
            )
        )
        console.print(printable(q.raw, keep_lines=True), markup=False, highlight=False, emoji=False)
        if save is not None:
            try:
                save.write_bytes(q.raw_bytes if q.raw_bytes is not None else q.raw.encode("utf-8"))
            except OSError as cannot:
                console.print(f"[red]cannot write {shown(save)}: {shown(cannot.strerror or cannot)}[/red]")
                raise typer.Exit(1) from None
            console.print(f"[dim]{len(q.raw_bytes or b''):,} bytes as received written to {shown(save)}[/dim]")


@app.command("complete")
def complete(
    item_id: int = typer.Argument(..., help="The work item to complete (see `handoff worklist`)."),
    as_person: str | None = typer.Option(None, "--as", help="Must be who you signed in as (`handoff login`)."),
    values: list[str] = typer.Option([], "--set", help="A form field, as field=value (asked for if missing)."),
    decision: str | None = typer.Option(None, help="Shortcut for --set decision=…"),
    note: str | None = typer.Option(None, help="Shortcut for --set note=…"),
    override_reason: str | None = typer.Option(None, help="A supervisor completing someone else's item: why."),
) -> None:
    """Fill in a waiting step's form as the signed-in person; its flow run then carries on."""
    from rich.markdown import Markdown

    from handoff.cli.identity import signed_in
    from handoff.core.identity.sessions import NotSignedIn
    from handoff.core.routing.router import NotAllowed
    from handoff.runtime import prefect_server
    from handoff.runtime.steps import StepNotReady
    from handoff.runtime.steps import ValidationError
    from handoff.runtime.steps import complete_step
    from handoff.runtime.steps import step_form

    try:
        person = signed_in().name
    except NotSignedIn as why:
        console.print(f"[red]Refused:[/red] {why}: sign in first with `handoff login`.")
        raise typer.Exit(2) from None
    if as_person is not None and as_person != person:
        console.print(f"[red]Refused:[/red] you are signed in as {person}, not {as_person}.")
        raise typer.Exit(2)
    given = dict(v.split("=", 1) for v in values if "=" in v)
    given.update({k: v for k, v in {"decision": decision, "note": note}.items() if v is not None})
    try:
        with prefect_server.using(settings.prefect_ui_url):
            form, description = step_form(item_id)
            if description:
                console.print(Markdown(description))
            answer = ask_for_fields(form, given)
            recorded = complete_step(
                item_id, answer, by=person, override_reason=override_reason, via="cli", confirm_seconds=30.0
            )
    except NotAllowed as refused:
        console.print(f"[red]Refused:[/red] {refused}")
        raise typer.Exit(2) from None
    except ValidationError as bad:
        for err in bad.errors():
            console.print(f"[red]{'.'.join(map(str, err['loc'])) or 'form'}[/red]: {err['msg']}")
        raise typer.Exit(2) from None
    except StepNotReady as not_ready:
        console.print(f"[red]{not_ready}[/red]")
        raise typer.Exit(2) from None
    if recorded:
        console.print(f"Work item {item_id} completed by {person}; its flow run carries on.")
    else:  # not recorded within the wait: `handoff worklist` shows a refusal if one comes
        console.print(f"Work item {item_id} sent by {person}; its flow run records it shortly.")


def ask_for_fields(form, given: dict[str, str]) -> dict:  # noqa: ANN001
    """Each field of the form: from --set, else asked in the terminal by its type."""
    import typing

    answers: dict = {}
    for name, field in form.model_fields.items():
        if name in ("completed_by", "completion_proof"):  # handoff fills these in: who you are, signed
            continue
        if name in given:
            answers[name] = given[name]
            continue
        label = f"{name} ({field.description})" if field.description else name
        kind = field.annotation
        if typing.get_origin(kind) is typing.Literal:
            answers[name] = choose(label, [str(c) for c in typing.get_args(kind)])
        elif kind is bool:
            answers[name] = typer.confirm(label)
        elif kind is int:
            answers[name] = typer.prompt(label, type=int)
        else:
            answers[name] = typer.prompt(label, default="", show_default=False)
    return answers


@app.command("demo")
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


@app.command("up")
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

    from handoff.runtime.up import Feed
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


@app.command("worker")
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


@app.command("deploy")
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


def choose(label: str, choices: list[str]) -> str:
    while True:
        value = typer.prompt(f"{label} [{'/'.join(choices)}]").strip()
        if value in choices:
            return value
        console.print(f"[red]choose one of: {', '.join(choices)}[/red]")


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


if __name__ == "__main__":
    app()
