"""CLI for the people side of routing: the team roster, presence, and each rep's worklist.

    handoff workers list
    handoff workers add NAME --skills "order-entry:3;credit:2" [--capacity 3 ...]
    handoff workers update NAME [--capacity 4] [--skills ...] [--skill credit:3]
    handoff workers import team.csv
    handoff presence NAME available|away|offline
    handoff worklist [--me NAME]

handoff/cli/main.py mounts these with `register(app)`.

The `workers` commands are handoff.cli.workers (a worker's record and its checks,
handoff.cli.worker_record); `presence` and `worklist` are here.
"""

from __future__ import annotations

import shlex
from datetime import timedelta

import typer
from rich.console import Console
from rich.table import Table

from handoff.cli.shown import shown
from handoff.cli.workers import CLI
from handoff.cli.workers import workers_add
from handoff.cli.workers import workers_import
from handoff.cli.workers import workers_list
from handoff.cli.workers import workers_update
from handoff.core.models import Presence


def _console() -> Console:
    # Made per command so output goes wherever stdout is at that moment (tests capture it).
    return Console()


def _whose(console: Console, name: str | None, verb: str) -> tuple[str, str]:
    """(whose presence or worklist a command is about, who acts). Signed in (`handoff login`):
    your own by default, anyone's only as a supervisor, and the audit names you. Not signed in:
    the named person's, as the operator (`system:cli`), as for `workers` commands: a change is
    then never recorded as the rep's own doing."""
    from handoff.cli.identity import signed_in
    from handoff.core.identity.sessions import NotSignedIn

    try:
        person = signed_in()
    except NotSignedIn:
        if name is None:
            console.print("[red]Whose?[/red] Give the name, or sign in with `handoff login`.")
            raise typer.Exit(2) from None
        return name, CLI
    name = person.name if name is None else name
    if name != person.name and not person.is_supervisor:
        console.print(
            f"[red]Refused:[/red] you are signed in as {shown(person.name)}; only a supervisor {verb} {shown(name)}'s."
        )
        raise typer.Exit(2)
    return name, person.name


def presence(
    name: str = typer.Argument(..., help="Whose presence."),
    state: Presence = typer.Argument(..., help="available, away or offline."),
) -> None:
    """Set presence. offline hands back not-started work (re-routed at once); available pulls work.

    Signed in (`handoff login`), you set your own, or anyone's as a supervisor; the audit names
    you. Not signed in, the change is the operator's (`system:cli`), as for `workers` commands:
    it is never recorded as the rep's own doing."""
    from handoff.core.db import session
    from handoff.core.routing.router import UnknownWorker
    from handoff.core.routing.router import set_presence

    console = _console()
    name, actor = _whose(console, name, "sets")
    try:
        with session() as s:
            change = set_presence(s, name, state, actor=actor)
    except UnknownWorker as e:
        console.print(f"[red]{shown(e)}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{shown(name)}: {change.before} -> {change.after}")
    for item_id in change.reclaimed:
        to = change.rerouted.get(item_id)
        console.print(
            f"  work item {item_id} handed back" + (f", now with {shown(to)}" if to else ", waiting for a free rep")
        )
    if change.pulled:
        console.print(f"  pushed to {shown(name)}: " + ", ".join(f"work item {i}" for i in change.pulled))


def _left(seconds: float) -> str:
    if seconds < 0:
        return f"[red]late {-seconds / 3600:.1f} h[/red]"
    return f"{seconds / 3600:.1f} h"


def worklist_cmd(
    me: str | None = typer.Option(None, "--me", help="Whose (default: who you signed in as)."),
) -> None:
    """Your work items, most urgent first, with the link to each waiting flow run. Signed in,
    another rep's only as a supervisor (as in the web worklist)."""
    from handoff.core.db import session
    from handoff.core.models import utcnow
    from handoff.core.routing.router import UnknownWorker
    from handoff.core.routing.worklist import worklist
    from handoff.runtime.steps import answers_not_used

    console = _console()
    me, _ = _whose(console, me, "reads")
    try:
        with session() as s:
            entries = worklist(s, me)
            not_used = answers_not_used(s, me, utcnow() - timedelta(hours=24))
    except UnknownWorker as e:
        console.print(f"[red]{shown(e)}[/red]")
        raise typer.Exit(1) from None
    for n in not_used:  # told "sent", refused by the run afterwards
        console.print(
            f"[red]Your answer to work item {n.item_id} was not used[/red] ({n.at:%Y-%m-%d %H:%M} UTC): {shown(n.reason)}"
        )
    if not entries:
        console.print(f"{shown(me)}: nothing assigned to you right now.")
        return
    # A link is ~75 characters: beside all the columns it fits only a wide terminal. In a narrow
    # (or piped, 80-column) one the table keeps what a rep reads first, and the links go under it.
    wide = console.width >= 150
    columns = ["item", "work", "type", "order", "due (UTC)", "left", "urgency", "state", "flow run (Prefect UI)"]
    if not wide:
        columns = ["item", "work", "due (UTC)", "left", "state"]
    table = Table(*columns, title=f"worklist of {shown(me)}, most urgent first", title_justify="left")
    for column in table.columns:  # everything on one line but the title, which wraps
        column.no_wrap = column.header != "work"
    for e in entries:
        cells = {
            "item": str(e.item_id),
            "work": shown(e.title) + (" [bold red](escalated)[/bold red]" if e.escalated else ""),
            "type": shown(e.work_type),
            "order": shown(e.order_id or ""),
            "due (UTC)": f"{e.due_at:%a %d %b %H:%M}",
            "left": _left(e.seconds_left),
            "urgency": f"{e.urgency:.2f}",
            "state": e.state,
            "flow run (Prefect UI)": shown(e.link or ""),
        }
        table.add_row(*(cells[c] for c in columns))
    console.print(table)
    if not wide:
        for e in entries:
            if e.link:
                console.print(f"item {e.item_id}: {shown(e.link)}", soft_wrap=True)
    console.print("[dim]left = business hours to the due time; late = the time since it fell due.[/dim]")
    console.print(f"[dim]Complete one with `handoff complete ITEM --as {shown(shlex.quote(me))}`.[/dim]")


def register(app: typer.Typer) -> None:
    """Mount `workers ...`, `presence` and `worklist` on the handoff CLI."""
    workers_app = typer.Typer(help="The people who do the work: list, add, update, import.", no_args_is_help=True)
    workers_app.command("list")(workers_list)
    workers_app.command("add")(workers_add)
    workers_app.command("update")(workers_update)
    workers_app.command("import")(workers_import)
    app.add_typer(workers_app, name="workers")
    app.command("presence")(presence)
    app.command("worklist")(worklist_cmd)


__all__ = ["register"]
