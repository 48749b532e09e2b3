"""`handoff quotes`: requests for quotation in, customers' answers in, quotations listed.

handoff quotes request rfq.json more.csv      validate, store, announce (quote.requested)
handoff quotes answer R-1 --accept            the customer accepts: the quote becomes an order
handoff quotes answer R-1 --decline
handoff quotes list [--state sent]
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from handoff.core.settings import settings

quotes_app = typer.Typer(
    help="Requests for quotation: receive them, record the customer's answer, list them.", no_args_is_help=True
)
console = Console()


def _servers():  # noqa: ANN202
    """(announce requests, announce orders) when a Prefect server listens; else None, None (stored,
    announced by the outbox when the back office runs)."""
    from handoff.runtime import outbox
    from handoff.runtime import prefect_server

    if prefect_server.is_up(settings.prefect_ui_url):
        return outbox.announce_quote_requests, outbox.announce_orders
    return None, None


@quotes_app.command("request")
def quotes_request(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="JSON or CSV files."),
) -> None:
    """Submit requests for quotation: JSON (one, a list, or {"requests": [...]}) or CSV (a row per line)."""
    from handoff.cli.intake import submit_files
    from handoff.core.intake import read_quote_request_file
    from handoff.core.intake import submit_quote_requests

    submit_files(files, read_quote_request_file, submit_quote_requests, _servers()[0], noun="request")


@quotes_app.command("answer")
def quotes_answer(
    request_id: str = typer.Argument(..., help="The request's id (the quote's)."),
    accept: bool = typer.Option(False, "--accept", help="The customer accepts: the quote becomes an order."),
    decline: bool = typer.Option(False, "--decline", help="The customer declines."),
) -> None:
    """Record the customer's answer to a sent quote; an accepted quote becomes an order."""
    from handoff.cli.shown import shown
    from handoff.core.quotes import AnswerRefused
    from handoff.core.quotes import UnknownQuote
    from handoff.core.quotes import answer_quote
    from handoff.runtime import prefect_server

    if accept == decline:  # both given is a typing slip, not the last one's answer
        console.print("[red]say either --accept or --decline[/red]")
        raise typer.Exit(2)
    _, announce = _servers()
    try:
        with prefect_server.using(settings.prefect_ui_url) if announce else contextlib.nullcontext():
            answered = answer_quote(request_id, accept, by="cli", announce=announce)
    except UnknownQuote as unknown:
        console.print(f"[red]{shown(unknown)}[/red]")
        raise typer.Exit(1) from None
    except AnswerRefused as refused:
        console.print(f"[red]Refused:[/red] {shown(refused)}")
        raise typer.Exit(1) from None
    again = " (already recorded; nothing new)" if answered.again else ""
    if answered.order_id:
        console.print(f"quote {shown(request_id)} accepted{again}: order {shown(answered.order_id)}")
    else:
        console.print(f"quote {shown(request_id)} declined{again}")


@quotes_app.command("list")
def quotes_list(
    state: str | None = typer.Option(None, help="Only this state (requested, priced, sent, ...)."),
    limit: int = typer.Option(50, help="How many, newest first."),
) -> None:
    """Requests for quotation with their quote's state, total, validity and order."""
    from sqlalchemy import select

    from handoff.cli.shown import shown
    from handoff.core.db import session
    from handoff.core.models import QuoteRequest
    from handoff.core.models import QuoteState
    from handoff.core.quotes import current_quote

    states = [s.value for s in QuoteState if s != QuoteState.SUPERSEDED]
    if state is not None and state not in states:
        raise typer.BadParameter(f"{state!r} is not a state; one of {', '.join(states)}", param_hint="--state")
    table = Table("request", "customer", "state", "version", "total", "valid until", "order")
    with session() as s:
        query = select(QuoteRequest).order_by(QuoteRequest.received_at.desc()).limit(limit)
        if state:
            query = query.where(QuoteRequest.status == state)
        for r in s.scalars(query):
            q = current_quote(s, r.id)
            table.add_row(
                shown(r.id),
                shown(r.customer_id),
                r.status,
                str(q.version) if q else "",
                f"{q.total:,.2f}" if q else "",
                str(q.valid_until) if q else "",
                shown(r.order_id or ""),
            )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(quotes_app, name="quotes")
