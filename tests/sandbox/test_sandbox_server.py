"""Running the sandbox: reference data rules, the ledger file across restarts, `python -m sandbox`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sandbox.faults import Faults
from sandbox.reference import CREDIT_LIMITS
from sandbox.reference import MANUAL_CATEGORIES
from sandbox.reference import load_reference
from sandbox.server import start_sandbox

ROOT = Path(__file__).resolve().parents[2]


def test_reference_data_follows_stable_documented_rules():
    first, second = load_reference(), load_reference()
    assert first == second  # no randomness: every run sees the same customers
    assert len(first.customers) == 93 and len(first.products) == 77
    assert {c.credit_limit for c in first.customers.values()} <= set(CREDIT_LIMITS)
    assert 3 <= len(first.on_hold()) <= 10
    manual = {p.id for p in first.products.values() if p.needs_technician}
    assert manual == {p.id for p in first.products.values() if p.category in MANUAL_CATEGORIES}
    assert 10 in manual and 11 not in manual  # Ikura (Seafood) yes, Queso Cabrales (Dairy) no


def test_a_ledger_file_keeps_resources_and_keys_across_a_restart(tmp_path):
    state = tmp_path / "sandbox-ledger.jsonl"
    body = {"order_id": "10248", "line_no": 1, "product_id": 11, "quantity": 12}
    with start_sandbox(faults=Faults(), state_path=state) as first:
        created = httpx.post(
            f"{first.urls['provisioning']}/reservations", json=body, headers={"Idempotency-Key": "reserve:10248:1"}
        ).json()

    with start_sandbox(faults=Faults(), state_path=state) as second:
        assert second.ledger() == first.ledger()
        replay = httpx.post(
            f"{second.urls['provisioning']}/reservations", json=body, headers={"Idempotency-Key": "reserve:10248:1"}
        )
        assert replay.status_code == 200 and replay.json() == created
        other = httpx.post(
            f"{second.urls['provisioning']}/reservations",
            json={**body, "line_no": 2},
            headers={"Idempotency-Key": "reserve:10248:2"},
        )
        assert other.json()["id"] == "RSV-000002"
    assert len(state.read_text().splitlines()) == 2


def test_python_dash_m_sandbox_serves_on_the_configured_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HANDOFF_SANDBOX_PORT": str(port), "HANDOFF_SANDBOX_DOWN": "billing"}
    env.pop("HANDOFF_SANDBOX_STATE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.1)
        assert health.json()["systems"] == ["crm", "provisioning", "activation", "billing", "calendar"]
        assert httpx.get(f"http://127.0.0.1:{port}/billing/accounts").status_code == 503  # faults from env
    finally:
        process.terminate()
        process.wait(10)
