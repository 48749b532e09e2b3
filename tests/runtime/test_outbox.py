"""The outbox believes only what Prefect confirmed, and `handoff up` starts each unstarted
pipeline once (Prefect de-duplicates by idempotency key).

With no server listening, sending an order's event changes nothing: the order stays unannounced
and is sent again later. With the server up, the order counts as announced once its event is in
the server's store, read back by its id; sending it again (same id) stores nothing new."""

from __future__ import annotations

import contextvars
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from prefect.settings import temporary_settings

from handoff.core.db import session
from handoff.core.intake import submit_orders
from handoff.core.intake import unannounced_orders
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import utcnow
from handoff.runtime import outbox
from handoff.runtime import pipeline_starts

pytestmark = pytest.mark.usefixtures("catalogue")


def receive(order_id: str) -> None:
    order = {
        "order_id": order_id,
        "customer_id": "AROUT",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "lines": [{"product_id": 1, "quantity": 2, "unit_price": 18.0, "discount": 0}],
    }
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == [order_id]


def announced_at(order_id: str):
    with session() as s:
        return s.get(Order, order_id).announced_at


@pytest.fixture
def nothing_listens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
        yield


def stored_events(order_id: str) -> list[dict]:
    from prefect.events.filters import EventFilter
    from prefect.events.filters import EventIDFilter

    query = EventFilter(id=EventIDFilter(id=[outbox.event_id(order_id)]))
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/events/filter", json={"filter": query.model_dump(mode="json"), "limit": 10})
        response.raise_for_status()
        return response.json()["events"]


def until(condition, timeout: float = 60.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def test_with_no_server_an_order_is_not_counted_announced(db, nothing_listens):
    receive("OB-1")
    assert outbox.announce_orders(["OB-1"]) == 0  # nobody took it
    assert outbox.confirm_announced(["OB-1"]) == []
    assert announced_at("OB-1") is None
    assert unannounced_orders() == ["OB-1"]  # the outbox will send it again
    confirmed, _ = outbox.outbox_pass(resend_after=0)
    assert confirmed == 0 and announced_at("OB-1") is None


def test_an_order_whose_pipeline_took_it_is_confirmed_without_asking_the_server(db, nothing_listens):
    receive("OB-2")
    with session() as s:
        s.get(Order, "OB-2").flow_run_id = "a-run-that-took-it"
    assert outbox.confirm_announced(["OB-2"]) == ["OB-2"]
    assert announced_at("OB-2") is not None


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_more_orders_waiting_than_postgresql_takes_parameters_are_all_sent_and_confirmed(db, monkeypatch):
    """One 10 MiB POST can store 65,536 orders while Prefect is away. Every waiting id went
    into one IN (...) list, past PostgreSQL's 65,535 parameters: every pass failed before it
    asked Prefect anything, for good. The outbox works through them a page at a time."""
    from datetime import date

    from sqlalchemy import insert

    waiting = 66_000
    with session() as s:
        s.execute(
            insert(Order),
            [
                dict(
                    id=f"M-{n}",
                    customer_id="ALFKI",
                    order_date=date(2024, 3, 1),
                    due_date=date(2024, 3, 15),
                    status="received",
                    source="http",
                    total=1.0,
                )  # fmt: skip
                for n in range(waiting)
            ],
        )
    sent: list[str] = []
    monkeypatch.setattr(outbox, "announce", lambda topic, ids: sent.extend(ids) or len(ids))
    monkeypatch.setattr(outbox, "events_on_server", lambda ids, topic=outbox.ORDERS: set(ids) & set(sent))
    assert outbox.outbox_pass(resend_after=0) == (0, waiting)  # sent, page by page
    assert outbox.outbox_pass(resend_after=0) == (waiting, 0)  # Prefect has them all: confirmed
    assert unannounced_orders() == [] and len(set(sent)) == waiting


@pytest.mark.slow
def test_with_the_server_up_the_event_is_read_back_and_a_resend_is_harmless(db, prefect_harness):
    receive("OB-3")
    assert outbox.announce_orders(["OB-3"]) == 1
    assert announced_at("OB-3") is None  # sent is not confirmed
    assert until(lambda: outbox.outbox_pass(resend_after=3600)[0]) == 1  # the server stores it within ~5 s
    assert announced_at("OB-3") is not None and unannounced_orders() == []

    with session() as s:  # sent again, as after a lost confirmation: the same event id
        outbox.announce_order(s.get(Order, "OB-3"))
    time.sleep(6)  # past the server's event persister flush
    events = stored_events("OB-3")
    assert len(events) == 1 and events[0]["resource"]["handoff.order-id"] == "OB-3"


@pytest.mark.slow
def test_an_order_sent_while_the_server_was_down_is_sent_again_once_it_is_up(db, prefect_harness):
    receive("OB-4")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/api"
    with temporary_settings(updates={PREFECT_API_URL: dead}):
        outbox.announce_orders(["OB-4"])
        assert outbox.outbox_pass(resend_after=3600) == (0, 0)  # sent a moment ago: not yet again
    assert stored_events("OB-4") == []  # it never arrived
    assert until(lambda: outbox.outbox_pass(resend_after=0)[0] or None, timeout=60, every=2) == 1
    assert announced_at("OB-4") is not None and len(stored_events("OB-4")) == 1


# --- `handoff up`: an announced order whose event started nothing ---------------------------


@pytest.fixture
def pipeline_deployment(prefect_harness):
    from flows.order_pipeline import order_pipeline

    return order_pipeline.to_deployment(name="order-pipeline").apply()  # nothing serves it: runs stay Scheduled


def announced_long_ago(order_id: str) -> None:
    receive(order_id)
    with session() as s:
        s.get(Order, order_id).announced_at = utcnow() - timedelta(minutes=5)


def pipeline_runs(deployment_id, order_id: str) -> list:
    from prefect.client.schemas.filters import DeploymentFilter
    from prefect.client.schemas.filters import DeploymentFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return [r for r in runs if r.parameters.get("order_id") == order_id]


@pytest.mark.slow
def test_an_unstarted_pipeline_is_started_once(db, pipeline_deployment):
    announced_long_ago("UP-1")
    assert pipeline_starts.start_unstarted_pipelines() == 1
    assert pipeline_starts.start_unstarted_pipelines() == 0  # its run is on its way (Scheduled)
    (run,) = pipeline_runs(pipeline_deployment, "UP-1")
    assert run.idempotency_key == "order-UP-1-start-0" and run.name == "order-UP-1"

    # That run ends before taking the order: the next start is a new run, not the ended one.
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Crashed(message="killed"), force=True)
    assert pipeline_starts.start_unstarted_pipelines() == 1
    assert len(pipeline_runs(pipeline_deployment, "UP-1")) == 2
    with session() as s:
        started = [e.details["flow_run_id"] for e in s.query(AuditEvent).filter_by(action="pipeline-started")]
    assert len(set(started)) == 2


@pytest.mark.slow
def test_two_processes_starting_the_same_pipeline_at_once_get_one_run(db, pipeline_deployment):
    """Prefect decides: both ask with the same idempotency key (neither has recorded a start)."""
    announced_long_ago("UP-2")
    gun, ids = threading.Barrier(2), []

    def start() -> None:
        gun.wait()
        ids.append(pipeline_starts.start_pipeline("UP-2"))

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(start,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(ids) == 2 and ids[0] == ids[1]
    assert len(pipeline_runs(pipeline_deployment, "UP-2")) == 1
