"""The wip-review flow publishes the review as artifacts under stable keys, on a Prefect server."""

import json
from datetime import datetime
from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter
from prefect.client.schemas.filters import ArtifactFilterFlowRunId
from prefect.client.schemas.filters import ArtifactFilterKey

from flows.wip_review import KEYS
from flows.wip_review import WipReviewOptions
from flows.wip_review import wip_review
from handoff.core.db import session
from handoff.core.models import Defect
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import WorkItem

pytestmark = pytest.mark.usefixtures("prefect_harness")

NOW = datetime(2026, 3, 11, 14, 0)  # a Wednesday
H = timedelta(hours=1)


@pytest.fixture
def small_office(db):
    with session() as s:
        nancy = Worker(name="Nancy Davolio", open_items=1, skills=[WorkerSkill(skill="order-entry", level=3)])
        s.add(nancy)
        s.add_all(
            [
                WorkItem(
                    work_type="order-approval",
                    title="approve A",
                    step_key="a",
                    required_skills={"order-entry": 2},
                    due_at=NOW - H,
                    effort_seconds=600,
                    created_at=NOW - 3 * H,
                    state="assigned",
                    assignee=nancy,
                ),
                WorkItem(
                    work_type="order-approval",
                    title="approve B",
                    step_key="b",
                    required_skills={"order-entry": 2},
                    due_at=NOW + 24 * H,
                    effort_seconds=600,
                    created_at=NOW - 2 * H,
                ),
                WorkItem(
                    work_type="order-approval",
                    title="approve C",
                    step_key="c",
                    required_skills={"order-entry": 2},
                    due_at=NOW - 2 * H,
                    effort_seconds=600,
                    created_at=NOW - 4 * H,
                    state="completed",
                    completed_at=NOW - 3 * H,
                ),
                WorkItem(
                    work_type="order-approval",
                    title="approve D",
                    step_key="d",
                    required_skills={"order-entry": 2},
                    due_at=NOW - 2 * H,
                    effort_seconds=600,
                    created_at=NOW - 4 * H,
                    state="completed",
                    completed_at=NOW - H,
                ),
                Defect(
                    key="defect-1",
                    found_at=NOW - H,
                    order_id=None,
                    work_type="billing",
                    checklist="invoice",
                    failures=[{"rule": "totals_match"}],
                ),
            ]
        )


def test_the_review_is_published_as_artifacts(small_office, tmp_path):
    state = wip_review(WipReviewOptions(now=NOW, chart_days=3, chart_dir=tmp_path), return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["on_time_today_pct"] == 50.0 and result["in_queues"] == 2 and result["late_jobs"] == 1
    assert (tmp_path / "wip-review-20260311-1400.png").read_bytes()[:4] == b"\x89PNG"

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=list(KEYS.values())),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
            )
        )
    assert run.name == "wip-review-2026-03-11-1400"
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {
        "wip-queues",
        "wip-late-jobs",
        "wip-problem-cases",
        "wip-defects",
        "wip-quotations",
        "wip-on-time",
        "wip-chart",
    }

    queues = json.loads(by_key["wip-queues"].data)
    assert queues == [
        {
            "team": "customer service",
            "work type": "order-approval",
            "size": 2,
            "oldest": "3.0 h",
            "where": "1 unassigned, Nancy Davolio 1",
            "escalated": 0,
            "past due": 1,
        }
    ]
    late = json.loads(by_key["wip-late-jobs"].data)
    assert [(j["kind"], j["title"], j["why"]) for j in late] == [("work item", "approve A", "overdue by 1.0 h")]
    problems = json.loads(by_key["wip-problem-cases"].data)
    assert [p["problems"] for p in problems] == ["past due", "no eligible rep"]
    defects = json.loads(by_key["wip-defects"].data)
    assert [(d["checklist"], d["failed rules"], d["resolved"]) for d in defects] == [("invoice", "totals match", "no")]

    assert by_key["wip-on-time"].type == "markdown"
    assert "On time today: 50.0 %" in by_key["wip-on-time"].data
    assert by_key["wip-chart"].type == "markdown"
    assert "](data:image/png;base64,iVBORw0KGgo" in by_key["wip-chart"].data
