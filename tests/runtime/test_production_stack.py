"""The production stack, end to end: `handoff up --postgres --workers 2` (Prefect's server and
handoff's database on a throwaway PostgreSQL cluster, two `handoff-process` workers on a work
pool), five orders through the HTTP intake, every approval answered through
handoff.runtime.steps.complete_step, and each side effect in the sandbox ledger exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta

import httpx
import pytest

from handoff.core.settings import settings
from handoff.runtime.postgres import find_bindir

pytestmark = pytest.mark.slow

ORDERS = 5
READY = "serving the deployments through the workers"
# About 1 and 2 minutes on a quiet 2-core machine; the bounds leave room for a shared, busy one.
START_SECONDS = 240
FINISH_SECONDS = 420


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def large_order(order_id: str) -> dict:
    """Passes the checklist and the credit check (AROUT) but needs a rep's approval (5,400)."""
    today = date.today()
    return {
        "order_id": order_id,
        "customer_id": "AROUT",
        "order_date": today.isoformat(),
        "due_date": (today + timedelta(days=30)).isoformat(),
        "total": 5400.0,
        "lines": [{"product_id": 1, "quantity": 300, "unit_price": 18.0, "discount": 0.0}],
    }


@pytest.fixture
def production_stack(tmp_path, monkeypatch):
    """`handoff up --postgres --workers 2` as a user runs it, on free ports; stopped with Ctrl-C."""
    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    ui, sandbox, intake = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HANDOFF_"))}
    env.update(
        {
            "HANDOFF_HOME": str(tmp_path),
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "HANDOFF_PREFECT_UI_URL": ui,
            "HANDOFF_SANDBOX_URL": sandbox,
            "HANDOFF_INTAKE_PORT": str(intake),
            "HANDOFF_INTAKE_TOKEN": "test-token",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
    )
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from handoff.cli.main import app; app()", "up", "--postgres", "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while READY not in (tmp_path / "up.log").read_text(errors="replace"):
            assert proc.poll() is None, (tmp_path / "up.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"the stack did not come up in {START_SECONDS} s"
            time.sleep(0.5)
        where = json.loads((tmp_path / "stack.json").read_text())
        monkeypatch.setattr(settings, "database_url", where["handoff_database_url"])
        monkeypatch.setattr(settings, "home", tmp_path)
        yield {
            "ui": ui,
            "sandbox": sandbox,
            "intake": f"http://127.0.0.1:{intake}",
            "where": where,
            "log": tmp_path / "up.log",
            "home": tmp_path,
        }
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def answer_until_done(ids: set[str], timeout: float) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Stand-in reps answer every waiting step of these orders until all are complete."""
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import Order
    from handoff.runtime.standins import standin_answer
    from handoff.runtime.steps import StepNotReady, complete_step, waiting_steps

    answered: set[tuple[int, str]] = set()
    steps: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        for step in waiting_steps():
            if step.order_id in ids and step.assignee and (step.item_id, step.input_key) not in answered:
                try:
                    complete_step(step.item_id, standin_answer(step.item_id), wait_seconds=1)
                except StepNotReady:
                    continue
                answered.add((step.item_id, step.input_key))
                steps.append((step.order_id, step.work_type))
        with session() as s:
            statuses = {o: str(st) for o, st in s.execute(select(Order.id, Order.status).where(Order.id.in_(ids)))}
        if len(statuses) == len(ids) and all(st == "complete" for st in statuses.values()):
            break
        time.sleep(0.3)
    return statuses, steps


def test_orders_run_end_to_end_on_postgres_with_two_workers(production_stack):
    from handoff.core.northwind import load_catalogue
    from handoff.runtime import prefect_server

    stack = production_stack
    assert stack["where"]["handoff_database_url"].startswith("postgresql+psycopg://")
    assert stack["where"]["prefect_database_url"].startswith("postgresql+asyncpg://")
    load_catalogue()
    ids = [f"P-{i}" for i in range(1, ORDERS + 1)]
    for order_id in ids:
        r = httpx.post(
            f"{stack['intake']}/orders",
            json=large_order(order_id),
            timeout=60,
            headers={"Authorization": "Bearer test-token"},
        )
        assert r.status_code == 201, r.text

    with prefect_server.using(stack["ui"]):
        statuses, steps = answer_until_done(set(ids), timeout=FINISH_SECONDS)
        runs = pipeline_runs(ids)
    assert statuses == {o: "complete" for o in ids}, (statuses, logs_tail(stack["home"]))
    # each order waited for its approval and its customer's confirmation, and was resumed after each
    assert Counter(work_type for _, work_type in steps) == {"order-approval": ORDERS, "activation-confirmation": ORDERS}
    # the runs ran on the pool's workers (not a runner), and none broke
    assert {run.work_pool_name for rs in runs.values() for run in rs} == {"back-office"}
    assert not [run.name for rs in runs.values() for run in rs if run.state_name in ("Crashed", "Failed")]
    workers_seen = {w for rs in runs.values() for run in rs for w in [worker_of(run)] if w}
    assert workers_seen <= {"back-office-1", "back-office-2"}

    ledger = httpx.get(f"{stack['sandbox']}/ledger", timeout=30).json()["entries"]
    mine = [e for e in ledger if any(o in e["idempotency_key"] for o in ids)]
    keys = Counter((e["system"], e["operation"], e["idempotency_key"]) for e in mine)
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    per_order = {o: Counter(e["operation"] for e in mine if o in e["idempotency_key"].split(":")) for o in ids}
    assert all(ops == per_order[ids[0]] for ops in per_order.values()), per_order  # the same work, once each
    assert per_order[ids[0]]["check_credit"] == 1


def logs_tail(home) -> str:
    """The stack's and the workers' last lines, to see why a run did not finish."""
    return "\n".join(
        f"--- {path.name}\n" + path.read_text(errors="replace")[-1500:] for path in sorted(home.glob("*.log"))
    )


def pipeline_runs(ids: list[str]) -> dict[str, list]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["order-pipeline"])), limit=200
        )
    out: dict[str, list] = {}
    for run in runs:
        out.setdefault(str(run.parameters.get("order_id")), []).append(run)
    return {o: out.get(o, []) for o in ids}


def worker_of(run) -> str | None:
    """The worker that ran it, from the label Prefect gives a worker's runs."""
    return (run.labels or {}).get("prefect.worker.name")
