"""The whole review, and what people and machines read of it (tables, Markdown, JSON)."""

import math
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import fields
from dataclasses import is_dataclass
from datetime import date
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from handoff.analytics.reports.common import DEFAULT_DEFECT_DAYS
from handoff.analytics.reports.common import DEFAULT_ON_TIME_DAYS
from handoff.analytics.reports.common import DEFAULT_REFUSAL_HOURS
from handoff.analytics.reports.common import DEFAULT_WAITING_MINUTES
from handoff.analytics.reports.common import _clock
from handoff.analytics.reports.common import _now
from handoff.analytics.reports.common import fmt_duration
from handoff.analytics.reports.common import fmt_pct
from handoff.analytics.reports.lateness import DefectRow
from handoff.analytics.reports.lateness import LateJob
from handoff.analytics.reports.lateness import OnTime
from handoff.analytics.reports.lateness import defect_log
from handoff.analytics.reports.lateness import late_jobs
from handoff.analytics.reports.lateness import on_time
from handoff.analytics.reports.queues import ProblemCase
from handoff.analytics.reports.queues import QueueRow
from handoff.analytics.reports.queues import problem_cases
from handoff.analytics.reports.queues import queues
from handoff.analytics.reports.quotations import QuotationFigures
from handoff.analytics.reports.quotations import expiring_rows
from handoff.analytics.reports.quotations import quotation_markdown
from handoff.analytics.reports.quotations import quotation_rows
from handoff.analytics.reports.quotations import quotations
from handoff.core import sla

# --- the whole review ------------------------------------------------------------------------


@dataclass(slots=True)
class WipReview:
    now: datetime
    timezone: str  # the zone "today" is read in
    queues: list[QueueRow]
    problems: list[ProblemCase]
    late_jobs: list[LateJob]
    defects: list[DefectRow]
    on_time: list[OnTime]  # "all" first, then by work type
    quotations: QuotationFigures | None = None  # requests for quotation (reports/quotations.py)

    @property
    def overall(self) -> OnTime:
        return self.on_time[0]

    def frames(self) -> dict[str, pd.DataFrame]:
        """Each part as a DataFrame (one row per dataclass), for analysis or export."""
        parts = {
            "queues": self.queues,
            "problems": self.problems,
            "late_jobs": self.late_jobs,
            "defects": self.defects,
            "on_time": self.on_time,
        }
        kinds = (QueueRow, ProblemCase, LateJob, DefectRow, OnTime)
        return {
            name: pd.DataFrame([asdict(r) for r in rows], columns=[f.name for f in fields(kind)])
            for (name, rows), kind in zip(parts.items(), kinds)
        }


def build_review(
    s: Session,
    now: datetime | None = None,
    *,
    clock: sla.BusinessClock | None = None,
    waiting_minutes: float = DEFAULT_WAITING_MINUTES,
    on_time_days: int = DEFAULT_ON_TIME_DAYS,
    defect_days: int = DEFAULT_DEFECT_DAYS,
    refusal_hours: float = DEFAULT_REFUSAL_HOURS,
) -> WipReview:
    """Everything the work-in-progress meeting looks at, as of `now`."""
    now = _now(now)
    clock = _clock(clock)
    return WipReview(
        now=now,
        timezone=str(clock.tz),
        queues=queues(s, now),
        problems=problem_cases(s, now, waiting_minutes=waiting_minutes, refusal_hours=refusal_hours),
        late_jobs=late_jobs(s, now, clock=clock),
        defects=defect_log(s, now, days=defect_days),
        on_time=on_time(s, now, days=on_time_days, clock=clock),
        quotations=quotations(s, now),
    )


# --- presenting a review ---------------------------------------------------------------------


def _when(at: datetime | None) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M}"


def display_tables(review: WipReview, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The review as rows of short text, one table per part; the CLI prints them and the flow
    publishes them as table artifacts. `limit` caps the rows of the long tables."""
    cap = (lambda rows: rows[:limit]) if limit else (lambda rows: rows)
    return {
        "queues": [
            {
                "team": q.team,
                "work type": q.work_type,
                "size": q.size,
                "oldest": fmt_duration(q.oldest_age_seconds),
                "where": q.where_text,
                "escalated": q.escalated,
                "past due": q.past_due,
            }
            for q in review.queues
        ],
        "late_jobs": [
            {
                "kind": j.kind,
                "ref": j.ref,
                "title": j.title,
                "team": j.team or "",
                "status": j.status,
                "holder": j.holder or "",
                "due (UTC)": _when(j.due_at),
                "why": j.reason,
            }
            for j in cap(review.late_jobs)
        ],
        "problems": [
            {
                "subject": p.subject,
                "problems": ", ".join(p.problems),
                "work type": p.work_type or "",
                "holder": p.holder or "",
                "due (UTC)": _when(p.due_at),
                "details": "\n".join(p.details),
            }
            for p in cap(review.problems)
        ],
        "defects": [
            {
                "found (UTC)": _when(d.found_at),
                "defect": d.id,
                "order": d.order_id or "",
                "work type": d.work_type,
                "checklist": d.checklist,
                "failed rules": d.failed_rules,
                "fix item": "" if d.fix_item_id is None else f"{d.fix_item_id} ({d.fix_item_state})",
                "resolved": f"yes, {_when(d.resolved_at)} by {d.resolved_by or '?'}" if d.resolved else "no",
            }
            for d in cap(review.defects)
        ],
        "on_time": [
            {
                "scope": t.scope,
                "today": fmt_pct(t.today_pct),
                "today done": t.today_completed,
                "today on time": t.today_on_time,
                f"{t.days} days": fmt_pct(t.week_pct),
                f"{t.days} days done": t.week_completed,
                f"{t.days} days on time": t.week_on_time,
            }
            for t in review.on_time
        ],
        "quotations": quotation_rows(review.quotations) if review.quotations else [],
        "expiring_quotes": cap(expiring_rows(review.quotations)) if review.quotations else [],
    }


def summary_markdown(review: WipReview, chart_uri: str | None = None) -> str:
    """The headline for the meeting: on-time %, queue totals, what needs action."""
    t = review.overall
    in_queues = sum(q.size for q in review.queues)
    unassigned = sum(q.unassigned for q in review.queues)
    overdue = sum(1 for j in review.late_jobs if j.overdue)
    open_defects = sum(1 for d in review.defects if not d.resolved)
    lines = [
        f"# Work-in-progress review — {review.now:%Y-%m-%d %H:%M} UTC",
        "",
        f"**On time today: {fmt_pct(t.today_pct)}** ({t.today_on_time} of {t.today_completed} completed) · "
        f"last {t.days} days: **{fmt_pct(t.week_pct)}** ({t.week_on_time} of {t.week_completed}); target 90 %.",
        "",
        f"- Work in queues: **{in_queues}** items in {len(review.queues)} queues, {unassigned} unassigned",
        f"- Jobs likely to be late: **{len(review.late_jobs)}** ({overdue} already overdue)",
        f"- Problem cases: **{len(review.problems)}**",
        f"- Defects in the log: {len(review.defects)} ({open_defects} open)",
        "",
    ]
    by_type = review.on_time[1:]
    if by_type:
        lines += [f"| work type | today | done | last {t.days} days | done |", "|---|---|---|---|---|"]
        lines += [
            f"| {o.scope} | {fmt_pct(o.today_pct)} | {o.today_completed} | {fmt_pct(o.week_pct)} | {o.week_completed} |"
            for o in by_type
        ]
        lines.append("")
    if review.quotations is not None:
        lines += quotation_markdown(review.quotations) + [""]
    if chart_uri:
        lines += [f"![backlog and on-time %]({chart_uri})", ""]
    return "\n".join(lines)


def to_jsonable(value: Any) -> Any:
    """A review (or any part of it) as JSON-ready data: datetimes in ISO 8601 (naive UTC)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


__all__ = ["WipReview", "build_review", "display_tables", "summary_markdown", "to_jsonable"]
