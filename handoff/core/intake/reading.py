"""Reading a document into submissions: one per order, each with the exact bytes it came in.

A document is JSON (one order, a list of orders, or {"orders": [...]}) or CSV (a row per order
line; rows sharing an order_id make one order), in UTF-8. Reading never fails: whatever cannot
be read becomes a submission with the reason (not UTF-8 at byte N, not JSON at line L, nested
too deep, bigger than the limit), kept with its bytes for quarantine. What reading notices
about one order (a key written twice, CSV rows that disagree, values beyond the header) goes
with that order only, so its neighbours are decided on their own.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from handoff.core.intake.contract import ORDER_FORM
from handoff.core.intake.contract import QUOTE_REQUEST_FORM
from handoff.core.intake.contract import Form
from handoff.core.intake.contract import Reason
from handoff.core.intake.contract import Unreadable
from handoff.core.intake.text import clip
from handoff.core.intake.text import quote
from handoff.core.settings import settings

MAX_DIGITS = 30  # a JSON or CSV integer longer than this is out of every range the contract has


def csv_header_columns(form: Form) -> tuple[str, ...]:
    """The columns a CSV row repeats for every line of one document (the order's, the request's)."""
    return tuple(f for f in form.fields if f != "lines")


def csv_columns(form: Form) -> tuple[str, ...]:
    return csv_header_columns(form) + form.line_fields


CSV_ORDER_COLUMNS = csv_header_columns(ORDER_FORM)
CSV_COLUMNS = csv_columns(ORDER_FORM)
CSV_INTEGER_COLUMNS = ("product_id", "quantity")
CSV_NUMBER_COLUMNS = ("unit_price", "discount", "total")

# Fields may be as long as a document; the contract, not the csv module, bounds them (the
# module's own 128 KiB limit raises mid-file and would lose the orders after that row).
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))


@dataclass
class Submission:
    """One order as received: its exact bytes, what was read of it, and what reading found."""

    raw: bytes
    data: Any = None
    problems: list[Reason] = field(default_factory=list)
    reference: str | None = None

    def __iter__(self) -> Iterator[Any]:
        """`raw, data = submission`, as callers of the (raw, data) pairs intake took before."""
        return iter((self.raw, self.data))


def whole_document(raw: bytes, why: str, where: str = "document") -> list[Submission]:
    return [Submission(raw, None, [{"field": where, "message": why}])]


# One document is at most this many orders (or requests). Each is decided, stored or
# quarantined, audited and answered on its own: 200 KB of "[0,0,…]" made 100,000 quarantine
# rows, 100,000 audit rows and an 11 MB answer in 70 s, and the 10 MiB body limit allowed fifty
# times that. A feed sends more in parts.
MAX_PER_DOCUMENT = 10_000
MAX_HEADER_CHARS = 4_096  # a CSV header of the known columns is a few hundred


def _too_many(raw: bytes, found: int, form: Form) -> list[Submission]:
    return whole_document(
        raw, f"holds {found:,} {form.plural}; at most {MAX_PER_DOCUMENT:,} go in one document: send it in parts"
    )


# --- documents ------------------------------------------------------------------------------


def max_document_bytes() -> int:
    return settings.intake_max_bytes


def read_order_file(path: Path, form: Form = ORDER_FORM) -> list[Submission]:
    """Submissions from a JSON or CSV file (by its suffix). A file over the size limit is one
    submission: its first bytes up to the limit are kept, the rest is not read."""
    limit = max_document_bytes()
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        size = path.stat().st_size
        told = f"is {size:,} bytes" if size > limit else "goes on"  # a pipe or a device has no size
        return whole_document(
            raw[:limit], f"{told}, over the limit of {limit:,} bytes; the first {limit:,} bytes are kept here"
        )
    if path.suffix.lower() == ".csv":
        return parse_csv_orders(raw, form)
    return parse_json_orders(raw, form)


def read_quote_request_file(path: Path) -> list[Submission]:
    """Requests for quotation from a JSON or CSV file: the same reader as orders'."""
    return read_order_file(path, QUOTE_REQUEST_FORM)


def decode(raw: bytes) -> tuple[str | None, str]:
    """The document's text (a UTF-8 byte-order mark dropped), or None and why it is not UTF-8."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not raw.startswith(codecs.BOM_UTF8):
        return None, "is UTF-16 text (it starts with a UTF-16 byte-order mark); send it as UTF-8"
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        at = exc.start + (len(raw) - len(body))
        return None, (f"is not UTF-8 text: byte 0x{raw[at]:02x} at offset {at:,} ({exc.reason}); send it as UTF-8")


# --- JSON ------------------------------------------------------------------------------------


class JsonObject(dict):  # type: ignore[type-arg]
    """A JSON object that remembers the keys written more than once (JSON leaves it open which
    one counts; intake asks the sender instead of keeping the last)."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj = JsonObject(pairs)
    if len(obj) != len(pairs):
        obj.repeated = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return obj


def _integer(text: str) -> int | Unreadable:
    if len(text.lstrip("-")) > MAX_DIGITS:
        return Unreadable(text[:40], f"is a number of {len(text.lstrip('-')):,} digits, beyond any range here")
    return int(text)


def _number(text: str) -> float | Unreadable:
    value = float(text)
    if not math.isfinite(value):
        return Unreadable(text[:40], "is a number too large for a double (over 1.8e308)")
    return value


def _constant(text: str) -> Unreadable:
    return Unreadable(text, f"{text} is not a number JSON allows")


DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_int=_integer, parse_float=_number, parse_constant=_constant)
JSON_SPACE = re.compile(r"[ \t\n\r]*")


def parse_json_orders(raw: bytes | str, form: Form = ORDER_FORM) -> list[Submission]:
    """Submissions from a JSON document: one order, a list of orders, or {"orders": [...]}
    (for another form, its own noun: {"requests": [...]})."""
    key = form.plural
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    text, why = decode(raw_bytes) if isinstance(raw, bytes) else (raw, "")
    if text is None:
        return whole_document(raw_bytes, why)
    try:
        value, end = _value_at(text, JSON_SPACE.match(text, 0).end())  # type: ignore[union-attr]
        if JSON_SPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
            return whole_document(raw_bytes, f"is not valid JSON: extra data after the value at {_where(text, end)}")
    except json.JSONDecodeError as exc:
        return whole_document(raw_bytes, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return whole_document(raw_bytes, f"is nested too deeply to read ({form.article} {form.noun} is 3 levels deep)")

    if isinstance(value, list):
        return _items(text, raw_bytes, _elements(text, JSON_SPACE.match(text, 0).end()), value, form)  # type: ignore[union-attr]
    if isinstance(value, JsonObject) and key in value and isinstance(value[key], list):
        if key in value.repeated:
            return whole_document(raw_bytes, f'"{key}" is written more than once; which list is meant?')
        members = _members(text, JSON_SPACE.match(text, 0).end())  # type: ignore[union-attr]
        start = next(vstart for name, vstart in members if name == key)
        out = _items(text, raw_bytes, _elements(text, start), value[key], form)
        beside = JsonObject((k, v) for k, v in value.items() if k != key)
        if beside:
            out.append(
                Submission(
                    raw_bytes,
                    beside,
                    [
                        {
                            "field": "document",
                            "message": f'has {", ".join(quote(k) for k in list(beside)[:5])} beside "{key}"; '
                            f"{form.article} {form.noun} must be inside the {key} list",
                        }
                    ],
                    _reference_of(beside, form),
                )
            )
        elif not value[key]:
            return whole_document(raw_bytes, f"contains no {form.plural}")
        return out
    return [_submission(raw_bytes, value, form)]


def _items(
    text: str, raw_bytes: bytes, spans: list[tuple[int, int]], values: list[Any], form: Form
) -> list[Submission]:
    if not values:
        return whole_document(raw_bytes, f"contains no {form.plural}")
    if len(values) > MAX_PER_DOCUMENT:
        return _too_many(raw_bytes, len(values), form)
    return [_submission(text[a:b].encode("utf-8", "surrogatepass"), v, form) for (a, b), v in zip(spans, values)]


def _submission(raw: bytes, value: Any, form: Form = ORDER_FORM) -> Submission:
    return Submission(raw, value, _repeated_keys(value), _reference_of(value, form))


def _value_at(text: str, at: int) -> tuple[Any, int]:
    return DECODER.raw_decode(text, at)


def _elements(text: str, at: int) -> list[tuple[int, int]]:
    """The (start, end) of each element of the array starting at `at` (already known valid)."""
    spans: list[tuple[int, int]] = []
    i = JSON_SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
    if text[i] == "]":
        return spans
    while True:
        _, end = _value_at(text, i)
        spans.append((i, end))
        i = JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
        if text[i] == "]":
            return spans
        i = JSON_SPACE.match(text, i + 1).end()  # type: ignore[union-attr]  # past the comma


def _members(text: str, at: int) -> list[tuple[str, int]]:
    """(key, value start) of each member of the object starting at `at` (already known valid)."""
    members = []
    i = JSON_SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
    while text[i] != "}":
        key, end = _value_at(text, i)
        i = JSON_SPACE.match(text, JSON_SPACE.match(text, end).end() + 1).end()  # type: ignore[union-attr]
        _, vend = _value_at(text, i)
        members.append((key, i))
        i = JSON_SPACE.match(text, vend).end()  # type: ignore[union-attr]
        if text[i] == ",":
            i = JSON_SPACE.match(text, i + 1).end()  # type: ignore[union-attr]
    return members


def _where(text: str, at: int) -> str:
    line = text.count("\n", 0, at) + 1
    return f"line {line} column {at - (text.rfind(chr(10), 0, at) + 1) + 1}"


def _repeated_keys(value: Any) -> list[Reason]:
    problems = []
    if isinstance(value, JsonObject):
        problems += [
            {"field": clip(k), "message": "is written more than once; which value is meant?"} for k in value.repeated
        ]
        lines = value.get("lines")
        if isinstance(lines, list):
            for n, line in enumerate(lines):
                if isinstance(line, JsonObject):
                    problems += [
                        {"field": clip(f"lines.{n}.{k}"), "message": "is written more than once; which value is meant?"}
                        for k in line.repeated
                    ]
    return problems


def _reference_of(value: Any, form: Form = ORDER_FORM) -> str | None:
    if isinstance(value, dict):
        ref = value.get(form.id_field)
        if isinstance(ref, str) and ref.strip():
            return clip(ref.strip(), 40)
        if isinstance(ref, int) and not isinstance(ref, bool):
            return quote(ref)[:40]
    return None


# --- CSV -------------------------------------------------------------------------------------

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
# ASCII digits only, as JSON: `\d` took "١٢" and "１８.５" as 12 and 18.5, which JSON refuses.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# What is trimmed around a cell: spaces and tabs. str.strip() also took control characters
# (\x1c-\x1f) off an id that JSON refuses as unprintable; the contract judges them as sent.
CELL_SPACE = " \t"


class _Lines:
    """The document's lines for csv.reader, counting how many it has taken, so that each row's
    exact source lines (a quoted field may span several) are known."""

    def __init__(self, text: str) -> None:
        self.lines = [m for m in _LINE.findall(text) if m]
        self.taken = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.taken >= len(self.lines):
            raise StopIteration
        self.taken += 1
        return self.lines[self.taken - 1]


def parse_csv_orders(raw: bytes | str, form: Form = ORDER_FORM) -> list[Submission]:
    """Submissions from a CSV document: one row per order line; rows sharing an order_id make
    one order (for another form, its id: request_id). Each keeps the header line and its own
    rows, byte for byte."""
    id_field = form.id_field
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    text, why = decode(raw_bytes) if isinstance(raw, bytes) else (raw, "")
    if text is None:
        return whole_document(raw_bytes, why)
    lines = _Lines(text)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        header_lines = lines.taken
        rows = []
        while True:
            start = lines.taken
            row = next(reader, None)
            if row is None:
                break
            if row:  # blank lines are not rows
                rows.append((reader.line_num, row, start, lines.taken))
    except csv.Error as exc:
        return whole_document(raw_bytes, f"is not readable CSV at line {reader.line_num}: {exc}")
    names = [h.strip() for h in header or []]
    if id_field not in names:
        hint = next((f" (is it separated by {sep!r}?)" for sep in ";\t|" if header and sep in header[0]), "")
        return whole_document(
            raw_bytes,
            f"a CSV of {form.plural} needs a header row with {'an' if id_field[0] in 'aeiou' else 'a'} {id_field} column{hint}",
        )
    if not rows:
        return whole_document(raw_bytes, f"contains no {form.plural} (a header and no rows)")

    head = "".join(lines.lines[:header_lines])
    if len(head) > MAX_HEADER_CHARS:  # each order keeps the header: 100 KB of it, copied into each
        return whole_document(raw_bytes, f"has a header row of {len(head):,} characters; the columns are shorter")
    header_problems = _header_problems(names, form)
    if header_problems:  # said once for the document, not copied into each of its orders
        return [Submission(raw_bytes, None, header_problems)]
    groups: dict[str, list[tuple[int, list[str], int, int]]] = {}
    orphans: list[tuple[int, list[str], int, int]] = []
    at = names.index(id_field)
    for entry in rows:
        key = entry[1][at].strip(CELL_SPACE) if at < len(entry[1]) else ""
        (groups.setdefault(key, []) if key else orphans).append(entry)
    if len(groups) + len(orphans) > MAX_PER_DOCUMENT:
        return _too_many(raw_bytes, len(groups) + len(orphans), form)
    out = []
    for group in [*groups.values(), *([r] for r in orphans)]:
        order_raw = head + "".join("".join(lines.lines[a:b]) for _, _, a, b in group)
        data, problems = _order_from_rows(names, group, form)
        out.append(
            Submission(
                order_raw.encode("utf-8", "surrogatepass"),
                data,
                problems,
                _reference_of(data, form),
            )
        )
    return out


def _header_problems(names: list[str], form: Form) -> list[Reason]:
    columns = csv_columns(form)
    problems = []
    for name, n in Counter(names).items():
        if n > 1:
            problems.append(
                {
                    "field": clip(name) or "(empty column name)",
                    "message": f"is a column {n} times in the header; which one is meant?",
                }
            )
        if name not in columns:
            problems.append(
                {
                    "field": clip(name) or "(empty column name)",
                    "message": f"is not a column of {form.article} {form.noun} CSV; the columns are "
                    + ", ".join(columns),
                }
            )
    return problems


def _order_from_rows(
    names: list[str], rows: list[tuple[int, list[str], int, int]], form: Form = ORDER_FORM
) -> tuple[dict[str, Any], list[Reason]]:
    problems: list[Reason] = []
    cells = []
    for line_num, row, _, _ in rows:
        if len(row) > len(names):
            problems.append(
                {
                    "field": f"row {line_num}",
                    "message": f"has {len(row) - len(names)} value(s) beyond the header's {len(names)} columns",
                }
            )
        elif len(row) < len(names):
            problems.append(
                {"field": f"row {line_num}", "message": f"has {len(row)} values; the header has {len(names)} columns"}
            )
        by_name: dict[str, str] = {}
        for name, value in zip(names, row):
            by_name.setdefault(name, value.strip(CELL_SPACE))
        cells.append((line_num, by_name))
    first_line, first = cells[0]
    order: dict[str, Any] = {}
    for name in csv_header_columns(form):
        if first.get(name):
            order[name] = _cell(name, first[name])
        for line_num, other in cells[1:]:
            if other.get(name, "") != first.get(name, ""):
                problems.append(
                    {
                        "field": name,
                        "message": f"row {line_num} says {quote(other.get(name, ''))}, "
                        f"row {first_line} says {quote(first.get(name, ''))}; which is meant?",
                    }
                )
    order["lines"] = [{name: _cell(name, c[name]) for name in form.line_fields if c.get(name)} for _, c in cells]
    return order, problems


def _cell(name: str, text: str) -> Any:
    """A CSV cell as the contract's type: digits for whole numbers, decimals for amounts; any
    other text stays text, and the contract names it."""
    if name in CSV_INTEGER_COLUMNS and _INTEGER.fullmatch(text):
        return _integer(text.lstrip("+"))
    if name in CSV_NUMBER_COLUMNS and _DECIMAL.fullmatch(text):
        if len(text) > 400:
            return Unreadable(text[:40], f"is a number of {len(text):,} characters")
        return _number(text)
    return text
