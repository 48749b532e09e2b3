"""Hypothesis strategies for what a hostile sender or a broken upstream system sends to intake:
any bytes, any JSON (hostile numbers, deep nesting, repeated keys, wrong types, text that is
markup, terminal escapes or unpaired surrogates, in any encoding), any CSV (unknown and
repeated columns, ragged rows, rows of one order that disagree, fields over 128 KiB).

Shared by the property tests (tests/core, tests/cli, tests/runtime) and bench/hostile_intake.py,
with one checker of the property: every payload ends as accepted, quarantined or duplicate
orders, at least one of them, and the database agrees.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import func
from sqlalchemy import select

# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A JSON value written exactly as given (1e400, NaN, a 5,000-digit integer)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object as its members in order, so that a key may be written twice."""

    items: tuple[tuple[str, Any], ...]


HOSTILE_NUMBERS = [
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 5000,
    "-" + "9" * 4301,
    str(2**63),
    str(2**64 + 1),
    str(2**31),
    "1e-400",
    "0.1e1",
    "-0",
    "1E308",
    "2.5e308",
    "0" * 30 + "1",
    "123456789012345678901234567890.5",
]
HOSTILE_TEXTS = [
    "[/bold]",
    "[red]x[/red]",
    "\x1b[2J\x1b]0;pwned\x07",
    "\x00",
    "\ud800",
    "x\u202eevil",
    "😀",
    "",
    " ",
    "ALFKI",
    "2024-02-30",
    "0",
    "true",
    "1,5",
    "A" * 300,
    "é",
    "\r\n",
    "'; DROP TABLE orders;--",
]
ORDER_IDS = ["P-1", "P-2", "P-3", "10248", "A.b_c-9"]  # met again and again: duplicates and conflicts
fresh_ids = st.from_regex(r"[A-Z]{1,3}-[0-9]{1,8}", fullmatch=True)  # mostly new: stored, then re-checked

texts = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
    st.text(max_size=12),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(HOSTILE_NUMBERS).map(Token),
)
good_numbers = st.one_of(st.integers(min_value=1, max_value=100), st.floats(min_value=0, max_value=500))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)


def any_json(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(st.tuples(texts, inner), max_size=4).map(lambda kv: Pairs(tuple(kv))),
        ),
        max_leaves=max_leaves,
    )


def maybe(good: st.SearchStrategy[Any], chance_of_bad: int = 5) -> st.SearchStrategy[Any]:
    """Mostly `good`, sometimes anything at all."""
    return st.one_of(*([good] * chance_of_bad), scalars, any_json(4))


dates = st.one_of(st.dates().map(str), st.sampled_from(["2024-03-01", "2024-03-15"]))


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    """An order: half the time a clean one (to be stored, or met again as a duplicate or a
    conflict, since ids come from a small pool), else one with hostile values anywhere."""
    clean = draw(st.booleans())

    def value(good: st.SearchStrategy[Any], chance_of_bad: int = 5) -> Any:
        return draw(good if clean else maybe(good, chance_of_bad))

    order = {
        "order_id": value(st.one_of(st.sampled_from(ORDER_IDS), fresh_ids), 8),
        "customer_id": value(st.sampled_from(["ALFKI", "NEW1"])),
        "order_date": value(st.just("2024-03-01")),
        "due_date": value(dates.filter(lambda d: "1900" <= d <= "2999")),
        "lines": [
            {
                "product_id": value(st.integers(min_value=1, max_value=80)),
                "quantity": value(st.integers(min_value=1, max_value=50)),
                "unit_price": value(st.sampled_from([18.0, 19.5, 0, 4])),
            }
            for _ in range(value(st.integers(1, 3), 20) if clean else draw(st.integers(0, 3)))
        ],
    }
    if clean and draw(st.booleans()) or not clean and draw(st.integers(0, 8)) == 0:
        order["lines"] = value(st.just(order["lines"]), 8)
    for name, good in [
        ("customer_name", st.sampled_from(["Alfreds", "New One", "[/bold] Co"])),
        ("country", st.just("Germany")),
        ("total", good_numbers),
    ]:
        if draw(st.integers(0, 3)) == 0:
            order[name] = value(good)
    if not clean and draw(st.integers(0, 5)) == 0:
        order[draw(texts)] = draw(scalars)
    return order


def _as_pairs(order: dict[str, Any], repeat: str | None) -> Pairs:
    items = [(k, _pairs_deep(v)) for k, v in order.items()]
    if repeat and repeat in order:
        items.append((repeat, _pairs_deep(order[repeat])))
    return Pairs(tuple(items))


def _pairs_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return Pairs(tuple((k, _pairs_deep(v)) for k, v in value.items()))
    if isinstance(value, list):
        return [_pairs_deep(v) for v in value]
    return value


def to_json(value: Any, ascii_only: bool = True) -> str:
    """`value` as JSON text, keeping Tokens as written and Pairs with their repeated keys."""
    if isinstance(value, Token):
        return value.text
    if isinstance(value, Pairs):
        return (
            "{"
            + ", ".join(f"{json.dumps(k, ensure_ascii=ascii_only)}: {to_json(v, ascii_only)}" for k, v in value.items)
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v, ascii_only) for v in value) + "]"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    """A JSON document of orders, in any shape and encoding a sender might use, or break."""
    batch = [
        _as_pairs(o, draw(st.sampled_from([None] * 12 + ["order_id", "lines"])))
        for o in draw(st.lists(orders(), min_size=0 if draw(st.integers(0, 15)) == 0 else 1, max_size=5))
    ]
    shape = draw(st.sampled_from(["list"] * 5 + ["one"] * 2 + ["wrapped"] * 2 + ["wrapped+beside", "anything", "deep"]))
    if shape == "one" and batch:
        value: Any = batch[0]
    elif shape == "wrapped":
        value = Pairs((("orders", batch),))
    elif shape == "wrapped+beside":
        value = Pairs((("orders", batch), ("order_id", "P-9")))
    elif shape == "anything":
        value = draw(any_json())
    elif shape == "deep":
        depth = draw(st.sampled_from([5, 100, 999, 1000, 1500, 50_000]))
        return ("[" * depth + "]" * depth).encode()
    else:
        value = batch
    ascii_only = draw(st.booleans())
    text = to_json(value, ascii_only) + draw(st.sampled_from([""] * 8 + ["\n", " x", "]", ","]))
    return encode(text, draw(st.sampled_from(ENCODINGS)))


ENCODINGS = ["utf-8"] * 8 + ["utf-8-sig", "utf-16", "latin-1", "cp1252"]


def encode(text: str, encoding: str) -> bytes:
    if encoding.startswith("utf-8"):
        raw = text.encode("utf-8", "surrogatepass")
        return codecs.BOM_UTF8 + raw if encoding == "utf-8-sig" else raw
    return text.encode(encoding, "replace" if encoding != "utf-16" else "surrogatepass")


CSV_HEADERS = [
    "order_id",
    "customer_id",
    "customer_name",
    "country",
    "order_date",
    "due_date",
    "total",
    "product_id",
    "quantity",
    "unit_price",
    "discount",
]


@st.composite
def csv_documents(draw: st.DrawFn) -> bytes:
    """A CSV of order lines: sane or not, in any dialect a spreadsheet writes."""
    header = draw(
        st.one_of(
            st.just(["order_id", "customer_id", "order_date", "due_date", "product_id", "quantity", "unit_price"]),
            st.lists(st.sampled_from(CSV_HEADERS + ["colour", "", "Order_ID"]), min_size=1, max_size=9),
        )
    )
    cell = st.one_of(
        st.sampled_from(["P-1", "P-2", "ALFKI", "2024-03-01", "2024-03-15", "1", "2", "18.5", "0.1", ""]),
        st.sampled_from(HOSTILE_NUMBERS[:5] + ["9" * 5000]),
        texts,
        st.just("x" * 140_000),
    )  # over the csv module's own 128 KiB field limit
    good_row = {
        "order_id": st.sampled_from(ORDER_IDS[:3]),
        "customer_id": st.just("ALFKI"),
        "order_date": st.just("2024-03-01"),
        "due_date": st.just("2024-03-15"),
        "product_id": st.integers(1, 77).map(str),
        "quantity": st.integers(1, 9).map(str),
        "unit_price": st.sampled_from(["18", "19.5", "0"]),
    }
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = [draw(good_row.get(h, cell) if draw(st.integers(0, 4)) else cell) for h in header]
        rows.append(row + draw(st.lists(cell, max_size=2)) if draw(st.integers(0, 6)) == 0 else row)
        if rows[-1] and draw(st.integers(0, 6)) == 0:
            rows[-1] = rows[-1][:-1]  # ragged
    buf = io.StringIO()
    delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    writer.writerow(header)
    writer.writerows(rows)
    return encode(buf.getvalue(), draw(st.sampled_from(ENCODINGS)))


any_bytes = st.binary(max_size=3000)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    """("json" | "csv", the document's bytes)."""
    kind = draw(st.sampled_from(["json", "json", "json", "csv", "csv", "bytes"]))
    if kind == "json":
        return "json", draw(json_documents())
    if kind == "csv":
        return "csv", draw(csv_documents())
    return draw(st.sampled_from(["json", "csv"])), draw(any_bytes)


# --- the property -----------------------------------------------------------------------------


@dataclass
class Tally:
    orders: int
    quarantined: int


def tally() -> Tally:
    from handoff.core.db import session
    from handoff.core.models import Order
    from handoff.core.models import Quarantine

    with session() as s:
        return Tally(
            s.scalar(select(func.count()).select_from(Order)) or 0,
            s.scalar(select(func.count()).select_from(Quarantine)) or 0,
        )


def check_outcome(
    before: Tally, submitted: int, accepted: list[str], duplicates: list[str], quarantined: int
) -> list[str]:
    """What breaks the property, in words; [] when this payload was handled completely."""
    from handoff.core.db import session
    from handoff.core.models import Order

    broken = []
    after = tally()
    if submitted < 1:
        broken.append("a payload ended as nothing at all")
    if submitted != len(accepted) + len(duplicates) + quarantined:
        broken.append(
            f"submitted {submitted} != accepted {len(accepted)} + duplicates {len(duplicates)} "
            f"+ quarantined {quarantined}"
        )
    if after.orders - before.orders != len(accepted):
        broken.append(f"{len(accepted)} accepted but {after.orders - before.orders} orders stored")
    if after.quarantined - before.quarantined != quarantined:
        broken.append(f"{quarantined} quarantined but {after.quarantined - before.quarantined} kept")
    with session() as s:
        missing = [o for o in accepted + duplicates if s.get(Order, o) is None]
    if missing:
        broken.append(f"orders reported stored but missing: {missing[:5]}")
    return broken


SUMMARY = re.compile(r"submitted (\d+) · accepted (\d+) · duplicates (\d+) · quarantined (\d+)")
