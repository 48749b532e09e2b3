"""Injected faults: where they strike relative to the side effect, and that they are reproducible."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.faults import Fault
from sandbox.faults import Faults

RESERVATION = {"order_id": "10248", "line_no": 1, "product_id": 11, "quantity": 12}
KEY = {"Idempotency-Key": "reserve:10248:1"}


def reserve(api):
    return api.post("/provisioning/reservations", json=RESERVATION, headers=KEY)


def answered(sandbox, system, timeout=5.0):
    """The system's logged requests once all are answered (a hung one answers when the client has gone)."""
    deadline = time.monotonic() + timeout
    while True:
        requests = sandbox.requests(system)
        if all(r["status_code"] is not None for r in requests) or time.monotonic() > deadline:
            return requests
        time.sleep(0.02)


def test_a_system_that_is_down_answers_503_to_everything_and_does_nothing(api, sandbox):
    sandbox.set_faults(down=["provisioning"])
    response = reserve(api)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert api.get("/provisioning/reservations/RSV-000001").status_code == 503
    assert api.get("/crm/customers/ALFKI").status_code == 200  # the others still work
    assert api.get("/ledger").status_code == 200  # admin never meets faults
    assert sandbox.ledger() == []
    sandbox.set_faults(down=["all"])
    assert api.get("/crm/customers/ALFKI").status_code == 503


def test_a_5xx_strikes_before_the_side_effect(api, sandbox):
    sandbox.set_faults(error_share=1.0)
    assert reserve(api).status_code in (500, 502, 503)
    assert sandbox.ledger() == []
    sandbox.set_faults(error_share=0.0)
    assert reserve(api).status_code == 201  # the first time it is really done


def test_a_hang_before_the_side_effect_leaves_nothing_done(api, sandbox):
    sandbox.set_faults(timeout_share=1.0, timeout_after_share=0.0)
    with pytest.raises(httpx.ReadTimeout):
        reserve(api)
    assert sandbox.ledger() == []
    [logged] = answered(sandbox, "provisioning")
    assert logged["fault"] == Fault.TIMEOUT_BEFORE and logged["status_code"] == 504


def test_a_hang_after_the_side_effect_is_harmless_to_a_retry_with_the_same_key(api, sandbox):
    sandbox.set_faults(timeout_share=1.0, timeout_after_share=1.0)
    with pytest.raises(httpx.ReadTimeout):
        reserve(api)
    [done] = sandbox.ledger()  # the client saw a timeout, yet the work is done

    sandbox.set_faults(timeout_share=0.0)
    retry = reserve(api)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replay"] == "true"
    assert retry.json()["id"] == done["response"]["id"]
    assert len(sandbox.ledger()) == 1
    assert [(r["fault"], r["status_code"]) for r in answered(sandbox, "provisioning")] == [
        (Fault.TIMEOUT_AFTER, 201),  # answered to nobody
        (None, 200),
    ]


def test_a_hang_ends_when_the_client_hangs_up(api, sandbox):
    sandbox.set_faults(timeout_share=1.0, stall_seconds=30)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        api.get("/crm/customers/ALFKI", timeout=0.2)
    assert answered(sandbox, "crm")[0]["status_code"] == 504
    assert time.monotonic() - started < 2  # not the 30 s the server would otherwise hang


def test_latency_is_added_to_every_request(api, sandbox):
    sandbox.set_faults(latency=0.2)
    started = time.monotonic()
    assert api.get("/crm/customers/ALFKI", timeout=2).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_the_same_seed_gives_the_same_faults(api, sandbox):
    def statuses():
        sandbox.sandbox.reset(Faults(error_share=0.5, seed=7))
        return [api.get("/crm/customers/ALFKI").status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert 200 in first and any(s >= 500 for s in first)


def test_faults_can_be_switched_over_http_and_are_validated(api, sandbox):
    changed = api.post("/_faults", json={"error_share": 0.2, "timeout_share": 0.1, "down": ["billing"]})
    assert changed.status_code == 200
    assert api.get("/_faults").json()["down"] == ["billing"]
    assert sandbox.sandbox.faults.error_share == 0.2
    assert api.post("/_faults", json={"error_share": 2}).status_code == 400
    assert api.post("/_faults", json={"down": ["payroll"]}).status_code == 400
    assert api.post("/_faults", json={"colour": "red"}).status_code == 400


def test_faults_come_from_the_environment_with_arguments_winning():
    env = {
        "HANDOFF_SANDBOX_ERROR_SHARE": "0.2",
        "HANDOFF_SANDBOX_DOWN": "crm, billing",
        "HANDOFF_SANDBOX_SEED": "3",
        "HANDOFF_SANDBOX_LATENCY": "",
    }
    faults = Faults.from_env(env, seed=9)
    assert faults.error_share == 0.2 and faults.down == {"crm", "billing"}
    assert faults.seed == 9 and faults.latency == 0.0
    assert faults.is_down("crm") and not faults.is_down("activation")
