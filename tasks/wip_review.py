"""The work-in-progress review's steps: gather it from handoff's database, draw the chart, and
publish both as Prefect artifacts under stable keys (flows/wip_review.py is the procedure).

The artifact keys are stable, so the UI's Artifacts page shows the latest of each:
wip-queues, wip-late-jobs, wip-problem-cases, wip-defects, wip-on-time (the summary) and
wip-chart. The chart is embedded in its markdown as a data: URI (Prefect's image artifact
only links to a publicly reachable URL); the PNG is also kept on disk.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path
from uuid import UUID

from prefect.artifacts import create_markdown_artifact
from prefect.artifacts import create_table_artifact

from handoff.analytics import reports
from handoff.core.db import session
from tasks.steps import record_step

KEYS = {
    "queues": "wip-queues",
    "late_jobs": "wip-late-jobs",
    "problems": "wip-problem-cases",
    "defects": "wip-defects",
    "quotations": "wip-quotations",
    "summary": "wip-on-time",
    "chart": "wip-chart",
}


@record_step(name="gather the review")
def gather_review(now: datetime, waiting_minutes: float) -> reports.WipReview:
    with session() as s:
        return reports.build_review(s, now, waiting_minutes=waiting_minutes)


@record_step(name="reconstruct the history")
def gather_history(now: datetime, days: int) -> reports.History:
    with session() as s:
        return reports.history(s, now, days=days)


@record_step(name="draw the chart")
def draw_chart(hist: reports.History, directory: Path | None, now: datetime) -> Path:
    return reports.save_chart(hist, directory, now)


@record_step(name="publish the tables")
def publish_tables(review: reports.WipReview, max_rows: int) -> dict[str, UUID]:
    tables = reports.display_tables(review, limit=max_rows)
    at = f"{review.now:%Y-%m-%d %H:%M} UTC"
    descriptions = {
        "queues": f"Work queues by team and work type: size, oldest, where they sit — {at}",
        "late_jobs": f"Jobs likely to be late, most urgent first ({len(review.late_jobs)}) — {at}",
        "problems": f"Problem cases, the action list ({len(review.problems)}) — {at}",
        "defects": f"Defect log: quality issues found internally ({len(review.defects)}) — {at}",
        "quotations": f"Quotations: open by state, turnaround against its SLA, about to expire, conversion — {at}",
    }
    return {
        part: create_table_artifact(table=tables[part], key=KEYS[part], description=description)
        for part, description in descriptions.items()
    }


@record_step(name="publish the summary and the chart")
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
