"""`handoff workers`: the team roster, listed, added, changed and imported from a CSV.

    handoff workers list
    handoff workers add NAME --skills "order-entry:3;credit:2" [--capacity 3 ...]
    handoff workers update NAME [--capacity 4] [--skills ...] [--skill credit:3]
    handoff workers import team.csv

CSV columns for `workers import` (only `name` is required; a new worker takes the defaults for
missing or empty cells, an existing one keeps what it has):
    name,role,capacity,timezone,shift_start,shift_end,work_days,skills
    Ana Lima,rep,3,Europe/Lisbon,09:00,17:00,01234,order-entry:3;credit:2
Rows with a bad field are reported field by field, kept in the quarantine with their reasons,
and not imported; the good rows are imported (or none with --strict). Exit code 1 if any
row was refused.

A worker's record and its checks are handoff.cli.worker_record; handoff.cli.routing mounts these.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handoff.cli.shown import shown
from handoff.cli.worker_record import CSV_COLUMNS
from handoff.cli.worker_record import SETTINGS
from handoff.cli.worker_record import WorkerRecord
from handoff.cli.worker_record import field_errors
from handoff.cli.worker_record import format_days
from handoff.cli.worker_record import format_skills
from handoff.cli.worker_record import lookalike
from handoff.cli.worker_record import names_by_person
from handoff.cli.worker_record import parse_skills
from handoff.cli.worker_record import same_person_key
from handoff.cli.worker_record import upsert_worker
from handoff.core.clock import on_shift
from handoff.core.intake.text import clip
from handoff.core.intake.text import printable
from handoff.core.models import Quarantine
from handoff.core.models import Worker
from handoff.core.models import utcnow

CLI = "system:cli"


def _console() -> Console:
    # Made per command so output goes wherever stdout is at that moment (tests capture it).
    return Console()


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
    from handoff.core.db import take_turns

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
            # Two adds of one name at one moment: each checked, found nobody, and the later one
            # then found the earlier's row and updated it, answering "Added" twice (seen in a
            # suite run under load). The check and the insert now take turns with every other add.
            take_turns(s, "workers add")
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
    """Save the worker, hand back the work they no longer have the skills for, then push them
    the work they may now take; what to add to the message."""
    from handoff.core.routing.router import hand_back_work_beyond_skills
    from handoff.core.routing.router import route_for_worker

    worker, _ = upsert_worker(s, record, CLI)
    handed_back = hand_back_work_beyond_skills(s, worker.id)
    pulled = route_for_worker(s, worker.id)
    said = f"; {len(handed_back)} item(s) they no longer have the skills for handed back" if handed_back else ""
    return said + (f"; {len(pulled)} item(s) pushed to them" if pulled else "")


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
    good: list[tuple[int, WorkerRecord, str]] = []  # line, record, raw
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
                else _reads_as(record.name, existing[key])
            )
            bad.append((line, record.name, raw, [{"field": "name", "message": message}]))
            continue
        seen[key] = (line, record.name)
        good.append((line, record, raw))

    imported, added, updated, late = _write_import(console, path, good, bad, strict)
    if late:  # refused at the write: a look-alike was added after the file was read
        bad += late
        good = [g for g in good if g[0] not in {line for line, *_ in late}]
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
    if imported:
        console.print(
            f"{shown(path.name)}: {added} added, {updated} updated, {len(bad)} refused"
            + (" (kept in the quarantine: `handoff quarantine list`)" if bad else "")
        )
        if warning := unknown_skills_warning({skill for _, record, _ in good for skill in record.skills}):
            console.print(warning)
    else:
        console.print(f"[red]{shown(path.name)}: nothing imported (--strict) because {len(bad)} row(s) are bad[/red]")
    if bad:
        raise typer.Exit(1)


def _write_import(
    console: Console,
    path: Path,
    good: list[tuple[int, WorkerRecord, str]],
    bad: list[tuple[int, str, str, list[dict[str, str]]]],
    strict: bool,
) -> tuple[bool, int, int, list[tuple[int, str, str, list[dict[str, str]]]]]:
    """Write an import's good rows and quarantine its bad ones; (imported?, added, updated,
    the rows refused at the write).

    The rows were checked against the workers as they were when the file was read. The write
    takes its turn with every `workers add` and import and checks the names again: an add of
    a look-alike between the read and the write (ana lima added while the file's Ana Lima was
    checked) would otherwise have given one person two names."""
    from handoff.core.db import session
    from handoff.core.db import take_turns
    from handoff.core.routing.router import hand_back_work_beyond_skills

    for second_try in (False, True):
        added = updated = 0
        late: list[tuple[int, str, str, list[dict[str, str]]]] = []
        try:
            with session() as s:
                take_turns(s, "workers add")
                existing = names_by_person(s)
                for line, record, raw in good:
                    other = existing.get(same_person_key(record.name), record.name)
                    if other != record.name:
                        late.append(
                            (line, record.name, raw, [{"field": "name", "message": _reads_as(record.name, other)}])
                        )
                imported = not (strict and (bad or late))
                for line, name, raw, errors in bad + late:
                    s.add(  # kept as intake keeps refused input: the bytes, and a printable text
                        Quarantine(  # (a NUL in the row failed the whole import on PostgreSQL)
                            source=f"workers-csv:{printable(path.name)}",
                            reference=clip(name, 80) if name else None,
                            raw=printable(raw, keep_lines=True),
                            raw_bytes=raw.encode("utf-8", "surrogatepass"),
                            reasons=[{"line": line, **{k: printable(str(v)) for k, v in e.items()}} for e in errors],
                        )
                    )
                refused_now = {line for line, *_ in late}
                for line, record, _ in good if imported else []:
                    if line not in refused_now:
                        worker, created = upsert_worker(s, record, CLI)
                        added += created
                        updated += not created
                        if not created:  # skills may have been taken away: their work goes to others
                            hand_back_work_beyond_skills(s, worker.id)
            return imported, added, updated, late
        except IntegrityError:
            # Another add or import created one of these names meanwhile: nothing of this one was
            # kept; once more, they are updates now.
            if second_try:
                console.print(
                    f"[red]{shown(path.name)}: workers changed under the import twice; nothing imported[/red]"
                )
                raise typer.Exit(2) from None
    raise AssertionError("not reached")


def _reads_as(name: str, other: str) -> str:
    return f"{name!r} reads as {other!r}, who exists: one person, one name"


__all__ = ["CLI", "workers_add", "workers_import", "workers_list", "workers_update"]
