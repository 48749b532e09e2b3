"""Nothing stranded (tasks/stranded.py, sla-watch's last step), against the Prefect test server:
a waiting run pushed out of its wait, or one that failed or crashed, while its order or work item
still counts on it, is restarted from its deployment with the same parameters — once, however
many passes see it — or, where it cannot be, listed as a problem case in the WIP review."""

from __future__ import annotations

import contextvars
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Crashed
from prefect.states import Pending
from prefect.states import Running
from prefect.states import Suspended
from quote_records import requested

from handoff.analytics import reports
from handoff.core.db import session
from handoff.core.intake import submit_orders
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import OrderStatus
from handoff.core.models import QuoteRequest
from handoff.core.models import QuoteState
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.settings import settings
from tasks import heartbeats
from tasks import stranded

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "catalogue", "reps")]


@flow(name="stranded-probe")
def stranded_probe(order_id: str) -> str:
    """Stands in for a deployed pipeline (nothing serves it here: a restart stays Scheduled)."""
    return order_id


def receive(order_id: str, quantity: int = 10) -> None:
    order = {
        "order_id": order_id,
        "customer_id": "AROUT",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "lines": [{"product_id": 1, "quantity": quantity, "unit_price": 18.0, "discount": 0}],
    }
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == [order_id]


@pytest.fixture(scope="module")
def probe_deployment(prefect_harness):
    return stranded_probe.to_deployment(name="stranded-probe").apply()


def a_suspended_deployed_run(deployment_id, order_id: str) -> tuple[str, int]:
    """A deployed run of `order_id` suspended at a human step, as the order and its item see it."""
    receive(order_id)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"order_id": order_id}, name=f"order-{order_id}", tags=[f"order:{order_id}"]
        )
        client.set_flow_run_state(run.id, Running(), force=True)
        client.set_flow_run_state(run.id, Suspended(pause_key="work-item-1-0"), force=True)
    with session() as s:
        order = s.get(Order, order_id)
        order.status, order.flow_run_id = OrderStatus.AWAITING_APPROVAL, str(run.id)
        item = WorkItem(
            work_type="order-approval",
            step_key=f"order-approval-{order_id}",
            title=f"approve {order_id}",
            order_id=order_id,
            required_skills={"order-entry": 2},
            created_at=utcnow(),
            due_at=utcnow() + timedelta(hours=8),
            effort_seconds=600,
            state=WorkItemState.ASSIGNED,
            flow_run_id=str(run.id),
            input_key="work-item-1-0",
        )
        s.add(item)
        s.flush()
        return str(run.id), item.id


def runs_of(deployment_id) -> list:
    from prefect.client.schemas.filters import DeploymentFilter
    from prefect.client.schemas.filters import DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def test_a_run_pushed_out_of_its_wait_is_restarted_once(db, probe_deployment):
    run_id, item_id = a_suspended_deployed_run(probe_deployment, "ST-1")
    # The waiting run is pushed out of its wait through the API: Running, with no process.
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run_id), Running(), force=True)

    assert stranded.find_stranded_runs() == []  # a resumed run is Running for a moment: not yet
    later = utcnow() + stranded.PUSHED_OUT_AFTER + timedelta(minutes=1)
    found = stranded.find_stranded_runs(later)
    assert [(f.flow_run_id, f.order_id, f.item_id) for f in found] == [(run_id, "ST-1", item_id)]
    assert found[0].why.startswith("pushed out of its wait")

    restarted = stranded.restart_or_report(found[0])
    assert restarted.restarted_as and restarted.problem is None
    with get_client(sync_client=True) as client:
        old, new = client.read_flow_run(UUID(run_id)), client.read_flow_run(UUID(restarted.restarted_as))
    assert old.state.type.value == "CRASHED"  # ended, so the new run may take the order
    assert new.parameters == {"order_id": "ST-1"} and new.deployment_id == probe_deployment
    assert new.idempotency_key == f"restart-of-{run_id}" and new.name == "order-ST-1"

    # Another pass (or a second sla-watch) sees the order still naming the old run: no new run.
    again = stranded.find_stranded_runs(later)
    assert [stranded.restart_or_report(f).restarted_as for f in again] == [restarted.restarted_as]
    assert not again[0].news
    assert len(runs_of(probe_deployment)) == 2
    with session() as s:
        actions = [
            e.action
            for e in s.query(AuditEvent).filter_by(entity="order", entity_id="ST-1")
            if e.action.startswith("run-")
        ]
    assert actions == ["run-restarted"]


def test_a_restart_that_keeps_failing_becomes_a_problem_case(db, probe_deployment):
    run_id, item_id = a_suspended_deployed_run(probe_deployment, "ST-2")
    newest = run_id
    for attempt in range(stranded.MAX_RESTARTS + 1):
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(newest), Crashed(message="killed"), force=True)
        (found,) = stranded.find_stranded_runs()
        stranded.restart_or_report(found)
        if attempt < stranded.MAX_RESTARTS:
            assert found.restarted_as and found.restarted_as != newest
            newest = found.restarted_as
    assert found.restarted_as is None and "restarted 3 times" in found.problem

    with session() as s:
        cases = reports.problem_cases(s)
    (case,) = [c for c in cases if c.item_id == item_id]
    assert case.problems[0] == reports.STRANDED_RUN and "restarted 3 times" in " ".join(case.details)


def test_a_waiting_run_forced_to_running_fails_and_is_listed_not_lost(db, monkeypatch, sandbox):
    """The incident: an in-process run waiting for an approval is set to Running through the
    API; it fails (no answer to read). It has no deployment to restart from, so the WIP review
    lists its order's step as a stranded-run problem case instead of leaving it silently stuck."""
    from flows.order_entry import order_entry
    from handoff.runtime.steps import waiting_steps

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    receive("ST-3", quantity=400)
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(contextvars.copy_context().run, order_entry, "ST-3", return_state=True)
        deadline = time.monotonic() + 90
        while True:
            step = next((s for s in waiting_steps() if s.order_id == "ST-3"), None)
            if step is not None:
                with get_client(sync_client=True) as client:
                    if client.read_flow_run(UUID(step.flow_run_id)).state.is_paused():
                        client.set_flow_run_state(UUID(step.flow_run_id), Running(), force=True)
                        break
            assert time.monotonic() < deadline, "the order never waited for its approval"
            time.sleep(0.3)
        assert run.result(timeout=90).is_failed()

    with session() as s:
        assert s.get(Order, "ST-3").status == OrderStatus.AWAITING_APPROVAL  # what was left behind
        assert s.get(WorkItem, step.item_id).state == WorkItemState.ASSIGNED
    found = [f for f in stranded.find_stranded_runs() if f.flow_run_id == step.flow_run_id]
    assert len(found) == 1 and found[0].why == "failed"
    stranded.restart_or_report(found[0])
    assert found[0].restarted_as is None and "not from a deployment" in found[0].problem

    with session() as s:
        cases = [c for c in reports.problem_cases(s) if c.order_id == "ST-3"]
    assert cases and cases[0].problems[0] == reports.STRANDED_RUN
    assert step.flow_run_id in " ".join(cases[0].details)
    # Reported once, however many passes see it.
    stranded.restart_or_report(stranded.find_stranded_runs()[0])
    with session() as s:
        assert s.query(AuditEvent).filter_by(action="run-stranded").count() == 1


def test_a_deployed_run_left_pending_by_a_dead_runner_is_scheduled_again(db, probe_deployment):
    """A runner killed between taking a run (Pending) and starting it leaves the run Pending for
    ever, and its order unstarted: after STUCK_PENDING_AFTER it is Scheduled again, once."""
    with get_client(sync_client=True) as client:
        stuck = client.create_flow_run_from_deployment(probe_deployment, parameters={"order_id": "ST-P"})
        client.set_flow_run_state(stuck.id, Pending(), force=True)
        taken_at = client.read_flow_run(stuck.id).state.timestamp
    later = taken_at + stranded.STUCK_PENDING_AFTER + timedelta(seconds=1)
    assert stranded.reschedule_runs_left_pending(taken_at + timedelta(seconds=30)) == []  # a runner may be starting it
    assert str(stuck.id) in stranded.reschedule_runs_left_pending(later)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(stuck.id).state.is_scheduled()
    assert str(stuck.id) not in stranded.reschedule_runs_left_pending(later)  # Scheduled now: a runner's to start


def test_a_run_killed_as_it_started_before_taking_its_order_is_run_again(db, probe_deployment, monkeypatch):
    """Killed a moment after it went Running, before it wrote its id on the order: no heartbeat
    ever, no order names it (so find_stranded_runs does not know it), and the outbox, seeing a
    live run, starts no other — the order stayed `received` for good (the soak: a kill 5 s after
    the order's event). Silent past SILENT_AFTER, it is Scheduled again for a runner, once; a
    run an order names is left to find_stranded_runs, a run heard from is left alone."""
    receive("SR-1")
    receive("SR-2")
    runs = {}
    with get_client(sync_client=True) as client:
        for order_id in ("SR-1", "SR-2", "SR-3"):
            run = client.create_flow_run_from_deployment(probe_deployment, parameters={"order_id": order_id})
            client.set_flow_run_state(run.id, Running(), force=True)
            runs[order_id] = str(run.id)
            started = client.read_flow_run(run.id).state.timestamp
    with session() as s:
        s.get(Order, "SR-2").flow_run_id = runs["SR-2"]  # this one took its order
    heard = heartbeats.heard_from
    monkeypatch.setattr(
        heartbeats, "heard_from", lambda run_ids, since, until: heard(run_ids, since, until) | {runs["SR-3"]}
    )
    assert not set(runs.values()) & set(stranded.reschedule_silent_runs_nothing_names(started + timedelta(minutes=1)))
    later = started + heartbeats.SILENT_AFTER + timedelta(minutes=1)
    rescheduled = set(stranded.reschedule_silent_runs_nothing_names(later)) & set(runs.values())
    assert rescheduled == {runs["SR-1"]}  # SR-2: named by its order; SR-3: its process says it is alive
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(UUID(runs["SR-1"])).state.is_scheduled()
        assert client.read_flow_run(UUID(runs["SR-2"])).state.is_running()
    assert runs["SR-1"] not in stranded.reschedule_silent_runs_nothing_names(later)  # a runner's to start now
    assert [f.order_id for f in stranded.find_stranded_runs(later) if f.flow_run_id in runs.values()] == ["SR-2"]


@flow(name="stranded-quotation-probe")
def stranded_quotation_probe(request_id: str) -> str:
    """Stands in for the deployed quotation flow (nothing serves it here)."""
    return request_id


def test_a_crashed_quotation_run_is_restarted_and_then_listed_for_a_person(db):
    """A request for quotation whose run crashed while pricing (no work item yet) would never be
    quoted: it is restarted from its deployment with the same request; when restarts keep
    failing, the WIP review lists the request itself."""
    deployment_id = stranded_quotation_probe.to_deployment(name="stranded-quotation-probe").apply()
    requested("SQ-1")
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"request_id": "SQ-1"}, name="quote-SQ-1"
        )
        client.set_flow_run_state(run.id, Crashed(message="killed while pricing"), force=True)
    with session() as s:
        request = s.get(QuoteRequest, "SQ-1")
        request.status, request.flow_run_id = QuoteState.PRICED, str(run.id)

    (found,) = [f for f in stranded.find_stranded_runs() if f.request_id == "SQ-1"]
    assert (found.flow_run_id, found.why, found.order_id, found.item_id) == (str(run.id), "crashed", None, None)
    assert found.subject == ("quote_request", "SQ-1")
    stranded.restart_or_report(found)
    with get_client(sync_client=True) as client:
        new = client.read_flow_run(UUID(found.restarted_as))
    assert new.parameters == {"request_id": "SQ-1"} and new.deployment_id == deployment_id

    newest = found.restarted_as
    for _ in range(stranded.MAX_RESTARTS):  # the restarts crash too, until a person must look
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(newest), Crashed(message="killed again"), force=True)
        (found,) = [f for f in stranded.find_stranded_runs() if f.request_id == "SQ-1"]
        stranded.restart_or_report(found)
        newest = found.restarted_as or newest
    assert found.restarted_as is None and "restarted 3 times" in found.problem
    with session() as s:
        (case,) = [c for c in reports.problem_cases(s) if c.subject == "request for quotation SQ-1"]
        assert case.problems == [reports.STRANDED_RUN]
        s.get(QuoteRequest, "SQ-1").status = QuoteState.DECLINED  # answered since: settled
    with session() as s:
        assert not [c for c in reports.problem_cases(s) if c.subject == "request for quotation SQ-1"]
    assert not [f for f in stranded.find_stranded_runs() if f.request_id == "SQ-1"]


def test_a_run_waiting_on_a_cancelled_step_is_ended_once_it_waits(db, probe_deployment):
    """The customer answered through the CRM while their follow-up call was open: the call was
    cancelled (handoff.core.quotes.cancel_open_calls), so nothing will answer the run waiting on
    it. sla-watch ends that run as Completed; a run not yet at the step is looked at again."""

    def run_with_cancelled_step(name: str, suspended: bool) -> tuple[str, int]:
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(probe_deployment, parameters={"order_id": name})
            client.set_flow_run_state(run.id, Running(), force=True)
            if suspended:
                client.set_flow_run_state(run.id, Suspended(pause_key=f"call-{name}"), force=True)
        with session() as s:
            item = WorkItem(
                work_type="quote-follow-up",
                step_key=f"quote-follow-up-{name}",
                title=f"call about {name}",
                required_skills={"quotation": 1},
                due_at=utcnow() + timedelta(hours=8),
                effort_seconds=600,
                state=WorkItemState.CANCELLED,
                flow_run_id=str(run.id),
                input_key=f"call-{name}",
            )
            s.add(item)
            s.flush()
            return str(run.id), item.id

    waiting, waiting_item = run_with_cancelled_step("SC-1", suspended=True)
    on_its_way, on_its_way_item = run_with_cancelled_step("SC-2", suspended=False)

    assert stranded.end_runs_waiting_on_cancelled_steps() == [waiting]
    with get_client(sync_client=True) as client:
        ended = client.read_flow_run(UUID(waiting)).state
        assert ended.is_completed() and f"work item {waiting_item}" in ended.message
        assert client.read_flow_run(UUID(on_its_way)).state.is_running()
    with session() as s:
        assert s.get(WorkItem, waiting_item).input_key is None  # looked at no more
        assert s.get(WorkItem, on_its_way_item).input_key == "call-SC-2"

    # The second run now reaches the step and waits on it: the next pass ends it, and no pass after.
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(on_its_way), Suspended(pause_key="call-SC-2"), force=True)
    assert stranded.end_runs_waiting_on_cancelled_steps() == [on_its_way]
    assert stranded.end_runs_waiting_on_cancelled_steps() == []


def test_a_deployed_run_running_without_heartbeats_is_restarted(db, probe_deployment, monkeypatch):
    """A run that started just before its Prefect server died never sent a heartbeat, so the
    heartbeat automation never armed: it stayed Running with no process, its order `received`,
    for good (found by an outside tester). Running past SILENT_AFTER with no heartbeat in that
    time, it is stranded; one that is heard from is left alone."""
    receive("SI-1")
    receive("SI-2")
    runs = {}
    with get_client(sync_client=True) as client:
        for order_id in ("SI-1", "SI-2"):
            run = client.create_flow_run_from_deployment(probe_deployment, parameters={"order_id": order_id})
            client.set_flow_run_state(run.id, Running(), force=True)
            runs[order_id] = str(run.id)
            started = client.read_flow_run(run.id).state.timestamp
    with session() as s:
        for order_id, run_id in runs.items():
            s.get(Order, order_id).flow_run_id = run_id
    assert stranded.find_stranded_runs(started + timedelta(minutes=1)) == []  # a long step, perhaps
    later = started + heartbeats.SILENT_AFTER + timedelta(minutes=1)
    found = stranded.find_stranded_runs(later)  # neither sent a heartbeat (nothing runs them here)
    assert sorted(f.order_id for f in found) == ["SI-1", "SI-2"]
    assert all(f.why.endswith("with no heartbeat: its process is gone") for f in found)
    heard = heartbeats.heard_from
    monkeypatch.setattr(
        heartbeats, "heard_from", lambda run_ids, since, until: heard(run_ids, since, until) | {runs["SI-2"]}
    )
    [silent] = stranded.find_stranded_runs(later)  # SI-2's process is alive and says so
    assert (silent.order_id, silent.flow_run_id) == ("SI-1", runs["SI-1"])
    restarted = stranded.restart_or_report(silent)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(UUID(runs["SI-1"])).state.type.value == "CRASHED"
        assert client.read_flow_run(UUID(restarted.restarted_as)).parameters == {"order_id": "SI-1"}
