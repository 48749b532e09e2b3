"""The shared client plumbing, without a network: retry condition, error mapping, retry policy."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from prefect.states import Completed
from prefect.states import Failed

from tasks import crm
from tasks import http
from tasks import provisioning
from tasks.http import BusinessRejection
from tasks.http import Conflict
from tasks.http import Declined
from tasks.http import NotFound
from tasks.http import RequestRejected
from tasks.http import SystemClient
from tasks.http import SystemUnavailable
from tasks.http import is_transient
from tasks.http import retry_on_transient
from tasks.http import system_url


def failed_with(exc: BaseException):
    """The state Prefect's task engine hands to retry_condition_fn when the task raised `exc`."""
    return Failed(data=exc, message=f"Task run encountered unexpected exception: {exc!r}")


def status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://crm/customers/X")
    return httpx.HTTPStatusError("boom", request=request, response=httpx.Response(status, request=request))


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (SystemUnavailable("crm", "injected", status_code=500), True),
        (SystemUnavailable("crm", "down", status_code=503), True),
        (SystemUnavailable("crm", "slow down", status_code=429), True),
        (httpx.ReadTimeout("read timed out"), True),
        (httpx.ConnectTimeout("connect timed out"), True),
        (httpx.ConnectError("connection refused"), True),
        (httpx.RemoteProtocolError("server disconnected"), True),
        (status_error(500), True),
        (status_error(503), True),
        (NotFound("crm", "unknown customer X", status_code=404), False),
        (BusinessRejection("provisioning", "discontinued", status_code=422), False),
        (Conflict("billing", "exists", status_code=409), False),
        (RequestRejected("billing", "malformed", status_code=400), False),
        (status_error(404), False),
        (status_error(422), False),
        (ValueError("a bug in our code"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_only_transient_failures_are_retried(error, retry):
    assert is_transient(error) is retry
    assert retry_on_transient(None, None, failed_with(error)) is retry


def test_the_retry_condition_also_reads_a_state_whose_result_is_the_exception():
    assert retry_on_transient(None, None, Failed(data=None, message="no exception attached")) is False
    assert retry_on_transient(None, None, Completed(data=1)) is False


def test_every_client_task_carries_the_shared_retry_policy(client_tasks):
    assert len(client_tasks) == 15
    for task in client_tasks:
        assert task.retries == http.RETRIES == 5
        assert task.retry_condition_fn is retry_on_transient
        assert task.retry_jitter_factor == http.RETRY_JITTER_FACTOR
        delays = task.retry_delay_seconds
        assert delays == [http.RETRY_BACKOFF_SECONDS * 2**n for n in range(5)]  # exponential
        # Run names show business ids, e.g. "provision-{order_id}-{line_no}".
        assert re.search(r"\{\w+\}", task.task_run_name), task.name


def mock_client(system, handler, seen):
    def record(request):
        seen.append(request)
        return handler(request)

    return lambda: SystemClient(system, transport=httpx.MockTransport(record))


def test_a_side_effect_sends_an_idempotency_key_made_of_business_ids(monkeypatch):
    seen: list[httpx.Request] = []
    job = {
        "id": "JOB-000001",
        "order_id": "10248",
        "line_no": 2,
        "reservation_id": "RSV-000002",
        "status": "provisioned",
        "resource_id": "RES-000001",
    }
    answer = lambda request: httpx.Response(201, json=job)  # noqa: E731
    monkeypatch.setattr(provisioning.SYSTEM, "client", mock_client("provisioning", answer, seen))

    result = provisioning.provision.fn(10248, 2, "RSV-000002")

    [request] = seen
    assert request.headers["Idempotency-Key"] == "provision:10248:2"
    assert request.url.path.endswith("/provisioning/provisioning-jobs")
    assert json.loads(request.content) == {"order_id": "10248", "line_no": 2, "reservation_id": "RSV-000002"}
    assert result.resource_id == "RES-000001" and not result.needs_technician


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (422, {"error": "product_discontinued", "reason": "product 5 is discontinued"}, BusinessRejection),
        (404, {"error": "not_found", "reason": "unknown product 999"}, NotFound),
        (409, {"error": "already_reserved", "reason": "line reserved", "existing_id": "RSV-000001"}, Conflict),
        (400, {"error": "invalid_request", "reason": "body.quantity: too small"}, RequestRejected),
        (503, {"error": "unavailable", "reason": "provisioning is down"}, SystemUnavailable),
        (502, "<html>bad gateway</html>", SystemUnavailable),
    ],
)
def test_answers_become_clear_errors(monkeypatch, status, body, raised):
    def answer(request):
        if isinstance(body, dict):
            return httpx.Response(status, json=body)
        return httpx.Response(status, text=body)

    monkeypatch.setattr(provisioning.SYSTEM, "client", mock_client("provisioning", answer, []))
    with pytest.raises(raised) as caught:
        provisioning.provision.fn("10248", 1, "RSV-000001")
    assert caught.value.system == "provisioning" and caught.value.status_code == status
    if isinstance(body, dict):
        assert caught.value.reason == body["reason"] and caught.value.error == body["error"]
        assert str(caught.value) == f"provisioning: {body['reason']}"
    if raised is Conflict:
        assert caught.value.existing_id == "RSV-000001"


def test_a_declined_credit_check_is_a_result_with_the_decision(monkeypatch):
    decision = {
        "id": "CC-000001",
        "customer_id": "ALFKI",
        "order_id": "7",
        "amount": 12000.0,
        "decision": "declined",
        "reason": "amount 12,000.00 is above the credit limit of 10,000.00",
    }
    monkeypatch.setattr(crm.SYSTEM, "client", mock_client("crm", lambda r: httpx.Response(201, json=decision), []))
    declined = crm.check_credit.fn("7", "ALFKI", 12000.0)
    assert isinstance(declined, Declined) and declined.error == "credit_declined"
    assert declined.details["id"] == "CC-000001" and "credit limit" in declined.reason


def test_a_customer_the_crm_does_not_know_is_declined_not_an_error(monkeypatch):
    unknown = {"error": "not_found", "reason": "unknown customer NOBODY"}
    monkeypatch.setattr(crm.SYSTEM, "client", mock_client("crm", lambda r: httpx.Response(404, json=unknown), []))
    declined = crm.check_credit.fn("7", "NOBODY", 10.0)
    assert isinstance(declined, Declined) and declined.reason == "customer NOBODY is not in the CRM"


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (404, {"error": "not_found", "reason": "unknown product 999"}, NotFound),
        (409, {"error": "already_reserved", "reason": "line reserved", "existing_id": "RSV-000001"}, Conflict),
        (503, {"error": "unavailable", "reason": "provisioning is down"}, SystemUnavailable),
    ],
)
def test_a_refused_line_is_a_result_and_anything_else_still_raises(monkeypatch, status, body, raised):
    refusal = {"error": "product_discontinued", "reason": "product 5 is discontinued"}
    monkeypatch.setattr(
        provisioning.SYSTEM, "client", mock_client("provisioning", lambda r: httpx.Response(422, json=refusal), [])
    )
    declined = provisioning.reserve.fn("10248", 1, 5, 1)
    assert isinstance(declined, Declined)
    assert (declined.system, declined.error, declined.reason) == (
        "provisioning",
        "product_discontinued",
        "product 5 is discontinued",
    )
    monkeypatch.setattr(
        provisioning.SYSTEM, "client", mock_client("provisioning", lambda r: httpx.Response(status, json=body), [])
    )
    with pytest.raises(raised):
        provisioning.reserve.fn("10248", 1, 5, 1)


def test_systems_live_under_the_sandbox_url_unless_one_has_its_own(monkeypatch):
    monkeypatch.setattr(http.settings, "sandbox_url", "http://sandbox.test:9000/")
    monkeypatch.delenv("HANDOFF_BILLING_URL", raising=False)
    assert system_url("crm") == "http://sandbox.test:9000/crm"
    monkeypatch.setenv("HANDOFF_BILLING_URL", "https://billing.example.com/api")
    assert system_url("billing") == "https://billing.example.com/api"
    with crm.SYSTEM.client() as client:
        assert str(client.base_url) == "http://sandbox.test:9000/crm/"
        assert client.timeout == crm.SYSTEM.timeout == http.DEFAULT_TIMEOUT
