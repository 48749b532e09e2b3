"""CLI for the people side of routing: the team roster, presence, and each rep's worklist.

    handoff workers list
    handoff workers add NAME --skills "order-entry:3;credit:2" [--capacity 3 ...]
    handoff workers update NAME [--capacity 4] [--skills ...] [--skill credit:3]
    handoff workers import team.csv
    handoff presence NAME available|away|offline
    handoff worklist [--me NAME]

The lead's handoff/cli.py mounts these with `register(app)`.

CSV columns for `workers import` (only `name` is required; a new worker takes the defaults for
missing or empty cells, an existing one keeps what it has):
    name,role,capacity,timezone,shift_start,shift_end,work_days,skills
    Ana Lima,rep,3,Europe/Lisbon,09:00,17:00,01234,order-entry:3;credit:2
Rows with a bad field are reported field by field, kept in the quarantine with their reasons,
and not imported; the good rows are imported (or none with --strict). Exit code 1 if any
row was refused.
"""

from __future__ import annotations

import csv
import io
import re
import shlex
import unicodedata
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import typer
from pydantic import BaseModel
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handoff.cli.shown import shown
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
    """'order-entry:3; credit:2' -> {'order-entry': 3, 'credit': 2}."""
    skills: dict[str, int] = {}
    for part in (p.strip() for p in text.replace(",", ";").split(";")):
        if not part:
            continue
        name, sep, level = part.rpartition(":")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{part!r}: write each skill as name:level, e.g. order-entry:3")
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


# Files in the zone database that are not zones: "localtime" is whatever this machine is set to.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


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
        """A name as people read it: one spelling of its letters (NFC), single spaces, and no
        character nobody sees (controls, zero-width and direction marks): "Ana\u200bLima" or
        "Ana  Lima" beside "Ana Lima" printed as the same person twice."""
        hidden = sorted({f"U+{ord(c):04X}" for c in v if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")})
        if hidden:
            raise ValueError(f"a name cannot hold characters nobody sees ({', '.join(hidden[:5])})")
        name = " ".join(unicodedata.normalize("NFC", v).split())
        if not name:
            raise ValueError("a name is required")
        return name

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v not in ("rep", "supervisor"):
            raise ValueError(f"{v!r} is not a role: use rep or supervisor")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        if v not in available_timezones() or v in NOT_ZONES:  # IANA names: no file path or case variant
            raise ValueError(f"{v!r} is not a time zone name like Europe/Berlin or UTC")
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

    @model_validator(mode="after")
    def _some_hours(self) -> WorkerRecord:
        day = 24 * 60
        start, end = parse_hhmm(self.shift_start), parse_hhmm(self.shift_end)
        if start % day == end % day and (start, end) != (0, day):
            raise ValueError(
                f"a shift from {self.shift_start} to {self.shift_end} has no hours: the worker would never be on "
                "shift (00:00-24:00 is the whole day)"
            )
        return self

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


def same_person_key(name: str) -> str:
    """What two names share when a person would read them as one: case, compatibility forms
    (full-width letters) and accents' spelling aside."""
    return unicodedata.normalize("NFKC", name).casefold()


def names_by_person(s: Session) -> dict[str, str]:
    """Every worker's name under its `same_person_key`."""
    return {same_person_key(n): n for n in s.scalars(select(Worker.name))}


def lookalike(s: Session, name: str) -> str | None:
    """Another worker's name a person would read as `name` (not the same string), if any."""
    other = names_by_person(s).get(same_person_key(name))
    return other if other != name else None


def upsert_worker(s: Session, record: WorkerRecord, actor: str) -> tuple[Worker, bool]:
    """Create a worker from a record, or update one with the fields the record was given (a CSV
    row without a role or skills column keeps the worker's role and skills: an import of names
    and capacities made a supervisor a rep with no skills); given skills replace the old ones.
    Returns (worker, created)."""
    worker = s.scalar(select(Worker).where(Worker.name == record.name))
    created = worker is None
    if worker is None:
        worker = Worker(name=record.name)
        s.add(worker)
    given = set(WorkerRecord.model_fields) if created else record.model_fields_set
    for setting in SETTINGS:
        if setting in given:
            setattr(worker, setting, getattr(record, setting))
    if "skills" in given and worker.skill_levels != record.skills:
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
        **record.model_dump(include=given - {"name"}),
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
        table.add_row(shown(e["field"]), shown(e["message"]))
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
                shown(w.name),
                w.role,
                str(w.presence),
                "yes" if on_shift(w, now) else "no",
                f"{w.open_items} / {w.capacity}",
                shown(f"{w.shift_start}-{w.shift_end} {w.timezone}"),
                format_days(w.work_days),
                shown(format_skills(w.skill_levels)),
            )
    console.print(table)


def workers_add(
    name: str = typer.Argument(..., help="The worker's name, as they will type it."),
    skills: str = typer.Option("", help='Skills with levels 1-5, e.g. "order-entry:3;credit:2".'),
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
        _print_errors(console, field_errors(bad), f"worker {shown(repr(name))} not added")
        raise typer.Exit(2) from None
    try:
        with session() as s:
            if s.scalar(select(Worker.id).where(Worker.name == record.name)) is not None:
                console.print(f"[red]{shown(record.name)} already exists[/red]; use `handoff workers update`.")
                raise typer.Exit(2)
            if (other := lookalike(s, record.name)) is not None:
                console.print(
                    f"[red]{shown(record.name)} reads as {shown(other)}, who exists[/red]: one person, one name."
                )
                raise typer.Exit(2)
            pushed = _save_and_push_work(s, record)
    except IntegrityError:  # added by another command at this very moment: the database let one in
        console.print(f"[red]{shown(record.name)} already exists[/red] (just added); use `handoff workers update`.")
        raise typer.Exit(2) from None
    console.print(
        f"Added {shown(record.name)} ({record.role}, capacity {record.capacity}): "
        f"{shown(format_skills(record.skills)) or 'no skills'}{pushed}"
    )
    if warning := unknown_skills_warning(record.skills):
        console.print(warning)


def unknown_skills_warning(skills: Iterable[str]) -> str | None:
    """A warning for skills no registered work type asks for (a typo, or a work type's name
    written for its skill): the worker would never be pushed that work. Not refused: a skill
    may be recorded before its work type is."""
    from handoff.core.work_types import WORK_TYPES

    known = sorted({wt.skill for wt in WORK_TYPES.values()})
    unknown = sorted(set(skills) - set(known))
    if not unknown:
        return None
    return (
        f"[yellow]no work type asks for the skill(s) {shown(', '.join(unknown))}[/yellow]: nothing will be "
        f"pushed for them. The skills work asks for: {', '.join(known)}."
    )


def _save_and_push_work(s: Session, record: WorkerRecord) -> str:
    """Save the worker, then push them the work they may now take; what to add to the message."""
    from handoff.core.routing.router import route_for_worker

    worker, _ = upsert_worker(s, record, CLI)
    pulled = route_for_worker(s, worker.id)
    return f"; {len(pulled)} item(s) pushed to them" if pulled else ""


def workers_update(
    name: str = typer.Argument(..., help="The worker to change."),
    skills: str | None = typer.Option(None, help='Replace all skills, e.g. "order-entry:3;credit:2".'),
    skill: list[str] | None = typer.Option(None, help="Set one skill, e.g. credit:3 (repeatable; level 0 removes)."),
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
            console.print(f"[red]no worker named {shown(repr(name))}[/red]")
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
            _print_errors(console, errors, f"worker {shown(repr(name))} not changed")
            raise typer.Exit(2)
        pushed = _save_and_push_work(s, record)
    console.print(
        f"Updated {shown(name)}: {shown(format_skills(record.skills)) or 'no skills'}, capacity {record.capacity}{pushed}"
    )
    if warning := unknown_skills_warning(record.skills):
        console.print(warning)


def workers_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a header row."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing if any row is bad."),
) -> None:
    """Add or update workers from a CSV (see `handoff workers import --help` for the columns)."""
    from handoff.core.db import session

    console = _console()
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as bad_bytes:
        console.print(
            f"[red]{shown(path.name)}: not UTF-8 text (byte {bad_bytes.object[bad_bytes.start]:#04x} at "
            f"{bad_bytes.start:,})[/red]; save it as CSV UTF-8. Nothing imported."
        )
        raise typer.Exit(2) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    twice = sorted({h for h in header if header.count(h) > 1})
    if "name" not in header or unknown or twice:
        problems = [] if "name" in header else ["the column 'name' is missing"]
        problems += [f"unknown column {h!r}" for h in unknown]
        problems += [f"the column {h!r} appears twice" for h in twice]
        console.print(
            f"[red]{shown(path.name)}: {shown('; '.join(problems))}[/red]; expected columns: {','.join(CSV_COLUMNS)}"
        )
        raise typer.Exit(2)
    lines = re.split(r"\r\n|\r|\n", text)  # as the csv module counts them (not U+2028, as splitlines does)
    good: list[tuple[int, WorkerRecord]] = []
    bad: list[tuple[int, str, str, list[dict[str, str]]]] = []  # line, name, raw, errors
    seen: dict[str, tuple[int, str]] = {}  # same_person_key -> (line, name)
    with session() as s:
        existing = names_by_person(s)
    ended = reader.line_num
    for row in reader:
        line, first = reader.line_num, ended + 1
        ended = line
        raw = "\n".join(lines[first - 1 : line])  # the whole row as received, a quoted line break too
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
        key = same_person_key(record.name)
        if key in seen or existing.get(key, record.name) != record.name:
            message = (
                f"{record.name!r} is already on line {seen[key][0]}"
                + (f" (as {seen[key][1]!r})" if seen[key][1] != record.name else "")
                if key in seen
                else f"{record.name!r} reads as {existing[key]!r}, who exists: one person, one name"
            )
            bad.append((line, record.name, raw, [{"field": "name", "message": message}]))
            continue
        seen[key] = (line, record.name)
        good.append((line, record))

    if bad:
        table = Table(
            "line", "name", "field", "problem", title=f"{shown(path.name)}: rows refused", title_justify="left"
        )
        for line, name, _, errors in bad:
            for i, e in enumerate(errors):
                table.add_row(
                    str(line) if i == 0 else "", shown(name) if i == 0 else "", shown(e["field"]), shown(e["message"])
                )
        console.print(table)
    imported = not (strict and bad)
    for second_try in (False, True):
        added = updated = 0
        try:
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
            break
        except IntegrityError:
            # Another add or import created one of these names meanwhile: nothing of this one was
            # kept; once more, they are updates now.
            if second_try:
                console.print(
                    f"[red]{shown(path.name)}: workers changed under the import twice; nothing imported[/red]"
                )
                raise typer.Exit(2) from None
    if imported:
        console.print(
            f"{shown(path.name)}: {added} added, {updated} updated, {len(bad)} refused"
            + (" (kept in the quarantine: `handoff quarantine list`)" if bad else "")
        )
        if warning := unknown_skills_warning({skill for _, record in good for skill in record.skills}):
            console.print(warning)
    else:
        console.print(f"[red]{shown(path.name)}: nothing imported (--strict) because {len(bad)} row(s) are bad[/red]")
    if bad:
        raise typer.Exit(1)


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


__all__ = ["WorkerRecord", "parse_skills", "register", "upsert_worker"]
