"""Signing in from the terminal, and the passwords reps sign in with.

    handoff workers set-password NAME [--password-stdin]     (asks twice when typed)
    handoff workers reset-password NAME [--password-stdin]   (ends their sessions, web and CLI)
    handoff login [--name NAME] [--password-stdin]
    handoff logout
    handoff whoami

`handoff login` keeps a session token in HANDOFF_HOME/cli-session (0600); `handoff complete`
completes steps as that person, and is refused without it.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from handoff.cli.shown import shown

CLI = "system:cli"
SESSION_FILE = "cli-session"
DEVICE_FILE = "cli-device"  # this home signed in as someone before (kept after `handoff logout`)


def _console() -> Console:
    return Console()


def session_path() -> Path:
    from handoff.core.settings import settings

    return settings.home / SESSION_FILE


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_password(from_stdin: bool, confirm: bool) -> str:
    if from_stdin:  # bytes that are not UTF-8 arrive as surrogates, which no hash can take
        return sys.stdin.readline().rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _set(name: str, password_stdin: bool, action: str) -> None:
    from handoff.core.db import session
    from handoff.core.identity import sign_in
    from handoff.core.routing.router import UnknownWorker

    console = _console()
    password = _read_password(password_stdin, confirm=True)
    try:
        with session() as s:
            sign_in.set_password(s, name, password, actor=CLI)
    except (UnknownWorker, ValueError) as bad:
        console.print(f"[red]{shown(bad)}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{shown(name)}: password {action}; any earlier sign-in of theirs has ended.")


def set_password(
    name: str = typer.Argument(..., help="The worker."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin (scripts)."),
) -> None:
    """Give a worker a password to sign in to the worklist and the CLI with."""
    _set(name, password_stdin, "set")


def reset_password(
    name: str = typer.Argument(..., help="The worker."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin."),
) -> None:
    """Replace a worker's password (forgotten, or exposed); their open sessions end."""
    _set(name, password_stdin, "reset")


def login(
    name: str | None = typer.Option(None, "--name", help="Your name as in the worker list (asked if missing)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Sign in: `handoff complete` then completes steps as you."""
    from handoff.core.db import session
    from handoff.core.identity import sessions
    from handoff.core.identity import sign_in

    console = _console()
    name = name or typer.prompt("Your name")
    password = _read_password(password_stdin, confirm=False)
    problem: Exception | None = None
    with session() as s:  # the attempt is recorded even when refused: it counts for the limit
        try:
            worker = sign_in.authenticate(
                s, name, password, client=f"cli:{getpass.getuser()}", device=_device_token(), purpose="cli"
            )
            token, device, who = (
                sessions.issue_session(worker, purpose="cli"),
                sign_in.issue_device(worker, "cli"),
                worker.name,
            )
        except sign_in.LoginRefused as refused:
            problem = refused
    if problem is not None:
        console.print(f"[red]Refused:[/red] {shown(problem)}")
        raise typer.Exit(2)
    write_private(session_path(), token)
    write_private(session_path().with_name(DEVICE_FILE), device)
    console.print(f"Signed in as {shown(who)} (until `handoff logout`, or for the session's hours).")


def _device_token() -> str | None:
    return _token_in(session_path().with_name(DEVICE_FILE))


def _token_in(path: Path) -> str | None:
    """The token a file of the CLI's holds; None if there is none or it is not readable (a
    damaged session file made every identity command, `logout` too, end in a traceback)."""
    try:
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):  # none yet, or damaged: nobody is signed in by it
        return None


def logout() -> None:
    """Sign out: the session ends on the server too, so a copy of its file signs nobody in."""
    from handoff.core.db import session
    from handoff.core.identity import sessions

    path = session_path()
    token = _token_in(path)
    if token:
        with session() as s:
            sessions.end_session(s, token, purpose="cli")
    path.unlink(missing_ok=True)
    _console().print("Signed out.")


def signed_in():
    """The person the CLI is signed in as; identity.NotSignedIn if nobody (or a stale session)."""
    from handoff.core.db import session
    from handoff.core.identity import sessions

    token = _token_in(session_path())
    with session() as s:
        return sessions.read_session(s, token, purpose="cli")


def whoami() -> None:
    """Who the CLI is signed in as."""
    from handoff.core.identity.sessions import NotSignedIn

    try:
        person = signed_in()
    except NotSignedIn as e:
        _console().print(f"{e}: run `handoff login`")
        raise typer.Exit(1) from None
    _console().print(f"{shown(person.name)} ({person.role})")


def register(app: typer.Typer) -> None:
    """Mount login/logout/whoami on the CLI, and the password commands under `workers`."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    workers = next((g.typer_instance for g in app.registered_groups if g.name == "workers"), None)
    if workers is not None:
        workers.command("set-password")(set_password)
        workers.command("reset-password")(reset_password)


__all__ = ["register", "signed_in", "write_private"]
