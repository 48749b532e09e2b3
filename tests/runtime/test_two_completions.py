"""Two people complete the same waiting step at the same moment, from two processes: exactly one
answer is taken; the other person is told who completed it and when, and the refused attempt is
in the audit log. Prefect resumes a paused run once (one server transaction; the next resume is
answered ABORT) and the handoff database closes the item once (a conditional UPDATE)."""

from __future__ import annotations

import contextvars
import json
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client

from handoff.core.db import session
from handoff.core.models import AuditEvent, WorkItem
from handoff.core.settings import settings

pytestmark = pytest.mark.usefixtures("prefect_harness", "catalogue", "reps", "sandbox")

SUPERVISOR = "Andrew Fuller"


def complete_in_a_process(database_url: str, api_url: str, item_id: int, answer: dict, barrier, results) -> None:
    """One person, in their own process: wait for the other, then answer."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings.database_url = database_url
    from handoff.core.routing.router import AlreadyCompleted, NotAllowed
    from handoff.runtime.steps import complete_step

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        barrier.wait(timeout=120)
        try:
            complete_step(item_id, answer, wait_seconds=60)
            results.put((answer["completed_by"], "completed", None))
        except AlreadyCompleted as lost:
            results.put((answer["completed_by"], "already-completed", [lost.completed_by, str(lost), ]))
        except NotAllowed as refused:
            results.put((answer["completed_by"], "refused", [None, str(refused)]))
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results.put((answer["completed_by"], type(exc).__name__, [None, str(exc)]))


def wait_until_paused(order_id: str, timeout: float = 90):
    from handoff.runtime.steps import waiting_steps

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for step in waiting_steps():
            if step.order_id == order_id:
                with get_client(sync_client=True) as client:
                    if client.read_flow_run(UUID(step.flow_run_id)).state.is_paused():
                        return step
        time.sleep(0.2)
    raise AssertionError(f"no step of order {order_id} is waiting")


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_two_people_complete_one_step_at_once_one_wins_the_other_is_told(db, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    from flows.order_entry import order_entry
    from handoff.core.intake import submit_orders

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    order = {"order_id": "RACE-1", "customer_id": "AROUT", "order_date": "2024-03-01", "due_date": "2024-03-15",
             "lines": [{"product_id": 1, "quantity": 400, "unit_price": 18.0, "discount": 0}]}
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == ["RACE-1"]

    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(contextvars.copy_context().run, order_entry, "RACE-1", return_state=True)
        step = wait_until_paused("RACE-1")
        people = [step.assignee, SUPERVISOR]
        answers = [{"completed_by": who, "decision": decision, "note": f"by {who}"}
                   for who, decision in zip(people, ["approve", "reject"])]
        processes = [spawn.Process(target=complete_in_a_process,
                                   args=(db, PREFECT_API_URL.value(), step.item_id, a, barrier, results))
                     for a in answers]
        for p in processes:
            p.start()
        outcomes = {}
        for _ in processes:
            who, what, detail = results.get(timeout=180)
            outcomes[who] = (what, detail)
        for p in processes:
            p.join(timeout=30)
        assert run.result(timeout=120).is_completed()

    winners = [who for who, (what, _) in outcomes.items() if what == "completed"]
    losers = [who for who in outcomes if who not in winners]
    assert len(winners) == 1, outcomes
    (winner,), (loser,) = winners, losers
    what, (named, message) = outcomes[loser]
    assert what == "already-completed", outcomes
    assert named == winner and winner in message and " at " in message  # who and when

    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert item.state == "completed" and item.completed_by == winner
        assert item.answer["note"] == f"by {winner}"  # the winner's answer is the one used
        refused = [e for e in s.query(AuditEvent).filter_by(entity="work_item", entity_id=str(step.item_id),
                                                             action="completion-refused")]
        completed = [e for e in s.query(AuditEvent).filter_by(entity="work_item", entity_id=str(step.item_id),
                                                               action="completed")]
    assert [e.actor for e in completed] == [winner]
    assert [e.actor for e in refused] == [loser]
    assert winner in refused[0].details["reason"]


def test_an_answer_that_reaches_the_run_second_is_aborted_and_refused_with_who_won(db, monkeypatch):
    """The moment the race turns on, made certain: this person read the run as paused for the form
    just before the other answer resumed it. Prefect answers the late resume ABORT; the person is
    told who completed the step and when, and the attempt is audited."""
    from prefect.client.orchestration import get_client

    from flows.order_entry import order_entry
    from handoff.core.intake import submit_orders
    from handoff.core.routing.router import AlreadyCompleted
    from handoff.runtime import prefect_patches, steps

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    order = {"order_id": "RACE-2", "customer_id": "AROUT", "order_date": "2024-03-01", "due_date": "2024-03-15",
             "lines": [{"product_id": 1, "quantity": 400, "unit_price": 18.0, "discount": 0}]}
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == ["RACE-2"]
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(contextvars.copy_context().run, order_entry, "RACE-2", return_state=True)
        step = wait_until_paused("RACE-2")
        with get_client(sync_client=True) as client:
            keyset = prefect_patches.pause_keyset(client.read_flow_run(UUID(step.flow_run_id)).state)
            while not client.filter_flow_run_input(UUID(step.flow_run_id), keyset["schema"], 1, set()):
                time.sleep(0.2)
            first = {"completed_by": step.assignee, "decision": "approve", "note": "first"}
            assert client.resume_flow_run(UUID(step.flow_run_id), run_input=first).status.value == "ACCEPT"
        monkeypatch.setattr(steps, "_keyset_if_waiting", lambda *args: keyset)  # read just before
        with pytest.raises(AlreadyCompleted) as lost:
            steps.complete_step(step.item_id, {"completed_by": SUPERVISOR, "decision": "reject", "note": "second"})
        assert run.result(timeout=120).is_completed()
    assert lost.value.completed_by == step.assignee and lost.value.completed_at is not None
    with session() as s:
        assert s.get(WorkItem, step.item_id).answer["note"] == "first"
        (refused,) = s.query(AuditEvent).filter_by(entity_id=str(step.item_id), action="completion-refused").all()
    assert refused.actor == SUPERVISOR and step.assignee in refused.details["reason"]
