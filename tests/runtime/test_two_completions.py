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
from handoff.core.models import AuditEvent
from handoff.core.models import WorkItem
from handoff.core.settings import settings

pytestmark = pytest.mark.usefixtures("prefect_harness", "catalogue", "reps", "sandbox")

SUPERVISOR = "Andrew Fuller"


def complete_in_a_process(
    database_url: str, home: str, api_url: str, item_id: int, answer: dict, barrier, results
) -> None:
    """One person, in their own process: wait for the other, then answer. The process shares the
    stack's home (and so the secret that signs completions), as every process of a stack does."""
    from pathlib import Path

    from prefect.settings import PREFECT_API_URL
    from prefect.settings import temporary_settings

    settings.database_url, settings.home = database_url, Path(home)
    from handoff.core.routing.router import AlreadyCompleted
    from handoff.core.routing.router import NotAllowed
    from handoff.runtime.steps import complete_step

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        barrier.wait(timeout=120)
        try:
            complete_step(item_id, answer, wait_seconds=60)
            results.put((answer["completed_by"], "completed", None))
        except AlreadyCompleted as lost:
            results.put(
                (
                    answer["completed_by"],
                    "already-completed",
                    [
                        lost.completed_by,
                        str(lost),
                    ],
                )
            )
        except NotAllowed as refused:
            results.put((answer["completed_by"], "refused", [None, str(refused)]))
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results.put((answer["completed_by"], type(exc).__name__, [None, str(exc)]))


def wait_until_paused(order_id: str, timeout: float = 90, other_than: str | None = None):
    from handoff.runtime.steps import waiting_steps

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for step in waiting_steps():
            if step.order_id == order_id and step.input_key != other_than:
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
    order = {
        "order_id": "RACE-1",
        "customer_id": "AROUT",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "lines": [{"product_id": 1, "quantity": 400, "unit_price": 18.0, "discount": 0}],
    }
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == ["RACE-1"]

    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(contextvars.copy_context().run, order_entry, "RACE-1", return_state=True)
        step = wait_until_paused("RACE-1")
        people = [step.assignee, SUPERVISOR]
        answers = [
            {"completed_by": who, "decision": decision, "note": f"by {who}"}
            for who, decision in zip(people, ["approve", "reject"])
        ]
        processes = [
            spawn.Process(
                target=complete_in_a_process,
                args=(db, str(settings.home), PREFECT_API_URL.value(), step.item_id, a, barrier, results),
            )
            for a in answers
        ]
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
        refused = [
            e
            for e in s.query(AuditEvent).filter_by(
                entity="work_item", entity_id=str(step.item_id), action="completion-refused"
            )
        ]
        completed = [
            e
            for e in s.query(AuditEvent).filter_by(entity="work_item", entity_id=str(step.item_id), action="completed")
        ]
    assert [e.actor for e in completed] == [winner]
    assert [e.actor for e in refused] == [loser]
    assert winner in refused[0].details["reason"]


def paused_for_its_form(pool: ThreadPoolExecutor, order_id: str):
    """A large order's run, started in `pool`, once it waits for its approval's form: the run,
    the waiting step and the run-input keys of its pause."""
    from flows.order_entry import order_entry
    from handoff.core.intake import submit_orders
    from handoff.runtime import prefect_patches

    order = {
        "order_id": order_id,
        "customer_id": "AROUT",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "lines": [{"product_id": 1, "quantity": 400, "unit_price": 18.0, "discount": 0}],
    }
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == [order_id]
    run = pool.submit(contextvars.copy_context().run, order_entry, order_id, return_state=True)
    step = wait_until_paused(order_id)
    with get_client(sync_client=True) as client:
        keyset = prefect_patches.pause_keyset(client.read_flow_run(UUID(step.flow_run_id)).state)
        while not client.filter_flow_run_input(UUID(step.flow_run_id), keyset["schema"], 1, set()):
            time.sleep(0.2)
    return run, step, keyset


def test_an_answer_that_reaches_the_run_second_is_aborted_and_refused_with_who_won(db, monkeypatch):
    """The moment the race turns on, made certain: this person read the run as paused for the form
    just before the other answer resumed it. Prefect answers the late resume ABORT; the person is
    told who completed the step and when, and the attempt is audited."""
    from handoff.core.identity import completion_proof
    from handoff.core.routing.router import AlreadyCompleted
    from handoff.runtime import steps

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    with ThreadPoolExecutor(1) as pool:
        run, step, keyset = paused_for_its_form(pool, "RACE-2")
        with get_client(sync_client=True) as client:
            # The assignee's answer, with handoff's proof, reaches the run first.
            first = steps.form_for(step.work_type).model_validate(
                {"completed_by": step.assignee, "decision": "approve", "note": "first"}
            )
            first = first.model_dump(mode="json")
            proof = completion_proof.sign_completion(step.item_id, step.input_key, step.assignee, first)
            sent = client.resume_flow_run(
                UUID(step.flow_run_id), run_input={**first, completion_proof.PROOF_FIELD: proof}
            )
            assert sent.status.value == "ACCEPT"
        monkeypatch.setattr(steps, "_keyset_if_waiting", lambda *args: keyset)  # read just before
        with pytest.raises(AlreadyCompleted) as lost:
            steps.complete_step(step.item_id, {"completed_by": SUPERVISOR, "decision": "reject", "note": "second"})
        assert run.result(timeout=120).is_completed()
    assert lost.value.completed_by == step.assignee and lost.value.completed_at is not None
    with session() as s:
        assert s.get(WorkItem, step.item_id).answer["note"] == "first"
        (refused,) = s.query(AuditEvent).filter_by(entity_id=str(step.item_id), action="completion-refused").all()
    assert refused.actor == SUPERVISOR and step.assignee in refused.details["reason"]


# --- the database decides: two processes closing the same items at once ----------------------

COMPLETER = r"""
import json, os, sys, time
from pathlib import Path
url, gun, ready, who, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
from handoff.core.settings import settings
settings.database_url = url
from handoff.core.db import engine, session
from handoff.core.routing.router import AlreadyCompleted, complete_item
engine()
Path(ready).touch()
while not os.path.exists(gun):
    time.sleep(0.002)
outcome = {}
for item_id in map(int, ids.split(",")):
    try:
        with session() as s:
            complete_item(s, item_id, by=who, outcome="approve", note=who)
        outcome[item_id] = "won"
    except AlreadyCompleted as lost:
        outcome[item_id] = ["lost", lost.completed_by, str(lost)]
print(json.dumps(outcome))
"""


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_complete_item_closes_an_item_once_when_two_processes_race(db, tmp_path):
    import os
    import subprocess
    import sys
    from datetime import timedelta
    from pathlib import Path

    from handoff.core.models import Worker
    from handoff.core.models import utcnow
    from handoff.runtime.standins import ensure_standin_reps

    root = Path(__file__).resolve().parents[2]
    ensure_standin_reps()
    with session() as s:
        rep = s.query(Worker).filter_by(role="rep").first()
        items = [
            WorkItem(
                work_type="order-approval",
                step_key=f"race-item-{i}",
                title=f"race {i}",
                required_skills={"order-entry": 1},
                created_at=utcnow(),
                due_at=utcnow() + timedelta(hours=4),
                effort_seconds=600,
                state="assigned",
                assignee_id=rep.id,
            )
            for i in range(40)
        ]
        s.add_all(items)
        s.flush()
        ids = ",".join(str(it.id) for it in items)
    gun, people = tmp_path / "go", [SUPERVISOR, "Steven Buchanan"]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        (
            tmp_path / f"ready-{k}",
            subprocess.Popen(
                [sys.executable, "-c", COMPLETER, db, str(gun), str(tmp_path / f"ready-{k}"), who, ids],
                env=env,
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for k, who in enumerate(people)
    ]
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _ in procs):
        assert time.monotonic() < deadline and all(p.poll() is None for _, p in procs), [
            p.communicate() for _, p in procs if p.poll() is not None
        ]
        time.sleep(0.01)
    gun.touch()
    outcomes = {}
    for who, (_, p) in zip(people, procs):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        outcomes[who] = {int(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}

    with session() as s:
        for item_id in map(int, ids.split(",")):
            item = s.get(WorkItem, item_id)
            winners = [who for who in people if outcomes[who][item_id] == "won"]
            assert winners == [item.completed_by], (item_id, outcomes)  # exactly one, the one recorded
            (loser,) = [who for who in people if who not in winners]
            _, named, message = outcomes[loser][item_id]
            assert named == item.completed_by and " at " in message
            completed = s.query(AuditEvent).filter_by(entity_id=str(item_id), action="completed").all()
            assert [e.actor for e in completed] == winners


def test_a_forged_answer_that_reaches_the_run_first_never_puts_its_name_in_front_of_the_rep(db, monkeypatch):
    """An unsigned resume sent straight to Prefect's API, naming a supervisor, beat the rep's
    answer: she was told "already answered by Andrew Fuller ...; your answer was not used" while
    the run refused the forgery and waited for her again (found by an outside tester). The name
    in an answer handoff did not sign is never shown: she is told to send again."""
    from handoff.runtime import steps

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    with ThreadPoolExecutor(1) as pool:
        run, step, keyset = paused_for_its_form(pool, "RACE-3")
        with get_client(sync_client=True) as client:
            forged = {"completed_by": SUPERVISOR, "decision": "approve", "note": "pre-approved"}
            assert client.resume_flow_run(UUID(step.flow_run_id), run_input=forged).status.value == "ACCEPT"
        reads_the_run = steps._keyset_if_waiting
        monkeypatch.setattr(steps, "_keyset_if_waiting", lambda *args: keyset)  # read just before
        with pytest.raises(steps.StepNotReady) as told:
            steps.complete_step(
                step.item_id,
                {"completed_by": step.assignee, "decision": "reject", "note": "mine"},
                wait_seconds=2,
            )
        assert SUPERVISOR not in str(told.value) and "has not been accepted" in str(told.value)
        with session() as s:  # not delivered: nothing of hers is on its way (a customer may answer)
            assert s.get(WorkItem, step.item_id).answer_sent_at is None
        monkeypatch.setattr(steps, "_keyset_if_waiting", reads_the_run)
        again = wait_until_paused("RACE-3", other_than=step.input_key)  # the forgery refused, asked again
        steps.complete_step(again.item_id, {"completed_by": again.assignee, "decision": "reject", "note": "mine"})
        assert run.result(timeout=120).is_completed()
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.completed_by, item.outcome) == (step.assignee, "reject")


# --- one person's answer: sent twice, with a NUL, with an override too long to sign -----------


def test_the_same_form_sent_again_while_the_run_records_the_first_leaves_the_first_on_its_way(db, monkeypatch):
    """A double click: the first answer reached the run, which takes a moment to record it;
    the second finds the run busy and gives up. It used to clear the first answer's "on its
    way" mark with its own, so a customer's answer (quotes) or a restarted run no longer knew a
    delivered answer was coming. The mark it replaced is put back."""
    from handoff.core.routing import lifecycle
    from handoff.runtime import steps

    monkeypatch.setattr(settings, "pause_poll_seconds", 8)  # the run records the answer up to 8 s later
    with ThreadPoolExecutor(1) as pool:
        run, step, _ = paused_for_its_form(pool, "TWICE-1")
        answer = {"decision": "approve", "note": "checked with the customer"}
        assert steps.complete_step(step.item_id, answer, by=step.assignee) is False  # sent, not yet recorded
        with session() as s:
            first = s.get(WorkItem, step.item_id)
            sent_at, sent = first.answer_sent_at, first.sent_answer
        assert sent_at is not None and first.state == "assigned"
        with pytest.raises(steps.StepNotReady):
            steps.complete_step(step.item_id, answer, by=step.assignee, wait_seconds=1)
        with session() as s:
            item = s.get(WorkItem, step.item_id)
            assert (item.answer_sent_at, item.sent_answer) == (sent_at, sent) and lifecycle.answer_in_flight(item)
        assert run.result(timeout=120).is_completed()
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.completed_by, item.note) == ("completed", step.assignee, "checked with the customer")


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_a_nul_in_an_answer_is_recorded_not_fatal_to_the_run(db, monkeypatch):
    """PostgreSQL refuses NUL in text: an answer holding one was signed and sent, then the run
    failed recording it, and again at every restart (it takes the answer marked on its way).
    The step's form replaces NUL before the answer is signed, here as in the run."""
    from handoff.runtime import steps

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    with ThreadPoolExecutor(1) as pool:
        run, step, _ = paused_for_its_form(pool, "NUL-1")
        answer = {"decision": "approve", "note": "fine\x00"}
        assert steps.complete_step(step.item_id, answer, by=step.assignee, confirm_seconds=60) is True
        assert run.result(timeout=120).is_completed()
    with session() as s:
        item = s.get(WorkItem, step.item_id)
        assert (item.state, item.note, item.answer["note"]) == ("completed", "fine\ufffd", "fine\ufffd")


def test_an_override_too_long_to_sign_is_refused_before_anything_is_sent(db, monkeypatch):
    """The reason is signed with the answer; past what a form takes, Prefect refused the
    answer at every try while the supervisor was told to send it again. Now refused at once,
    saying how much fits, with nothing marked as sent; a shorter reason goes through."""
    import random

    from handoff.core.identity.completion_proof import ProofTooLong
    from handoff.runtime import steps

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    rng = random.Random(7)
    reason = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(700))
    with ThreadPoolExecutor(1) as pool:
        run, step, _ = paused_for_its_form(pool, "LONG-1")
        answer = {"decision": "approve", "note": "ok"}
        with pytest.raises(ProofTooLong, match="of its 700 characters fit"):
            steps.complete_step(step.item_id, answer, by=SUPERVISOR, override_reason=reason)
        with session() as s:
            item = s.get(WorkItem, step.item_id)
            assert (item.state, item.answer_sent_at) == ("assigned", None)
        assert steps.complete_step(
            step.item_id, answer, by=SUPERVISOR, override_reason=reason[:300], confirm_seconds=60
        )
        assert run.result(timeout=120).is_completed()
    with session() as s:
        assert s.get(WorkItem, step.item_id).completed_by == SUPERVISOR
