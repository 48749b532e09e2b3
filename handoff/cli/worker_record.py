"""A worker as a person types one (the options of `handoff workers add` and `update`, a row of
`workers import`), checked field by field before anything is stored: a name as people read it and
not another's twin, a real time zone, a shift with hours, skills with levels; and saving one
(`upsert_worker`).
"""

from __future__ import annotations

import unicodedata
from typing import Any
from zoneinfo import available_timezones

from pydantic import BaseModel
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.clock import parse_hhmm
from handoff.core.clock import parse_work_days
from handoff.core.intake.text import clip
from handoff.core.intake.text import unprintable_characters
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NAME_CHARS = 80  # a worker's name, as stored (workers.name)
SKILL_CHARS = 60  # a skill's name (worker_skills.skill)


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
        if unprintable_characters(name) or len(name) > SKILL_CHARS:  # PostgreSQL refused them with a traceback
            raise ValueError(
                f"{clip(name)}: a skill's name is at most {SKILL_CHARS} printable characters, e.g. order-entry"
            )
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

    name: str = Field(min_length=1, max_length=NAME_CHARS)
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
        if len(name) > NAME_CHARS:  # NFC can lengthen a name: 80 × U+0958 is 160 characters
            raise ValueError(f"a name is at most {NAME_CHARS} characters once written in one spelling (NFC)")
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
        """Stored as HH:MM: "0009:00" was read as 09:00 and stored as typed, too long for
        PostgreSQL's column (a traceback)."""
        minutes = parse_hhmm(v)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

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


__all__ = ["WorkerRecord", "parse_skills", "upsert_worker"]
