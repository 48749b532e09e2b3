"""Work-in-progress review: what the team looks at in its daily or twice-daily meeting,
published as Prefect artifacts so the latest review is always one click away in the UI.

Steps:
1. Gather the review: queues, problem cases, jobs likely to be late, defect log, on-time %.
2. Reconstruct the backlog and the daily on-time % over the last days.
3. Draw the chart and save it as a PNG.
4. Publish the tables (queues, late jobs, problem cases, defects) as table artifacts.
5. Publish the summary with the on-time %, and the chart, as markdown artifacts.

The artifact keys are stable, so the UI's Artifacts page shows the latest of each:
wip-queues, wip-late-jobs, wip-problem-cases, wip-defects, wip-on-time (the summary) and
wip-chart. The chart is embedded in its markdown as a data: URI (Prefect's image artifact
only links to a publicly reachable URL); the PNG is also kept on disk.

The computations are in handoff.analytics.reports (plain functions, tested without Prefect).
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from handoff.analytics import reports
from handoff.core.db import session
from handoff.core.models import utcnow
from handoff.core.routing.eligibility import as_utc_naive

KEYS = {
    "queues": "wip-queues",
    "late_jobs": "wip-late-jobs",
    "problems": "wip-problem-cases",
    "defects": "wip-defects",
    "summary": "wip-on-time",
    "chart": "wip-chart",
}


class WipReviewOptions(BaseModel):
    now: datetime | None = Field(None, description="Review as of this UTC time (replays, tests); default: now.")
    chart_days: int = Field(reports.DEFAULT_CHART_DAYS, ge=1, le=90, description="Days of history in the chart.")
    waiting_minutes: float = Field(
        reports.DEFAULT_WAITING_MINUTES, ge=1, le=24 * 60,
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


@task(name="gather the review", cache_policy=NO_CACHE)
def gather_review(now: datetime, waiting_minutes: float) -> reports.WipReview:
    with session() as s:
        return reports.build_review(s, now, waiting_minutes=waiting_minutes)


@task(name="reconstruct the history", cache_policy=NO_CACHE)
def gather_history(now: datetime, days: int) -> reports.History:
    with session() as s:
        return reports.history(s, now, days=days)


@task(name="draw the chart", cache_policy=NO_CACHE)
def draw_chart(hist: reports.History, directory: Path | None, now: datetime) -> Path:
    return reports.save_chart(hist, directory, now)


@task(name="publish the tables", cache_policy=NO_CACHE)
def publish_tables(review: reports.WipReview, max_rows: int) -> dict[str, UUID]:
    tables = reports.display_tables(review, limit=max_rows)
    at = f"{review.now:%Y-%m-%d %H:%M} UTC"
    descriptions = {
        "queues": f"Work queues by team and work type: size, oldest, where they sit — {at}",
        "late_jobs": f"Jobs likely to be late, most urgent first ({len(review.late_jobs)}) — {at}",
        "problems": f"Problem cases, the action list ({len(review.problems)}) — {at}",
        "defects": f"Defect log: quality issues found internally ({len(review.defects)}) — {at}",
    }
    return {
        part: create_table_artifact(table=tables[part], key=KEYS[part], description=description)
        for part, description in descriptions.items()
    }


@task(name="publish the summary and the chart", cache_policy=NO_CACHE)
def publish_summary(review: reports.WipReview, chart: Path) -> dict[str, UUID]:
    at = f"{review.now:%Y-%m-%d %H:%M} UTC"
    png = base64.b64encode(chart.read_bytes()).decode("ascii")
    return {
        "summary": create_markdown_artifact(
            markdown=reports.summary_markdown(review) + f"\nChart: `{chart}`\n",
            key=KEYS["summary"],
            description=f"On-time task completion % and the review's headline — {at}",
        ),
        "chart": create_markdown_artifact(
            markdown=f"# Backlog and on-time % — {at}\n\n![backlog and on-time %](data:image/png;base64,{png})\n",
            key=KEYS["chart"],
            description=f"Backlog over time and on-time % per day — {at}",
        ),
    }


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
