"""The CLI shows what senders wrote as text: Rich markup in a value is not markup, a terminal
escape is shown as an escape, and a malformed Northwind row is quarantined, not fatal."""

import json
import re
import shutil
import sqlite3

import pytest
from hypothesis import given
from intake_payloads import SUMMARY
from intake_payloads import check_outcome
from intake_payloads import payloads
from intake_payloads import tally
from typer.testing import CliRunner

from handoff.cli.main import app
from handoff.core.settings import settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_prefect_server(monkeypatch):
    monkeypatch.setattr(settings, "prefect_ui_url", "http://127.0.0.1:9")  # nothing listens: store only


def an_order(order_id, **changes):
    return {
        "order_id": order_id,
        "customer_id": "ALFKI",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "lines": [{"product_id": 1, "quantity": 2, "unit_price": 18.0}],
        **changes,
    }


def hostile_escapes(output):
    """The senders' own control sequences, as a terminal would obey them (Rich's styling of its
    own output, when it decides the terminal takes colour, is not one of them)."""
    return [seq for seq in ("\x1b[2J", "\x1b]0;pwned", "\x07", "\x1b[31m", "\x00") if seq in output]


def test_markup_and_escapes_in_values_are_shown_as_text(db, tmp_path):
    path = tmp_path / "orders.json"
    path.write_text(
        json.dumps(
            [
                an_order("M-1", customer_name="[/bold] Tea [red]& Co", customer_id="NEW1"),  # valid: printable text
                an_order("M-2", customer_id="[/red]\x1b[2J\x1b]0;pwned\x07", colour="[bold]x"),
                {"order_id": "[/]", "lines": "[link=http://evil]"},
            ]
        )
    )
    submitted = runner.invoke(app, ["orders", "submit", str(path)])
    assert submitted.exception is None or isinstance(submitted.exception, SystemExit), submitted.exception
    assert submitted.exit_code == 1
    assert "accepted 1" in submitted.output and "quarantined 2" in submitted.output
    assert not hostile_escapes(submitted.output) and "\\u001b[2J" in submitted.output
    assert "[bold]x" in submitted.output or "colour" in submitted.output

    listed = runner.invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0, listed.output
    assert not hostile_escapes(listed.output) and "[/red]" in listed.output

    shown = runner.invoke(app, ["quarantine", "show", "1", "--save", str(tmp_path / "kept.bin")])
    assert shown.exit_code == 0, shown.output
    assert not hostile_escapes(shown.output) and "\\u001b[2J" in shown.output
    kept = (tmp_path / "kept.bin").read_bytes()
    assert b"\\u001b[2J" in kept  # the order's bytes as they were in the file (JSON-escaped there)


def test_a_file_of_any_bytes_is_quarantined_and_shown_safely(db, tmp_path):
    path = tmp_path / "orders.csv"
    raw = b"order_id,customer_id\r\nX-1,\x1b[31m\xff\xfe\x00\n"
    path.write_bytes(raw)
    submitted = runner.invoke(app, ["orders", "submit", str(path)])
    assert submitted.exit_code == 1 and "not UTF-8" in submitted.output
    shown = runner.invoke(app, ["quarantine", "show", "1", "--save", str(tmp_path / "kept.bin")])
    assert shown.exit_code == 0 and not hostile_escapes(shown.output) and "\\x1b[31m" in shown.output
    assert (tmp_path / "kept.bin").read_bytes() == raw


def test_import_northwind_quarantines_a_malformed_source_row(db, tmp_path):
    copy = tmp_path / "northwind.sqlite"
    shutil.copy(settings.northwind_path, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE Orders SET OrderDate = 12345 WHERE OrderID = 10249")  # a number, not a date
        conn.execute("UPDATE \"Order Details\" SET UnitPrice = 'abc' WHERE OrderID = 10250")
        conn.execute("UPDATE Orders SET CustomerID = NULL WHERE OrderID = 10251")
        conn.execute("UPDATE Products SET ProductName = X'00ff' WHERE ProductID = 77")  # a blob for a name
    result = runner.invoke(app, ["orders", "import-northwind", str(copy), "-n", "5"])
    assert result.exit_code == 0, result.output
    assert "accepted 2" in result.output and "quarantined 3" in result.output
    for text in ["10249", "order_date", "10250", "lines.0.unit_price", "10251", "customer_id"]:
        assert text in result.output
    listed = runner.invoke(app, ["quarantine", "list"])
    assert "northwind:products" in listed.output and "ProductName" in listed.output


# --- property: any file through `orders submit` ---------------------------------------------


@given(payload=payloads())
def test_any_file_through_orders_submit(db, tmp_path, payload):
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import Order

    kind, raw = payload
    path = tmp_path / f"payload.{kind}"
    path.write_bytes(raw)
    before = tally()
    result = runner.invoke(app, ["orders", "submit", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1)
    submitted, accepted, duplicates, quarantined = map(int, SUMMARY.search(result.output.replace("\n", " ")).groups())
    assert result.exit_code == (1 if quarantined else 0)
    duplicate_ids = re.findall(r"duplicate order (\S+): already received", result.output.replace("\n", " "))
    with session() as s:
        newest = (
            list(s.scalars(select(Order.id).order_by(Order.received_at.desc()).limit(accepted))) if accepted else []
        )
    assert check_outcome(before, submitted, newest, duplicate_ids, quarantined) == []
    assert len(duplicate_ids) == duplicates
