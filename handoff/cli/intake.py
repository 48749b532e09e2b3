"""`handoff orders` and `handoff quarantine`: the intake door for files, and what it refused.

    handoff orders submit orders.json more.csv     validate, store, announce (order.received)
    handoff orders import-northwind [PATH] [-n N]  Northwind's customers, products and orders
    handoff quarantine list [--limit 50]           refused input with the reason for each bad field
    handoff quarantine show ID [--save FILE]       one refused input, as it was received

`handoff quotes request` goes through the same door (`submit_files`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from handoff.cli.shown import shown
from handoff.core.intake import IntakeResult
from handoff.core.settings import settings

orders_app = typer.Typer(
    help="Receive orders: validate, store, announce; quarantine what is bad.", no_args_is_help=True
)
quarantine_app = typer.Typer(help="Input that was refused, kept with its reasons.", no_args_is_help=True)
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


def register(app: typer.Typer) -> None:
    """Mount `orders ...` and `quarantine ...` on the handoff CLI."""
    app.add_typer(orders_app, name="orders")
    app.add_typer(quarantine_app, name="quarantine")


__all__ = ["register", "show_intake", "submit_files"]
