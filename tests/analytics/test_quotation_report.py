"""Quotations in the WIP review and `handoff report`: open by state, turnaround request → sent
against its SLA, quotes about to expire, quote-to-order conversion."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from quote_records import sent_quote
from typer.testing import CliRunner

from handoff.analytics import reports
from handoff.cli.main import app
from handoff.core.db import session
from handoff.core.intake import submit_quote_requests
from handoff.core.models import QuoteRequest
from handoff.core.quotes import answer_quote
from handoff.core.quotes import expire_due_quotes


def test_figures_by_state_turnaround_expiring_and_conversion(db, monkeypatch):
    now = datetime.now(UTC).replace(tzinfo=None)
    for n in range(5):
        sent_quote(f"S-{n}", valid_days=3 if n == 4 else 30)
    rfq = {"request_id": "S-new", "customer_id": "ALFKI", "request_date": "2030-03-01", "due_date": "2030-04-15",
           "lines": [{"product_id": 1, "quantity": 1}]}  # fmt: skip
    submit_quote_requests([(json.dumps(rfq), rfq)], source="test", announce=False)
    with session() as s:  # sent: S-0 within the day it came; S-1 four business days later
        for n, hours in [(0, 2), (1, 60), (2, 3), (3, 4), (4, 5)]:
            r = s.get(QuoteRequest, f"S-{n}")
            r.received_at = datetime(2030, 3, 4, 9, 0)
            r.sent_at = datetime(2030, 3, 4, 9, 0) + timedelta(hours=hours)
    answer_quote("S-0", accept=True, by="http")
    answer_quote("S-1", accept=True, by="http")
    answer_quote("S-2", accept=False, by="http")
    expire_due_quotes(now.date() + timedelta(days=60))  # S-3, S-4 expire
    sent_quote("S-5", valid_days=2)  # about to expire
    with session() as s:
        q = reports.build_review(s, now).quotations
    assert q.open_by_state == {"requested": 1, "priced": 0, "awaiting-approval": 0, "sent": 1}
    assert (q.requests, q.accepted, q.declined, q.expired) == (7, 2, 1, 2)
    assert q.conversion_pct == 40.0
    assert [e.request_id for e in q.expiring] == ["S-5"]
    assert len(q.turnaround_hours) == 5 and q.sent_on_time == 4  # 60 clock hours is 32 business hours: over 16


def test_handoff_report_shows_the_quotations(db):
    sent_quote("S-9", valid_days=2)
    shown = CliRunner().invoke(app, ["report"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "Quotations" in shown.output and "quote-to-order conversion" in shown.output
    assert "Quotes about to expire" in shown.output and "S-9" in shown.output
    data = json.loads(CliRunner().invoke(app, ["report", "--json"]).output)
    assert data["quotations"]["by_state"] == {"sent": 1}


def test_days_left_count_the_business_s_date_not_the_utc_one(db, monkeypatch):
    """At 03:00 UTC it is still the day before in Los Angeles: a quote valid through that day
    is valid (the expiry leaves it), and has 0 days left, not -1."""
    from datetime import date

    from sqlalchemy import select

    from handoff.core import sla
    from handoff.core.models import Quote

    hours = {"start": "09:00", "end": "17:00", "days": "01234", "timezone": "America/Los_Angeles"}
    monkeypatch.setenv("HANDOFF_SLA_CONFIG", json.dumps({"business_hours": hours}))
    sla.reload_config()
    try:
        now = datetime(2026, 11, 25, 3, 0)  # 19:00 on Tuesday 24 November in Los Angeles
        sent_quote("LA-1")
        with session() as s:
            s.scalars(select(Quote)).one().valid_until = date(2026, 11, 24)
        assert expire_due_quotes(sla.business_today(now)) == []
        with session() as s:
            figures = reports.build_review(s, now).quotations
        assert [(e.request_id, e.days_left) for e in figures.expiring] == [("LA-1", 0)]
    finally:
        monkeypatch.delenv("HANDOFF_SLA_CONFIG")
        sla.reload_config()
