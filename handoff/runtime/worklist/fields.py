"""A step's pydantic form as a web form: one field view per model field, and back again.

Choices (Literal) become selects, booleans switches, numbers number inputs, long texts text
areas; required fields are marked. `completed_by` and the proof are not fields a rep types:
handoff fills them with the signed-in person and its signature. The model's own validation
messages are put next to the field they name (a model-level check names it as "field: why").
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError

NOT_TYPED = ("completed_by", "completion_proof")  # who you are, signed: never typed
LONG_TEXT = 200  # a str field allowing more than this is a text area


@dataclass
class FieldView:
    name: str
    label: str
    kind: str  # select | switch | number | textarea | text
    required: bool
    description: str | None
    value: Any = None
    error: str | None = None
    choices: list[str] = field(default_factory=list)
    max_length: int | None = None


def _max_length(info: Any) -> int | None:
    for meta in info.metadata:
        if getattr(meta, "max_length", None) is not None:
            return int(meta.max_length)
    return None


def field_views(
    form: type[BaseModel], values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
) -> list[FieldView]:
    values, errors = values or {}, errors or {}
    views = []
    for name, info in form.model_fields.items():
        if name in NOT_TYPED:
            continue
        kind, choices, annotation = "text", [], info.annotation
        if typing.get_origin(annotation) is typing.Literal:
            kind, choices = "select", [str(c) for c in typing.get_args(annotation)]
        elif annotation is bool:
            kind = "switch"
        elif annotation is int:
            kind = "number"
        elif (_max_length(info) or LONG_TEXT + 1) > LONG_TEXT:
            kind = "textarea"
        views.append(
            FieldView(
                name=name,
                label=name.replace("_", " ").capitalize(),
                kind=kind,
                required=info.is_required(),
                description=info.description,
                value=values.get(name),
                error=errors.get(name),
                choices=choices,
                max_length=_max_length(info),
            )
        )
    return views


def answer_from(form: type[BaseModel], posted: dict[str, str]) -> dict[str, Any]:
    """What the rep posted, as the form's fields (an unticked switch is posted as nothing)."""
    answer: dict[str, Any] = {}
    for name, info in form.model_fields.items():
        if name in NOT_TYPED:
            continue
        if info.annotation is bool:
            answer[name] = posted.get(name) in ("on", "true", "1")
        elif name in posted:
            answer[name] = posted[name]
    return answer


def errors_by_field(form: type[BaseModel], error: ValidationError) -> dict[str, str]:
    """pydantic's messages keyed by the field they concern ("" for the form as a whole)."""
    out: dict[str, str] = {}
    for err in error.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        name = str(err["loc"][0]) if err["loc"] else ""
        if not name:  # a model-level check: "note: a rejection needs a reason"
            head, sep, rest = message.partition(":")
            if sep and head.strip() in form.model_fields:
                name, message = head.strip(), rest.strip()
        out.setdefault(name, message)
    return out


__all__ = ["FieldView", "answer_from", "errors_by_field", "field_views"]
