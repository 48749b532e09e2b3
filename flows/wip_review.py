"""Work-in-progress review: what the team looks at in its daily or twice-daily meeting,
published as Prefect artifacts so the latest review is always one click away in the UI.

Steps:
1. Gather the review: queues, problem cases, jobs likely to be late, defect log, on-time %,
   quotations.
2. Reconstruct the backlog and the daily on-time % over the last days.
3. Draw the chart and save it as a PNG.
4. Publish the tables (queues, late jobs, problem cases, defects, quotations) as table artifacts.
5. Publish the summary with the on-time %, and the chart, as markdown artifacts.

The artifact keys are stable, so the UI's Artifacts page shows the latest of each:
wip-queues, wip-late-jobs, wip-problem-cases, wip-defects, wip-quotations, wip-on-time (the summary) and
wip-chart (`KEYS`; the steps are in tasks/wip_review.py).

The computations are in handoff.analytics.reports (plain functions, tested without Prefect).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel
from pydantic import Field

from handoff.analytics import reports
from handoff.core.clock import as_utc_naive
from handoff.core.models import utcnow
from tasks.wip_review import KEYS
from tasks.wip_review import draw_chart
from tasks.wip_review import gather_history
from tasks.wip_review import gather_review
from tasks.wip_review import publish_summary
from tasks.wip_review import publish_tables

__all__ = ["KEYS", "WipReviewOptions", "wip_review"]


class WipReviewOptions(BaseModel):
    now: datetime | None = Field(None, description="Review as of this UTC time (replays, tests); default: now.")
    chart_days: int = Field(reports.DEFAULT_CHART_DAYS, ge=1, le=90, description="Days of history in the chart.")
    waiting_minutes: float = Field(
        reports.DEFAULT_WAITING_MINUTES,
        ge=1,
        le=24 * 60,
        description="An unassigned item waiting longer than this is a problem case.",
    )
    chart_dir: Path | None = Field(None, description="Where the chart PNG is saved; default <HANDOFF_HOME>/reports.")
    max_rows: int = Field(200, ge=1, le=2000, description="Rows per table artifact (the longest tables are capped).")


def _run_name() -> str:
    options = flow_run.parameters.get("options")
    if isinstance(options, dict):
        options = WipReviewOptions.model_validate(options)
    now = options.now if isinstance(options, WipReviewOptions) and options.now else utcnow()
    return f"wip-review-{as_utc_naive(now):%Y-%m-%d-%H%M}"


@flow(name="wip-review", flow_run_name=_run_name, log_prints=True)
def wip_review(options: WipReviewOptions | None = None) -> dict[str, Any]:
    """The work-in-progress review, published as artifacts; returns the headline numbers."""
    options = options or WipReviewOptions()
    now = as_utc_naive(options.now) if options.now else utcnow()

    # 1. Gather the review
    review = gather_review(now, options.waiting_minutes)

    # 2. Reconstruct the backlog and daily on-time % over the last days
    hist = gather_history(now, options.chart_days)

    # 3. Draw the chart
    chart = draw_chart(hist, options.chart_dir, now)

    # 4. Publish the tables
    publish_tables(review, options.max_rows)

    # 5. Publish the summary with the on-time %, and the chart
    publish_summary(review, chart)

    overall = review.overall
    return {
        "at": now.isoformat(),
        "on_time_today_pct": overall.today_pct,
        "on_time_week_pct": overall.week_pct,
        "in_queues": sum(q.size for q in review.queues),
        "late_jobs": len(review.late_jobs),
        "problem_cases": len(review.problems),
        "defects": len(review.defects),
        "chart": str(chart),
    }


if __name__ == "__main__":
    wip_review()
