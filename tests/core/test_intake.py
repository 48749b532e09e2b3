"""Intake keeps every order: good ones stored once, bad ones quarantined with a reason per field."""

import json

import pytest
from sqlalchemy import func
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.intake import parse_csv_orders
from handoff.core.intake import parse_json_orders
from handoff.core.intake import read_order_file
from handoff.core.intake import submit_orders
from handoff.core.models import Order
from handoff.core.models import Quarantine

BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


def good_order(order_id="A-1", **changes):
    order = {
        "order_id": order_id,
        "customer_id": "ALFKI",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "lines": [
            {"product_id": 1, "quantity": 10, "unit_price": 18.0, "discount": 0},
            {"product_id": 2, "quantity": 5, "unit_price": 19.0, "discount": 0.1},
        ],
    }
    order.update(changes)
    return order


def submit(*orders):
    return submit_orders([(json.dumps(o), o) for o in orders], source="test", announce=False)


def count(model):
    with session() as s:
        return s.scalar(select(func.count()).select_from(model))


@BOTH_DATABASES
def test_a_good_order_is_stored_with_its_lines_and_total(db):
    result = submit(good_order())
    assert result.accepted == ["A-1"] and not result.quarantined
    with session() as s:
        order = s.get(Order, "A-1")
        assert [l.product_id for l in order.lines] == [1, 2]
        assert order.total == pytest.approx(10 * 18.0 + 5 * 19.0 * 0.9)
        assert str(order.due_date) == "2024-03-15"


@BOTH_DATABASES
def test_a_malformed_order_names_each_bad_field_and_is_quarantined(db):
    bad = good_order(
        order_date="2024-13-45",
        lines=[
            {"product_id": 1, "quantity": -3, "unit_price": "ten", "discount": 0},
        ],
    )
    del bad["customer_id"]
    result = submit(bad)
    assert result.accepted == []
    [rejected] = result.quarantined
    fields = {r["field"] for r in rejected.reasons}
    assert fields == {"customer_id", "order_date", "lines.0.quantity", "lines.0.unit_price"}
    with session() as s:
        kept = s.get(Quarantine, rejected.quarantine_id)
        assert json.loads(kept.raw) == bad  # exactly what was received
        assert kept.reference == "A-1"
        assert {r["field"] for r in kept.reasons} == fields


@BOTH_DATABASES
def test_a_mixed_batch_keeps_the_good_orders(db):
    result = submit(
        good_order("G-1"), good_order("B-1", due_date="soon"), good_order("G-2"), good_order("B-2", lines=[])
    )
    assert result.accepted == ["G-1", "G-2"]
    assert [r.reference for r in result.quarantined] == ["B-1", "B-2"]
    assert count(Order) == 2 and count(Quarantine) == 2
    assert result.submitted == len(result.accepted) + len(result.quarantined)


@BOTH_DATABASES
def test_the_same_order_twice_is_not_stored_twice(db):
    submit(good_order())
    again = submit(good_order())
    assert again.accepted == [] and again.duplicates == ["A-1"]
    assert count(Order) == 1 and count(Quarantine) == 0


@BOTH_DATABASES
def test_the_same_order_id_with_other_content_is_kept_for_review(db):
    submit(good_order())
    changed = submit(good_order(due_date="2024-04-01"))
    assert changed.accepted == [] and changed.duplicates == []
    [rejected] = changed.quarantined
    assert rejected.reasons[0]["field"] == "order_id"
    with session() as s:
        assert str(s.get(Order, "A-1").due_date) == "2024-03-15"  # the first one stands


@BOTH_DATABASES
def test_unknown_columns_are_reported_not_ignored(db):
    result = submit(good_order(colour="blue"))
    assert result.quarantined[0].reasons[0]["field"] == "colour"


@BOTH_DATABASES
def test_csv_rows_make_orders_and_a_bad_row_quarantines_only_its_order(db, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,customer_id,order_date,due_date,product_id,quantity,unit_price,discount\n"
        "C-1,ALFKI,2024-03-01,2024-03-10,1,10,18.0,0\n"
        "C-1,ALFKI,2024-03-01,2024-03-10,2,4,19.0,0.05\n"
        "C-2,ANATR,2024-03-02,2024-03-12,3,abc,10.0,0\n"
        ",ANATR,2024-03-02,2024-03-12,3,1,10.0,0\n"
    )
    result = submit_orders(read_order_file(path), source="file:orders.csv", announce=False)
    assert result.accepted == ["C-1"]
    assert len(result.quarantined) == 2
    by_ref = {r.reference: r for r in result.quarantined}
    assert by_ref["C-2"].reasons[0]["field"] == "lines.0.quantity"
    assert by_ref[None].reasons[0]["field"] == "order_id"
    with session() as s:
        assert len(s.get(Order, "C-1").lines) == 2
        raws = [q.raw for q in s.scalars(select(Quarantine))]
        assert any("C-2,ANATR" in raw for raw in raws)


@BOTH_DATABASES
def test_a_file_that_is_not_json_is_quarantined_whole(db):
    text = '{"order_id": "X-1", "lines": ['
    result = submit_orders(parse_json_orders(text), source="test", announce=False)
    [rejected] = result.quarantined
    assert rejected.reasons[0]["field"] == "document"
    assert "not valid JSON" in rejected.reasons[0]["message"]
    with session() as s:
        assert s.get(Quarantine, rejected.quarantine_id).raw == text


def test_json_accepts_one_order_a_list_or_an_orders_key():
    one = parse_json_orders(json.dumps(good_order("J-1")))
    many = parse_json_orders(json.dumps([good_order("J-1"), good_order("J-2")]))
    wrapped = parse_json_orders(json.dumps({"orders": [good_order("J-3")]}))
    assert [d["order_id"] for _, d in one + many + wrapped] == ["J-1", "J-1", "J-2", "J-3"]


def test_csv_without_order_id_header_is_unreadable():
    [submission] = parse_csv_orders("a,b\n1,2\n")
    assert submission.data is None and "order_id" in submission.problems[0]["message"]


def test_northwind_import_takes_required_date_as_due_date(catalogue):
    from handoff.core.northwind import import_northwind

    result = import_northwind(limit=5, announce=False)
    assert result.accepted == ["10248", "10249", "10250", "10251", "10252"]
    with session() as s:
        order = s.get(Order, "10248")
        assert (str(order.order_date), str(order.due_date)) == ("2016-07-04", "2016-08-01")
        assert len(order.lines) == 3
    assert import_northwind(limit=5, announce=False).duplicates == result.accepted


# --- one small document must not make an enormous answer ----------------------------------------


def test_a_csv_whose_header_is_wrong_is_refused_once_not_once_per_order(db):
    """2,000 unknown columns and 200 orders used to give each order every header reason
    (400,000 reasons, 200 MB of database from 12 KB). The header is refused once, for the
    document, and what is listed of it is capped."""
    from handoff.core.intake.door import MAX_REASONS

    columns = ["order_id", "customer_id", *(f"x{n}" for n in range(300))]
    rows = "".join(f"C-{n},ALFKI{',' * 300}\n" for n in range(200))
    result = submit_orders(parse_csv_orders(",".join(columns) + "\n" + rows), source="test")
    [refused] = result.quarantined
    assert result.accepted == [] and count(Quarantine) == 1
    assert len(refused.reasons) == MAX_REASONS + 1 and refused.reasons[-1]["message"].startswith("and ")
    assert "is not a column of an order CSV" in refused.reasons[0]["message"]
    padded = "order_id" + " " * 5000 + ",customer_id\nC-1,ALFKI\n"  # a valid column, padded
    [whole] = parse_csv_orders(padded)
    assert whole.data is None and "header row of 5,021 characters" in whole.problems[0]["message"]


def test_a_document_of_more_orders_than_one_document_may_hold_is_refused_whole(db, monkeypatch):
    """Each order is decided, audited and answered on its own: 200 KB of "[0,0,…]" made
    100,000 quarantine rows and an 11 MB answer. Past MAX_PER_DOCUMENT the document is refused
    as a whole, saying how many it holds and what to do."""
    from handoff.core.intake import reading

    monkeypatch.setattr(reading, "MAX_PER_DOCUMENT", 5)
    for document in (
        json.dumps([0] * 6),
        json.dumps({"orders": [good_order(f"M-{n}") for n in range(6)]}),
        "order_id,customer_id\n" + "".join(f"M-{n},ALFKI\n" for n in range(6)),
    ):
        parse = parse_csv_orders if document.startswith("order_id") else parse_json_orders
        [whole] = parse(document)
        assert whole.data is None and "holds 6 orders; at most 5" in whole.problems[0]["message"]
    assert len(parse_json_orders(json.dumps([good_order(f"M-{n}") for n in range(5)]))) == 5


def test_one_order_with_a_hundred_thousand_problems_lists_twenty_and_counts_the_rest(db):
    from handoff.core.intake.door import MAX_REASONS

    order = good_order("K-1") | {f"extra{n}": n for n in range(100_000)}
    [refused] = submit_orders(parse_json_orders(json.dumps(order)), source="test").quarantined
    assert len(refused.reasons) == MAX_REASONS + 1
    assert refused.reasons[-1] == {
        "field": "document",
        "message": f"and {100_000 - MAX_REASONS:,} more problems like these",
    }


def test_a_csv_cell_is_read_as_json_would_read_it(db):
    """Digits of other scripts are not numbers, and control characters around a value are
    not trimmed away: JSON refuses both, and a CSV took "١٢" as 12 and "\\x1fU-2\\x1e" as U-2."""
    document = (
        "order_id,customer_id,order_date,due_date,product_id,quantity,unit_price,discount\n"
        "U-1,ALFKI,2024-03-01,2024-03-15,1,١٢,１８.５,0\n"
        "\x1fU-2\x1e,ALFKI,2024-03-01,2024-03-15,1,2,1.0,0\n"
        " U-3\t,ALFKI,2024-03-01,2024-03-15,1,2,1.0,0\n"
    )
    result = submit_orders(parse_csv_orders(document), source="test")
    assert result.accepted == ["U-3"] and len(result.quarantined) == 2
    reasons = {q.reference: " ".join(r["field"] + " " + r["message"] for r in q.reasons) for q in result.quarantined}
    assert "quantity" in reasons["U-1"] and "unit_price" in reasons["U-1"]
