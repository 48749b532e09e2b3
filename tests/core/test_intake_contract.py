"""The intake contract as a hostile sender meets it: every value that is not exactly what the
contract says becomes a reason on its own field, never an exception and never a guess; one
bad order never takes the good ones in its document with it."""

import codecs
import json
import re

import pytest
from sqlalchemy import func
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.intake import parse_csv_orders
from handoff.core.intake import parse_json_orders
from handoff.core.intake import read_order_file
from handoff.core.intake import submit_orders
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import Quarantine

GOOD = {
    "order_id": "A-1",
    "customer_id": "ALFKI",
    "order_date": "2024-03-01",
    "due_date": "2024-03-15",
    "lines": [{"product_id": 1, "quantity": 10, "unit_price": 18.0, "discount": 0.05}],
}


def order(order_id="A-1", line=None, **changes):
    o = json.loads(json.dumps(GOOD))
    o["order_id"] = order_id
    o.update(changes)
    if line:
        o["lines"][0].update(line)
    return o


def submit_text(text, csv=False):
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return submit_orders((parse_csv_orders if csv else parse_json_orders)(raw), source="test", announce=False)


def count(model):
    with session() as s:
        return s.scalar(select(func.count()).select_from(model))


# Each: (the order's JSON text, the field that must carry the reason)
HOSTILE = [
    ('{"order_id": true}', "order_id"),
    ('{"order_id": 1.5}', "order_id"),
    ('{"order_id": "a b"}', "order_id"),
    ('{"customer_id": 7}', "customer_id"),
    ('{"customer_id": "AL\\u001b[2JFKI"}', "customer_id"),
    ('{"customer_id": "ALF\\u200bKI"}', "customer_id"),  # shows as ALFKI: a zero-width space
    ('{"customer_id": "ALFKI\\u2060"}', "customer_id"),  # a trailing word joiner
    ('{"customer_id": "\\uff21\\uff2c\\uff26\\uff2b\\uff29"}', "customer_id"),  # full-width ALFKI
    ('{"customer_name": "x\\u202eevil"}', "customer_name"),
    ('{"customer_name": "\\ud800"}', "customer_name"),
    ('{"customer_name": "%s"}' % ("n" * 201), "customer_name"),
    ('{"order_date": 0}', "order_date"),
    ('{"order_date": "0"}', "order_date"),
    ('{"order_date": "2024-3-1"}', "order_date"),
    ('{"order_date": "1700-01-01"}', "order_date"),
    ('{"due_date": true}', "due_date"),
    ('{"total": NaN}', "total"),
    ('{"total": -Infinity}', "total"),
    ('{"total": 1e400}', "total"),
    ('{"total": "12.5"}', "total"),
    ('{"lines": []}', "lines"),
    ('{"lines": {"product_id": 1}}', "lines"),
    ('{"line": [{"product_id": 1, "quantity": 1, "unit_price": 1}]}', "line"),
    ('{"lines": [{"product_id": true, "quantity": 1, "unit_price": 1}]}', "lines.0.product_id"),
    ('{"lines": [{"product_id": 0, "quantity": 1, "unit_price": 1}]}', "lines.0.product_id"),
    ('{"lines": [{"product_id": -4, "quantity": 1, "unit_price": 1}]}', "lines.0.product_id"),
    ('{"lines": [{"product_id": 9223372036854775808, "quantity": 1, "unit_price": 1}]}', "lines.0.product_id"),
    ('{"lines": [{"product_id": 2147483648, "quantity": 1, "unit_price": 1}]}', "lines.0.product_id"),
    ('{"lines": [{"product_id": %s, "quantity": 1, "unit_price": 1}]}' % ("9" * 5000), "lines.0.product_id"),
    ('{"lines": [{"product_id": 1, "quantity": 1000000000000, "unit_price": 1}]}', "lines.0.quantity"),
    ('{"lines": [{"product_id": 1, "quantity": 2.0, "unit_price": 1}]}', "lines.0.quantity"),
    ('{"lines": [{"product_id": 1, "quantity": "2", "unit_price": 1}]}', "lines.0.quantity"),
    ('{"lines": [{"product_id": 1, "quantity": 1, "unit_price": Infinity}]}', "lines.0.unit_price"),
    ('{"lines": [{"product_id": 1, "quantity": 1, "unit_price": 1e309}]}', "lines.0.unit_price"),
    ('{"lines": [{"product_id": 1, "quantity": 1, "unit_price": -0.01}]}', "lines.0.unit_price"),
    ('{"lines": [{"product_id": 1, "quantity": 1, "unit_price": 1, "discount": true}]}', "lines.0.discount"),
    ('{"lines": [{"product_id": 1, "quantity": 1, "unit_price": 1, "discount": 1.5}]}', "lines.0.discount"),
    ('{"lines": [{"product_id": 1, "quantity": 1, "unit_price": 1, "colour": "red"}]}', "lines.0.colour"),
    ('{"lines": [{"product_id": 1, "quantity": 100000, "unit_price": 1000000}]}', "order"),  # 1e11 > the total limit
    ('{"order_id": "A-1", "order_id": "A-2"}', "order_id"),
    ('{"lines": [{"product_id": 1, "product_id": 2, "quantity": 1, "unit_price": 1}]}', "lines.0.product_id"),
]


def hostile_order(n, changes):
    """GOOD with the keys `changes` names replaced by its text as written (NaN, 1e400 and
    repeated keys cannot be made by json.dumps)."""
    named = set(re.findall(r'"(\w+)":', changes)) & set(GOOD)
    base = {k: v for k, v in order(f"B-{n}").items() if k not in named}
    return json.dumps(base)[:-1] + ", " + changes[1:]


def test_each_hostile_value_is_a_reason_on_its_field_and_the_good_orders_are_kept(db):
    bad = [hostile_order(n, changes) for n, (changes, _) in enumerate(HOSTILE)]
    goods = [json.dumps(order(f"G-{n}")) for n in range(len(HOSTILE) + 1)]
    document = "[" + ", ".join(x for pair in zip(goods, bad + [None]) for x in pair if x) + "]"
    result = submit_text(document)
    assert result.accepted == [f"G-{n}" for n in range(len(goods))]
    assert len(result.quarantined) == len(HOSTILE) and result.submitted == len(goods) + len(HOSTILE)
    with session() as s:
        for rejected, text, (changes, field) in zip(result.quarantined, bad, HOSTILE):
            assert field in {r["field"] for r in rejected.reasons}, (changes, rejected.reasons)
            assert all(len(r["message"]) < 400 for r in rejected.reasons)  # a prefix of a value, not all of it
            assert s.get(Quarantine, rejected.quarantine_id).raw_bytes == text.encode("utf-8")  # its own bytes
    assert count(Order) == len(goods) and count(Quarantine) == len(HOSTILE)


@pytest.mark.parametrize("changes, field", [c for c in HOSTILE if "order_id" not in c[0] and "product_id" not in c[0]])
def test_a_hostile_value_alone_is_refused_for_that_field_only(changes, field):
    from handoff.core.intake import check_order

    [submission] = parse_json_orders(hostile_order(0, changes).encode())
    _, reasons = check_order(submission.data)
    assert {r["field"] for r in reasons + submission.problems} == {field}, reasons


@pytest.mark.parametrize(
    ("customer_id", "says"),
    [
        ("ALF\u200bKI", "contains invisible characters (U+200B)"),
        ("\ufeffALFKI", "contains invisible characters (U+FEFF)"),
        ("\uff21\uff2c\uff26\uff2b\uff29", 'write it as "ALFKI"'),
        ("MU\u0308LLER", 'write it as "M\u00dcLLER"'),  # U and a combining diaeresis: Ü as one letter
    ],
)
def test_a_customer_id_that_only_looks_like_another_is_refused_saying_how_to_write_it(customer_id, says):
    from handoff.core.intake import check_order

    _, reasons = check_order(order(customer_id=customer_id))
    assert [r["field"] for r in reasons] == ["customer_id"] and says in reasons[0]["message"], reasons


@pytest.mark.parametrize("customer_id", ["ALFKI", "alfki", "M\u00dcLLER", "\u5c71\u7530-01", "O'BRIEN & SONS"])
def test_customer_ids_written_one_way_are_taken_as_they_are(customer_id):
    from handoff.core.intake import check_order

    checked, reasons = check_order(order(customer_id=customer_id))
    assert reasons == [] and checked.customer_id == customer_id


def test_a_bad_value_is_quoted_by_a_short_prefix(db):
    result = submit_text(json.dumps(order(customer_name="N" * 5_000_000)))
    [reason] = result.quarantined[0].reasons
    assert reason["field"] == "customer_name" and len(reason["message"]) < 200
    assert "5,000,000 characters" in reason["message"]


@pytest.mark.parametrize(
    "raw, says",
    [
        (b'[{"order_id": "X"}, \xff\xfe]', "not UTF-8"),
        (codecs.BOM_UTF16_LE + json.dumps(GOOD).encode("utf-16-le"), "UTF-16"),
        (json.dumps(GOOD).replace("ALFKI", "ÅLFKI").encode("latin-1"), "not UTF-8"),
        (b"[" * 1000 + b"]" * 1000, "nested too deeply"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"order_id": "X", ', "not valid JSON"),
        (b"[] []", "extra data"),
        (b"[]", "no orders"),
        (b"", "not valid JSON"),
        (b'{"orders": [], "orders": [{"order_id": "X"}]}', "more than once"),
    ],
)
def test_an_unreadable_document_is_quarantined_whole_with_its_bytes(db, raw, says):
    result = submit_text(raw)
    [rejected] = result.quarantined
    assert rejected.reasons[0]["field"] == "document" and says in rejected.reasons[0]["message"]
    with session() as s:
        assert s.get(Quarantine, rejected.quarantine_id).raw_bytes == raw


def test_a_utf8_bom_is_allowed_and_kept(db):
    raw = codecs.BOM_UTF8 + json.dumps(order("BOM-1")).encode()
    assert submit_text(raw).accepted == ["BOM-1"]


def test_an_order_beside_the_orders_key_is_not_dropped(db):
    document = {"orders": [order("W-1")], **order("W-2")}
    result = submit_text(json.dumps(document))
    assert result.accepted == ["W-1"]
    [rejected] = result.quarantined
    assert rejected.reference == "W-2" and rejected.reasons[0]["field"] == "document"


def test_a_document_over_the_size_limit_keeps_its_first_bytes(db, tmp_path, monkeypatch):
    from handoff.core.settings import settings

    monkeypatch.setattr(settings, "intake_max_bytes", 4096)
    path = tmp_path / "big.json"
    path.write_text(json.dumps([order(f"S-{n}") for n in range(100)]))
    result = submit_orders(read_order_file(path), source="test", announce=False)
    [rejected] = result.quarantined
    assert "over the limit of 4,096" in rejected.reasons[0]["message"]
    with session() as s:
        assert s.get(Quarantine, rejected.quarantine_id).raw_bytes == path.read_bytes()[:4096]


# --- the same order id again ---------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, fields",
    [
        ({"total": 171.0}, {"total"}),
        ({"customer_name": "Alfreds"}, {"customer_name"}),
        ({"due_date": "2024-04-01"}, {"due_date"}),
        ({"line": {"unit_price": 20.0}}, {"lines.0.unit_price"}),
        ({"lines": GOOD["lines"] * 2}, {"lines"}),
    ],
)
def test_a_changed_resend_is_a_conflict_that_says_what_differs(db, changes, fields):
    assert submit_text(json.dumps(order("R-1"))).accepted == ["R-1"]
    result = submit_text(json.dumps(order("R-1", **changes)))
    [rejected] = result.quarantined
    assert rejected.reasons[0]["field"] == "order_id" and "different content" in rejected.reasons[0]["message"]
    assert {r["field"] for r in rejected.reasons[1:]} == fields
    assert all("was " in r["message"] and ", now " in r["message"] for r in rejected.reasons[1:])
    assert submit_text(json.dumps(order("R-1"))).duplicates == ["R-1"]  # the first one still stands


def test_a_resend_with_a_known_customers_name_is_a_duplicate(db):
    first = order("K-1", customer_name="Someone Else", country="Narnia")  # ALFKI may be known by another name
    assert submit_text(json.dumps(first)).accepted == ["K-1"]
    assert submit_text(json.dumps(first)).duplicates == ["K-1"]


# --- CSV -----------------------------------------------------------------------------------

HEADER = "order_id,customer_id,order_date,due_date,product_id,quantity,unit_price,discount\n"


@pytest.mark.parametrize(
    "csv_text, field",
    [
        (HEADER.replace("discount", "colour") + "C-1,ALFKI,2024-03-01,2024-03-10,1,1,1,x\n", "colour"),
        (HEADER.replace("discount", "quantity") + "C-1,ALFKI,2024-03-01,2024-03-10,1,1,1,2\n", "quantity"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,1,1,0,surprise\n", "row 2"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,1\n", "row 2"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,1,1,0\nC-1,ANATR,2024-03-01,2024-03-10,2,1,1,0\n", "customer_id"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,1,1,0\nC-1,ALFKI,2024-03-02,2024-03-10,2,1,1,0\n", "order_date"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,1,nan,0\n", "lines.0.unit_price"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,1,1e999,0\n", "lines.0.unit_price"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,%s,1,0\n" % ("9" * 5000), "lines.0.quantity"),
        (HEADER + 'C-1,"%s",2024-03-01,2024-03-10,1,1,1,0\n' % ("x" * 200_000), "customer_id"),
        (HEADER + "C-1,ALFKI,2024-03-01,2024-03-10,1,true,1,0\n", "lines.0.quantity"),
    ],
)
def test_csv_surprises_are_reasons_not_silent_choices(db, csv_text, field):
    document = csv_text + "C-9,ANATR,2024-03-01,2024-03-10,1,1,1,0\n" if csv_text.startswith(HEADER) else csv_text
    result = submit_text(document, csv=True)
    # a wrong header refuses the document once (reference None), not each of its orders
    rejected = next(r for r in result.quarantined if r.reference in ("C-1", None))
    assert field in {r["field"] for r in rejected.reasons}, rejected.reasons
    if csv_text.startswith(HEADER):
        assert result.accepted == ["C-9"]


def test_a_csv_order_keeps_its_header_and_rows_byte_for_byte(db):
    rows = [
        "C-1,ALFKI,2024-03-01,2024-03-10,1,1,1,0\r\n",
        "C-2,ANATR,2024-03-01,2024-03-10,1,x,1,0\r\n",
        'C-1,ALFKI,2024-03-01,2024-03-10,2,"1",2,0\r\n',
    ]
    result = submit_text(HEADER.replace("\n", "\r\n") + "".join(rows), csv=True)
    assert result.accepted == ["C-1"]
    with session() as s:
        assert s.get(Order, "C-1").lines[1].unit_price == 2.0
        kept = s.get(Quarantine, result.quarantined[0].quarantine_id)
        assert kept.raw_bytes == (HEADER.replace("\n", "\r\n") + rows[1]).encode()


def test_the_received_content_is_in_the_audit_trail(db):
    submit_text(json.dumps(order("T-1", customer_name="Tea Co")))
    with session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.entity_id == "T-1", AuditEvent.action == "received"))
        assert event.details["content"]["customer_name"] == "Tea Co"
