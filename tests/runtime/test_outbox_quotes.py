"""Requests for quotation through the outbox: `quote.requested` counts as announced only once
Prefect has the event (read back by its id), exactly as orders' `order.received`."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter
from prefect.events.filters import EventIDFilter

from handoff.core.db import session
from handoff.core.intake import submit_quote_requests
from handoff.core.intake import unannounced_quote_requests
from handoff.core.models import QuoteRequest
from handoff.runtime import outbox


def receive(request_id: str) -> None:
    rfq = {
        "request_id": request_id,
        "customer_id": "ALFKI",
        "request_date": "2030-03-01",
        "due_date": "2030-04-15",
        "lines": [{"product_id": 1, "quantity": 1}],
    }
    assert submit_quote_requests([(json.dumps(rfq), rfq)], source="test", announce=False).accepted == [request_id]


def announced(request_id: str) -> bool:
    with session() as s:
        return s.get(QuoteRequest, request_id).announced_at is not None


def test_a_request_whose_quotation_took_it_is_confirmed_without_asking(db):
    receive("OQ-1")
    with session() as s:
        s.get(QuoteRequest, "OQ-1").flow_run_id = "a-run-that-took-it"
    assert outbox.confirm_announced(["OQ-1"], outbox.QUOTE_REQUESTS) == ["OQ-1"]
    assert announced("OQ-1") and unannounced_quote_requests() == []


@pytest.mark.slow
def test_with_the_server_up_quote_requested_is_sent_read_back_and_confirmed(db, prefect_harness):
    receive("OQ-2")
    assert outbox.announce_quote_requests(["OQ-2"]) == 1
    assert not announced("OQ-2")  # sent is not confirmed
    deadline = time.monotonic() + 60
    while not announced("OQ-2") and time.monotonic() < deadline:
        outbox.outbox_pass(resend_after=3600)
        time.sleep(0.5)
    assert announced("OQ-2")
    query = EventFilter(id=EventIDFilter(id=[outbox.event_id("OQ-2", outbox.QUOTE_REQUESTS)]))
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/events/filter", json={"filter": query.model_dump(mode="json")})
        [event] = response.json()["events"]
    assert event["event"] == "quote.requested" and event["resource"]["handoff.request-id"] == "OQ-2"


def test_an_announced_request_no_run_took_gets_its_quotation_started_once(db, monkeypatch):
    from datetime import timedelta

    import prefect.deployments

    from handoff.core.models import utcnow
    from handoff.runtime import pipeline_starts

    for request_id in ("OQ-3", "OQ-4", "OQ-5", "OQ-6"):
        receive(request_id)
    with session() as s:
        s.get(QuoteRequest, "OQ-3").announced_at = utcnow() - timedelta(minutes=5)  # stalled
        # its event's run is queued behind busy workers and has not taken it yet (found on the
        # production stack: a second quotation was started beside it)
        s.get(QuoteRequest, "OQ-6").announced_at = utcnow() - timedelta(minutes=5)
        s.get(QuoteRequest, "OQ-4").announced_at = utcnow()  # its run may still come
        taken = s.get(QuoteRequest, "OQ-5")
        taken.announced_at, taken.flow_run_id = utcnow() - timedelta(minutes=5), "a-run"
    started = []

    def run_deployment(name, **kw):  # noqa: ANN001, ANN202
        started.append((name, kw))
        return SimpleNamespace(id=uuid4())

    monkeypatch.setattr(prefect.deployments, "run_deployment", run_deployment)
    monkeypatch.setattr(
        pipeline_starts, "live_runs_of", lambda deployment, parameter: {"OQ-6"} if deployment == "quotation" else set()
    )
    assert pipeline_starts.start_unstarted_quotations() == 1
    [(name, kw)] = started
    assert name == "quotation/quotation" and kw["parameters"] == {"request_id": "OQ-3"}
    assert kw["idempotency_key"] == "quote-OQ-3-start-0"
    # That run ended before taking the request (no run is live for it): the next pass starts a
    # new run under the next key, where the same key would have handed back the ended run.
    assert pipeline_starts.start_unstarted_quotations() == 1
    assert [kw["idempotency_key"] for _, kw in started] == ["quote-OQ-3-start-0", "quote-OQ-3-start-1"]


def test_live_runs_are_the_ones_still_on_their_way(prefect_harness):
    """What keeps the outbox from starting a second quotation beside a queued one."""
    from prefect import flow
    from prefect.states import Completed

    from handoff.runtime import pipeline_starts

    @flow(name="live-quotation-probe")
    def probe(request_id: str) -> str:
        return request_id

    deployment_id = probe.to_deployment(name="quotation").apply()
    with get_client(sync_client=True) as client:
        queued = client.create_flow_run_from_deployment(deployment_id, parameters={"request_id": "LQ-1"})
        done = client.create_flow_run_from_deployment(deployment_id, parameters={"request_id": "LQ-2"})
        client.set_flow_run_state(done.id, Completed(), force=True)
    live = pipeline_starts.live_runs_of("quotation", "request_id")
    assert "LQ-1" in live and "LQ-2" not in live
    assert "LQ-1" not in pipeline_starts.live_runs_of("order-pipeline", "order_id")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(queued.id, Completed(), force=True)
