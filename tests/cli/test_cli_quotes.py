"""`handoff quotes request | answer | list` from the terminal."""

from __future__ import annotations

from quote_records import sent_quote
from sqlalchemy import func
from sqlalchemy import select
from typer.testing import CliRunner

from handoff.cli.main import app
from handoff.core.db import session
from handoff.core.models import Order
from handoff.core.models import QuoteRequest

runner = CliRunner()


def test_request_answer_and_list(db, tmp_path):
    path = tmp_path / "rfq.json"
    path.write_text(
        '{"requests": [{"request_id": "K-1", "customer_id": "ALFKI", "request_date": "2030-03-01",'
        ' "due_date": "2030-04-15", "lines": [{"product_id": 1, "quantity": 2}]},'
        ' {"request_id": "K-2", "customer_id": "[bold]x", "request_date": "2030-03-01",'
        ' "due_date": "2030-04-15", "lines": [{"product_id": 1, "quantity": 0}]}]}'
    )
    submitted = runner.invoke(app, ["quotes", "request", str(path)])
    assert submitted.exit_code == 1  # one was quarantined
    assert "quarantined request K-2" in submitted.output and "lines.0.quantity" in submitted.output
    assert "submitted 2 · accepted 1 · duplicates 0 · quarantined 1" in submitted.output
    with session() as s:
        assert s.get(QuoteRequest, "K-1").status == "requested"

    refused = runner.invoke(app, ["quotes", "answer", "K-1", "--accept"])
    assert refused.exit_code == 1 and "has not been sent to the customer yet" in refused.output

    sent_quote("K-3")
    accepted = runner.invoke(app, ["quotes", "answer", "K-3", "--accept"])
    assert accepted.exit_code == 0 and "quote K-3 accepted: order RFQ-K-3" in accepted.output
    again = runner.invoke(app, ["quotes", "answer", "K-3", "--accept"])
    assert again.exit_code == 0 and "already recorded" in again.output
    for unclear in (["--accept", "--decline"], ["--decline", "--accept"], []):  # not the last flag's answer
        slip = runner.invoke(app, ["quotes", "answer", "K-3", *unclear])
        assert slip.exit_code == 2 and "either --accept or --decline" in slip.output
    declined = runner.invoke(app, ["quotes", "answer", "K-3", "--decline"])
    assert declined.exit_code == 1 and "was already accepted" in declined.output
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1

    listed = runner.invoke(app, ["quotes", "list"], terminal_width=200)
    assert "K-3" in listed.output and "accepted" in listed.output and "RFQ-K-3" in listed.output


def test_a_state_that_does_not_exist_is_refused_not_an_empty_list(db):
    r = runner.invoke(app, ["quotes", "list", "--state", "bogus"])
    assert r.exit_code == 2 and "not a state" in r.output and "awaiting-approval" in " ".join(r.output.split())
    assert runner.invoke(app, ["quotes", "list", "--state", "sent"]).exit_code == 0
