"""Quotations in the work-in-progress review: requests and quotes by state, how long a request
takes to become a quote sent (against its SLA, in business hours), quotes about to expire, and
how many quotes become orders.

- open by state: requests not yet answered — requested, priced, awaiting-approval, sent
- turnaround: business hours from the request received to its first quote sent; on time when
  within HANDOFF_QUOTE_TURNAROUND_HOURS
- about to expire: quotes with the customer whose validity ends within `expiring_days`
- conversion: accepted ÷ (accepted + declined + expired), of the quotes that reached an end
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.analytics.reports.common import fmt_pct
from handoff.analytics.reports.common import pct
from handoff.core import sla
from handoff.core.models import OPEN_QUOTE_STATES
from handoff.core.models import Quote
from handoff.core.models import QuoteRequest
from handoff.core.models import QuoteState
from handoff.core.settings import settings

DEFAULT_EXPIRING_DAYS = 7


@dataclass(slots=True)
class ExpiringQuote:
    request_id: str
    customer_id: str
    total: float
    valid_until: date
    days_left: int


@dataclass(slots=True)
class QuotationFigures:
    by_state: dict[str, int]  # every request, by its quotation's state
    requests: int
    sent: int  # quotes ever sent (the first version of each request)
    accepted: int
    declined: int
    expired: int
    turnaround_sla_hours: float
    turnaround_hours: list[float] = field(default_factory=list)  # business hours, request → sent
    sent_on_time: int = 0
    expiring: list[ExpiringQuote] = field(default_factory=list)

    @property
    def open_by_state(self) -> dict[str, int]:
        return {str(s): self.by_state.get(str(s), 0) for s in OPEN_QUOTE_STATES}

    @property
    def conversion_pct(self) -> float | None:
        return pct(self.accepted, self.accepted + self.declined + self.expired)

    @property
    def on_time_pct(self) -> float | None:
        return pct(self.sent_on_time, len(self.turnaround_hours))

    @property
    def median_turnaround_hours(self) -> float | None:
        return statistics.median(self.turnaround_hours) if self.turnaround_hours else None


def quotations(s: Session, now: datetime, expiring_days: int = DEFAULT_EXPIRING_DAYS) -> QuotationFigures:
    """The quotation figures as of `now` (naive UTC)."""
    requests = list(s.scalars(select(QuoteRequest)))
    by_state = Counter(str(r.status) for r in requests)
    sla_hours = settings.quote_turnaround_hours
    figures = QuotationFigures(
        by_state=dict(by_state),
        requests=len(requests),
        sent=sum(1 for r in requests if r.sent_at is not None),
        accepted=by_state.get(QuoteState.ACCEPTED, 0),
        declined=by_state.get(QuoteState.DECLINED, 0),
        expired=by_state.get(QuoteState.EXPIRED, 0),
        turnaround_sla_hours=sla_hours,
    )
    for r in requests:
        if r.sent_at is not None:
            hours = max(0.0, sla.business_seconds_between(r.received_at, r.sent_at)) / 3600
            figures.turnaround_hours.append(hours)
            figures.sent_on_time += hours <= sla_hours
    today = sla.business_today(now)  # the day quotes expire after (not the UTC date)
    horizon = today + timedelta(days=expiring_days)
    for request, quote in s.execute(
        select(QuoteRequest, Quote)
        .join(Quote, Quote.request_id == QuoteRequest.id)
        .where(QuoteRequest.status == QuoteState.SENT, Quote.status == QuoteState.SENT, Quote.valid_until <= horizon)
        .order_by(Quote.valid_until)
    ):
        figures.expiring.append(
            ExpiringQuote(
                request.id, request.customer_id, quote.total, quote.valid_until, (quote.valid_until - today).days
            )
        )
    return figures


def quotation_rows(q: QuotationFigures) -> list[dict[str, str | int]]:
    """The figures as rows of short text (the CLI's table, the flow's table artifact)."""
    median = q.median_turnaround_hours
    rows: list[dict[str, str | int]] = [
        {"figure": f"open: {state}", "value": n} for state, n in q.open_by_state.items()
    ]
    rows += [
        {"figure": "requests", "value": q.requests},
        {"figure": "sent", "value": q.sent},
        {"figure": "accepted", "value": q.accepted},
        {"figure": "declined", "value": q.declined},
        {"figure": "expired", "value": q.expired},
        {"figure": "quote-to-order conversion", "value": fmt_pct(q.conversion_pct)},
        {
            "figure": "turnaround request → sent (median, business hours)",
            "value": "n/a" if median is None else f"{median:.1f} h",
        },
        {
            "figure": f"sent within the SLA of {q.turnaround_sla_hours:g} business hours",
            "value": f"{fmt_pct(q.on_time_pct)} ({q.sent_on_time} of {len(q.turnaround_hours)})",
        },
        {"figure": "about to expire", "value": len(q.expiring)},
    ]
    return rows


def expiring_rows(q: QuotationFigures) -> list[dict[str, str | int]]:
    return [
        {
            "quote": e.request_id,
            "customer": e.customer_id,
            "total": f"{e.total:,.2f}",
            "valid until": str(e.valid_until),
            "days left": e.days_left,
        }
        for e in q.expiring
    ]


def quotation_markdown(q: QuotationFigures) -> list[str]:
    open_now = ", ".join(f"{n} {state}" for state, n in q.open_by_state.items() if n) or "none"
    median = q.median_turnaround_hours
    return [
        f"- Quotations open: **{sum(q.open_by_state.values())}** ({open_now}); {len(q.expiring)} about to expire",
        f"- Requests {q.requests} · sent {q.sent} · accepted {q.accepted} · declined {q.declined} · "
        f"expired {q.expired} · quote-to-order **{fmt_pct(q.conversion_pct)}**",
        f"- Turnaround request → sent: median {'n/a' if median is None else f'{median:.1f} h'}, "
        f"**{fmt_pct(q.on_time_pct)}** within {q.turnaround_sla_hours:g} business hours",
    ]


__all__ = [
    "ExpiringQuote",
    "QuotationFigures",
    "quotations",
]
