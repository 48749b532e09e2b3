"""CLI for the people side of routing: the team roster, presence, and each rep's worklist.

    handoff workers list
    handoff workers add NAME --skills "order-approval:3;credit-review:2" [--capacity 3 ...]
    handoff workers update NAME [--capacity 4] [--skills ...] [--skill credit-review:3]
    handoff workers import team.csv
    handoff presence NAME available|away|offline
    handoff worklist --me NAME

The lead's handoff/cli.py mounts these with `register(app)`.

CSV columns for `workers import` (only `name` is required; empty cells take the defaults):
    name,role,capacity,timezone,shift_start,shift_end,work_days,skills
    Ana Lima,rep,3,Europe/Lisbon,09:00,17:00,01234,order-approval:3;credit-review:2
Rows with a bad field are reported field by field, kept in the quarantine with their reasons,
and not imported; the good rows are imported (or none with --strict). Exit code 1 if any
row was refused.
"""

from __future__ import annotations

import csv
import io
import shlex
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from pydantic import BaseModel
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.models import Presence
from handoff.core.models import Quarantine
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import utcnow
from handoff.core.routing.eligibility import on_shift
from handoff.core.routing.eligibility import parse_hhmm
from handoff.core.routing.eligibility import parse_work_days

CLI = "system:cli"
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _console() -> Console:
    # Made per command so output goes wherever stdout is at that moment (tests capture it).
    return Console()


# --- validating a worker record ----------------------------------------------------------------


def parse_skills(text: str) -> dict[str, int]:
    """'order-approval:3; credit-review:2' -> {'order-approval': 3, 'credit-review': 2}."""
    skills: dict[str, int] = {}
    for part in (p.strip() for p in text.replace(",", ";").split(";")):
        if not part:
            continue
        name, sep, level = part.rpartition(":")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{part!r}: write each skill as name:level, e.g. order-approval:3")
        if not level.strip().isdigit() or not 1 <= int(level) <= 5:
            raise ValueError(f"{part!r}: the level must be a whole number from 1 (learning) to 5 (expert)")
        if name in skills:
            raise ValueError(f"{name!r} is listed twice")
        skills[name] = int(level)
    return skills


def format_skills(skills: dict[str, int]) -> str:
    return "; ".join(f"{k}:{v}" for k, v in sorted(skills.items()))


def format_days(days: str) -> str:
    picked = sorted(parse_work_days(days))
    if picked and picked == list(range(picked[0], picked[-1] + 1)) and len(picked) > 2:
        return f"{DAY_NAMES[picked[0]]}-{DAY_NAMES[picked[-1]]}"
    return ",".join(DAY_NAMES[d] for d in picked)


class WorkerRecord(BaseModel):
    """One worker as typed by a person (CLI options or a CSV row), checked field by field."""

    name: str = Field(min_length=1, max_length=80)
    role: str = "rep"
    capacity: int = Field(3, ge=0, le=100, description="Open items at once.")
    timezone: str = "UTC"
    shift_start: str = "00:00"
    shift_end: str = "24:00"
    work_days: str = "0123456"
    skills: dict[str, int] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a name is required")
        return v.strip()

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v not in ("rep", "supervisor"):
            raise ValueError(f"{v!r} is not a role: use rep or supervisor")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"{v!r} is not a time zone name like Europe/Berlin or UTC") from None
        return v

    @field_validator("shift_start", "shift_end")
    @classmethod
    def _time(cls, v: str) -> str:
        parse_hhmm(v)
        return v.strip()

    @field_validator("work_days")
    @classmethod
    def _days(cls, v: str) -> str:
        if not parse_work_days(v):
            raise ValueError("at least one work day is needed, e.g. 01234 for Monday to Friday")
        return "".join(str(d) for d in sorted(parse_work_days(v)))

    @field_validator("skills", mode="before")
    @classmethod
    def _skills(cls, v: Any) -> Any:
        return parse_skills(v) if isinstance(v, str) else v


CSV_COLUMNS = tuple(WorkerRecord.model_fields)  # the header `workers import` reads: a record's fields
# What a record sets on a worker besides the name (its key) and the skills (rows of their own).
SETTINGS = tuple(f for f in WorkerRecord.model_fields if f not in ("name", "skills"))


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as [{'field', 'message'}], the shape the quarantine keeps."""
    out = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        out.append({"field": ".".join(str(p) for p in err["loc"]) or "row", "message": msg})
    return out


def upsert_worker(s: Session, record: WorkerRecord, actor: str) -> tuple[Worker, bool]:
    """Create or update a worker from a record; skills are replaced. Returns (worker, created)."""
    worker = s.scalar(select(Worker).where(Worker.name == record.name))
    created = worker is None
    if worker is None:
        worker = Worker(name=record.name)
        s.add(worker)
    for setting in SETTINGS:
        setattr(worker, setting, getattr(record, setting))
    if worker.skill_levels != record.skills:
        worker.skills = [WorkerSkill(skill=k, level=v) for k, v in record.skills.items()]
    s.flush()
    audit.record(
        s,
        actor,
        "worker",
        worker.id,
        "added" if created else "updated",
        None,
        None,
        **record.model_dump(exclude={"name"}),
    )
    return worker, created


def _record_of(worker: Worker) -> dict[str, Any]:
    """The worker as a record (what `workers update` starts from)."""
    return {
        "name": worker.name,
        **{setting: getattr(worker, setting) for setting in SETTINGS},
        "skills": worker.skill_levels,
    }


def _print_errors(console: Console, errors: list[dict[str, str]], title: str) -> None:
    table = Table("field", "problem", title=title, title_justify="left")
    for e in errors:
        table.add_row(e["field"], e["message"])
    console.print(table)


# --- commands ---------------------------------------------------------------------------------


def workers_list() -> None:
    """Show the team: skills, capacity in use, presence and whether they are on shift now."""
    from handoff.core.db import session

    console = _console()
    now = utcnow()
    table = Table("name", "role", "presence", "on shift", "open / capacity", "shift", "days", "skills", title="workers")
    with session() as s:
        for w in s.scalars(select(Worker).order_by(Worker.name)):
            table.add_row(
                w.name,
                w.role,
                str(w.presence),
                "yes" if on_shift(w, now) else "no",
                f"{w.open_items} / {w.capacity}",
                f"{w.shift_start}-{w.shift_end} {w.timezone}",
                format_days(w.work_days),
                format_skills(w.skill_levels),
            )
    console.print(table)


def workers_add(
    name: str = typer.Argument(..., help="The worker's name, as they will type it."),
    skills: str = typer.Option("", help='Skills with levels 1-5, e.g. "order-approval:3;credit-review:2".'),
    role: str = typer.Option("rep", help="rep or supervisor."),
    capacity: int = typer.Option(3, help="Items they may hold at once."),
    timezone: str = typer.Option("UTC", help="Their time zone, e.g. Europe/Berlin."),
    shift_start: str = typer.Option("00:00", help="Local shift start, HH:MM."),
    shift_end: str = typer.Option("24:00", help="Local shift end, HH:MM (24:00 = midnight)."),
    work_days: str = typer.Option("0123456", help="Work days, Monday=0, e.g. 01234."),
) -> None:
    """Add a worker (refused if the name is taken: use `workers update`)."""
    from handoff.core.db import session

    console = _console()
    try:
        record = WorkerRecord(
            name=name,
            role=role,
            capacity=capacity,
            timezone=timezone,
            shift_start=shift_start,
            shift_end=shift_end,
            work_days=work_days,
            skills=skills,
        )
    except ValidationError as bad:
        _print_errors(console, field_errors(bad), f"worker {name!r} not added")
        raise typer.Exit(2) from None
    with session() as s:
        if s.scalar(select(Worker.id).where(Worker.name == record.name)) is not None:
            console.print(f"[red]{record.name} already exists[/red]; use `handoff workers update`.")
            raise typer.Exit(2)
        pushed = _save_and_push_work(s, record)
    console.print(
        f"Added {record.name} ({record.role}, capacity {record.capacity}): "
        f"{format_skills(record.skills) or 'no skills'}{pushed}"
    )


def _save_and_push_work(s: Session, record: WorkerRecord) -> str:
    """Save the worker, then push them the work they may now take; what to add to the message."""
    from handoff.core.routing.router import route_for_worker

    worker, _ = upsert_worker(s, record, CLI)
    pulled = route_for_worker(s, worker.id)
    return f"; {len(pulled)} item(s) pushed to them" if pulled else ""


def workers_update(
    name: str = typer.Argument(..., help="The worker to change."),
    skills: str | None = typer.Option(None, help='Replace all skills, e.g. "order-approval:3;credit-review:2".'),
    skill: list[str] | None = typer.Option(
        None, help="Set one skill, e.g. credit-review:3 (repeatable; level 0 removes)."
    ),
    role: str | None = typer.Option(None, help="rep or supervisor."),
    capacity: int | None = typer.Option(None, help="Items they may hold at once."),
    timezone: str | None = typer.Option(None, help="Their time zone."),
    shift_start: str | None = typer.Option(None, help="Local shift start, HH:MM."),
    shift_end: str | None = typer.Option(None, help="Local shift end, HH:MM."),
    work_days: str | None = typer.Option(None, help="Work days, Monday=0."),
) -> None:
    """Change a worker; what is not given stays as it is. More room or skills pulls work at once."""
    from handoff.core.db import session

    console = _console()
    with session() as s:
        worker = s.scalar(select(Worker).where(Worker.name == name))
        if worker is None:
            console.print(f"[red]no worker named {name!r}[/red]")
            raise typer.Exit(1)
        data = _record_of(worker)
        changes = {
            "role": role,
            "capacity": capacity,
            "timezone": timezone,
            "shift_start": shift_start,
            "shift_end": shift_end,
            "work_days": work_days,
        }
        data.update({k: v for k, v in changes.items() if v is not None})
        errors: list[dict[str, str]] = []
        new_skills = dict(worker.skill_levels)
        if skills is not None:
            try:
                new_skills = parse_skills(skills)
            except ValueError as e:
                errors.append({"field": "skills", "message": str(e)})
        for one in skill or []:
            sname, sep, level = one.rpartition(":")
            if sep and sname.strip() and level.strip() == "0":
                new_skills.pop(sname.strip(), None)
                continue
            try:
                new_skills.update(parse_skills(one))
            except ValueError as e:
                errors.append({"field": "skill", "message": str(e)})
        data["skills"] = new_skills
        try:
            record = WorkerRecord(**data)
        except ValidationError as bad:
            errors += field_errors(bad)
        if errors:
            _print_errors(console, errors, f"worker {name!r} not changed")
            raise typer.Exit(2)
        pushed = _save_and_push_work(s, record)
    console.print(f"Updated {name}: {format_skills(record.skills) or 'no skills'}, capacity {record.capacity}{pushed}")


def workers_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a header row."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing if any row is bad."),
) -> None:
    """Add or update workers from a CSV (see `handoff workers import --help` for the columns)."""
    from handoff.core.db import session

    console = _console()
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if "name" not in header or unknown:
        problems = [] if "name" in header else ["the column 'name' is missing"]
        problems += [f"unknown column {h!r}" for h in unknown]
        console.print(f"[red]{path.name}: {'; '.join(problems)}[/red]; expected columns: {','.join(CSV_COLUMNS)}")
        raise typer.Exit(2)
    lines = text.splitlines()
    good: list[tuple[int, WorkerRecord]] = []
    bad: list[tuple[int, str, str, list[dict[str, str]]]] = []  # line, name, raw, errors
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        raw = lines[line - 1] if line - 1 < len(lines) else ""
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            bad.append(
                (
                    line,
                    values.get("name", ""),
                    raw,
                    [{"field": "row", "message": f"{len(row[None])} value(s) more than the header has columns"}],
                )
            )
            continue
        data = {k: v for k, v in values.items() if v != ""}
        try:
            record = WorkerRecord(**data)
        except ValidationError as e:
            bad.append((line, values.get("name", ""), raw, field_errors(e)))
            continue
        if record.name in seen:
            bad.append(
                (
                    line,
                    record.name,
                    raw,
                    [{"field": "name", "message": f"{record.name!r} is already on line {seen[record.name]}"}],
                )
            )
            continue
        seen[record.name] = line
        good.append((line, record))

    if bad:
        table = Table("line", "name", "field", "problem", title=f"{path.name}: rows refused", title_justify="left")
        for line, name, _, errors in bad:
            for i, e in enumerate(errors):
                table.add_row(str(line) if i == 0 else "", name if i == 0 else "", e["field"], e["message"])
        console.print(table)
    imported = not (strict and bad)
    added = updated = 0
    with session() as s:
        for line, name, raw, errors in bad:
            s.add(
                Quarantine(
                    source=f"workers-csv:{path.name}",
                    reference=name or None,
                    raw=raw,
                    reasons=[{"line": line, **e} for e in errors],
                )
            )
        if imported:
            for _, record in good:
                _, created = upsert_worker(s, record, CLI)
                added += created
                updated += not created
    if imported:
        console.print(
            f"{path.name}: {added} added, {updated} updated, {len(bad)} refused"
            + (" (kept in the quarantine: `handoff quarantine list`)" if bad else "")
        )
    else:
        console.print(f"[red]{path.name}: nothing imported (--strict) because {len(bad)} row(s) are bad[/red]")
    if bad:
        raise typer.Exit(1)


def presence(
    name: str = typer.Argument(..., help="Whose presence."),
    state: Presence = typer.Argument(..., help="available, away or offline."),
) -> None:
    """Set presence. offline hands back not-started work (re-routed at once); available pulls work.

    Signed in (`handoff login`), you set your own, or anyone's as a supervisor; the audit names
    you. Not signed in, the change is the operator's (`system:cli`), as for `workers` commands:
    it is never recorded as the rep's own doing."""
    from handoff.cli.identity import signed_in
    from handoff.core.db import session
    from handoff.core.identity import NotSignedIn
    from handoff.core.routing.router import UnknownWorker
    from handoff.core.routing.router import set_presence

    console = _console()
    try:
        person = signed_in()
    except NotSignedIn:
        actor = CLI
    else:
        if person.name != name and not person.is_supervisor:
            console.print(f"[red]Refused:[/red] you are signed in as {person.name}; only a supervisor sets {name}'s.")
            raise typer.Exit(2)
        actor = person.name
    try:
        with session() as s:
            change = set_presence(s, name, state, actor=actor)
    except UnknownWorker as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{name}: {change.before} -> {change.after}")
    for item_id in change.reclaimed:
        to = change.rerouted.get(item_id)
        console.print(f"  work item {item_id} handed back" + (f", now with {to}" if to else ", waiting for a free rep"))
    if change.pulled:
        console.print(f"  pushed to {name}: " + ", ".join(f"work item {i}" for i in change.pulled))


def _left(seconds: float) -> str:
    if seconds < 0:
        return f"[red]late {-seconds / 3600:.1f} h[/red]"
    return f"{seconds / 3600:.1f} h"


def worklist_cmd(
    me: str = typer.Option(..., "--me", help="Your name."),
) -> None:
    """Your work items, most urgent first, with the link to each waiting flow run."""
    from handoff.core.db import session
    from handoff.core.routing.router import UnknownWorker
    from handoff.core.routing.worklist import worklist

    console = _console()
    try:
        with session() as s:
            entries = worklist(s, me)
    except UnknownWorker as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    if not entries:
        console.print(f"{me}: nothing assigned to you right now.")
        return
    # A link is ~75 characters: beside all the columns it fits only a wide terminal. In a narrow
    # (or piped, 80-column) one the table keeps what a rep reads first, and the links go under it.
    wide = console.width >= 150
    columns = ["item", "work", "type", "order", "due (UTC)", "left", "urgency", "state", "flow run (Prefect UI)"]
    if not wide:
        columns = ["item", "work", "due (UTC)", "left", "state"]
    table = Table(*columns, title=f"worklist of {me}, most urgent first", title_justify="left")
    for column in table.columns:  # everything on one line but the title, which wraps
        column.no_wrap = column.header != "work"
    for e in entries:
        cells = {
            "item": str(e.item_id),
            "work": e.title + (" [bold red](escalated)[/bold red]" if e.escalated else ""),
            "type": e.work_type,
            "order": e.order_id or "",
            "due (UTC)": f"{e.due_at:%a %d %b %H:%M}",
            "left": _left(e.business_seconds_left),
            "urgency": f"{e.urgency:.2f}",
            "state": e.state,
            "flow run (Prefect UI)": e.link or "",
        }
        table.add_row(*(cells[c] for c in columns))
    console.print(table)
    if not wide:
        for e in entries:
            if e.link:
                console.print(f"item {e.item_id}: {e.link}", soft_wrap=True)
    console.print("[dim]left = business hours to the due time.[/dim]")
    console.print(f"[dim]Complete one with `handoff complete ITEM --as {shlex.quote(me)}`.[/dim]")


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


__all__ = ["WorkerRecord", "parse_skills", "register", "upsert_worker"]
