"""`handoff up --lock-ui`: Prefect's own basic auth on the server and UI, and on every client.

The whole stack runs in a subprocess, as an operator starts it: a call to Prefect's API without
the credential is refused (401) — so nobody reaches the Resume dialog or `resume_flow_run` —
while the stack still works: an order posted to the intake runs its pipeline (the runner and the
flow-run processes authenticate), the CLI reads the locked server, and the worklist answers.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} was not written)"


def environment_without_prefect_and_handoff() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HANDOFF_"))}


pytestmark = pytest.mark.slow
READY = "serving the deployments"
START_SECONDS = 420
PIPELINE_SECONDS = 180


def wait_for(predicate, seconds: float, what: str, log: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`handoff up` exited ({proc.returncode}) before {what}:\n{tail(log)}")
        if predicate():
            return
        time.sleep(1)
    pytest.fail(f"not {what} within {seconds} s:\n{tail(log)}")


def test_a_locked_console_refuses_strangers_and_the_stack_still_works(tmp_path):
    ui, sandbox, intake, worklist = (free_port() for _ in range(4))
    home = tmp_path / "home"
    env = {
        **environment_without_prefect_and_handoff(),
        "HANDOFF_HOME": str(home),
        "HANDOFF_PREFECT_UI_URL": f"http://127.0.0.1:{ui}",
        "HANDOFF_SANDBOX_URL": f"http://127.0.0.1:{sandbox}",
        "HANDOFF_INTAKE_PORT": str(intake),
        "HANDOFF_INTAKE_TOKEN": "intake-token-for-the-test",
        "HANDOFF_WORKLIST_PORT": str(worklist),
        "HANDOFF_PREFECT_START_SECONDS": "240",  # a fresh Prefect database migrates first; slow when busy
        "HANDOFF_NORTHWIND_PATH": os.environ.get(
            "HANDOFF_NORTHWIND_PATH",
            str(__import__("handoff.core.settings", fromlist=["settings"]).settings.northwind_path),
        ),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "handoff.cli.main", "up", "--lock-ui"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            # As under a supervisor or a shell's `cmd &`: SIGINT arrives ignored. Ctrl-C must still stop it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    api = f"http://127.0.0.1:{ui}/api"
    try:
        wait_for(lambda: READY in log.read_text(errors="replace"), START_SECONDS, "serving", log, proc)
        auth_file = home / "prefect-auth"
        assert auth_file.stat().st_mode & 0o777 == 0o600
        credential = auth_file.read_text().strip()
        basic = {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode()}

        # Strangers are refused; the health probe stays open; the credential opens the API.
        assert httpx.post(f"{api}/flow_runs/filter", json={"limit": 1}, timeout=10).status_code == 401
        wrong = {"Authorization": "Basic " + base64.b64encode(b"operator:guess").decode()}
        assert httpx.post(f"{api}/flow_runs/filter", json={"limit": 1}, headers=wrong, timeout=10).status_code == 401
        assert httpx.get(f"{api}/health", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{ui}/api/ui-settings", timeout=10).status_code in (200, 401, 404)
        deployments = httpx.post(f"{api}/deployments/filter", json={"limit": 50}, headers=basic, timeout=10)
        assert deployments.status_code == 200 and "order-pipeline" in {d["name"] for d in deployments.json()}

        # The stack works: an order's pipeline starts and runs (runner and flow processes authenticate).
        order = {
            "order_id": "LOCK-1",
            "customer_id": "ALFKI",
            "order_date": "2030-03-01",
            "due_date": "2030-03-20",
            "lines": [{"product_id": 1, "quantity": 2, "unit_price": 18.0}],
        }
        posted = httpx.post(
            f"http://127.0.0.1:{intake}/orders",
            json=order,
            timeout=30,
            headers={"Authorization": "Bearer intake-token-for-the-test"},
        )
        assert posted.status_code == 201, posted.text

        def pipeline_ran() -> bool:  # done, or waiting for a person: either way it ran authenticated
            runs = httpx.post(
                f"{api}/flow_runs/filter",
                headers=basic,
                timeout=10,
                json={"flow_runs": {"name": {"like_": "order-LOCK-1"}}, "limit": 20},
            ).json()
            return any(r["state_type"] in ("COMPLETED", "PAUSED") for r in runs)

        wait_for(pipeline_ran, PIPELINE_SECONDS, "the order's pipeline ran", log, proc)

        # The CLI talks to the locked server with the credential kept in HANDOFF_HOME.
        reads = (
            "from prefect.client.orchestration import get_client\n"
            "from handoff.core.settings import settings\n"
            "from handoff.runtime import prefect_server\n"
            "with prefect_server.using(settings.prefect_ui_url), get_client(sync_client=True) as c:\n"
            "    print('RUNS', len(c.read_flow_runs(limit=5)))\n"
        )
        cli = subprocess.run(
            [sys.executable, "-c", reads], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert cli.returncode == 0 and "RUNS" in cli.stdout, cli.stdout + cli.stderr
        stranger = subprocess.run(
            [sys.executable, "-c", reads],
            env={**env, "HANDOFF_HOME": str(tmp_path / "elsewhere")},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert stranger.returncode != 0 and "401" in stranger.stdout + stranger.stderr
        assert httpx.get(f"http://127.0.0.1:{worklist}/health", timeout=10).status_code == 200
        assert "Unauthorized" not in log.read_text(errors="replace"), tail(log)

        # Ctrl-C stops everything it started, the Prefect server (in its own session) included.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=90) == 0, tail(log)
        assert "stopped;" in log.read_text(errors="replace"), tail(log)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{api}/health", timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    print(json.dumps({"log_tail": tail(log, 1500)}))
