"""Flow runs started the way `handoff up`'s runner starts them (Prefect's
`run_flow_in_subprocess`), with warm start on: they fork from the fork server, which has
already imported the flows, and Prefect sees them run to the end as usual."""

from __future__ import annotations

import json
import multiprocessing.forkserver
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow_in_subprocess

from handoff.runtime import warm_start

pytestmark = pytest.mark.slow


@flow(name="warm-start-probe")
def probe(path: str) -> None:
    """Writes down which process ran it and what that process had imported before it began."""
    Path(path).write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "parent": os.getppid(),
                "pipeline_already_imported": "flows.order_pipeline" in sys.modules,
            }
        )
    )


@flow(name="dated-probe")
def dated_probe(path: str, as_of: datetime | None = None) -> None:
    """Like sla-watch: a parameter whose type (under `from __future__ import annotations`) is
    only a name the flow's module imports."""
    Path(path).write_text(json.dumps({"as_of": as_of.isoformat() if as_of else None}))


@pytest.fixture
def warm():
    assert warm_start.enable()
    yield multiprocessing.forkserver._forkserver._forkserver_pid
    warm_start.disable()


def run_in_a_process(tmp_path: Path, name: str) -> tuple[dict, str]:
    out = tmp_path / f"{name}.json"
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(probe, parameters={"path": str(out)})
        process = run_flow_in_subprocess(probe, flow_run=run, parameters={"path": str(out)})
        process.join(timeout=120)
        assert process.exitcode == 0
        return json.loads(out.read_text()), client.read_flow_run(run.id).state.type.value


def test_a_flow_run_forks_from_the_warm_server_and_completes(prefect_harness, warm, tmp_path):
    first, state = run_in_a_process(tmp_path, "first")
    second, _ = run_in_a_process(tmp_path, "second")

    assert state == "COMPLETED"
    assert first["parent"] == second["parent"] == warm  # both forked from the fork server
    assert first["pid"] != second["pid"] != os.getpid()  # each run still has its own process
    assert first["pipeline_already_imported"]  # the probe never imports it: the server did


def test_without_warm_start_prefect_spawns_a_fresh_interpreter(prefect_harness, tmp_path):
    warm_start.disable()
    ran, state = run_in_a_process(tmp_path, "cold")

    assert state == "COMPLETED"
    assert ran["parent"] == os.getpid()
    assert not ran["pipeline_already_imported"]


@pytest.mark.parametrize("warm_start_on", [True, False])
def test_a_flow_whose_parameter_types_are_imported_names_runs(prefect_harness, tmp_path, warm_start_on):
    """Prefect's runner pickles the flow for its process; pickled by value, the flow would lose
    its module's imports and fail to validate `as_of` ("`datetime` is not fully defined"),
    which is how every scheduled sla-watch run failed. Flows travel by reference instead."""
    warm_start.flows_travel_by_reference()  # as `handoff up` does (deployments.serving_runner)
    warm_start.enable() if warm_start_on else warm_start.disable()
    out = tmp_path / "dated.json"
    parameters = {"path": str(out), "as_of": datetime(2030, 3, 1, 9, 30)}
    try:
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(dated_probe, parameters=parameters)
            process = run_flow_in_subprocess(dated_probe, flow_run=run, parameters=parameters)
            process.join(timeout=120)
            state = client.read_flow_run(run.id).state
    finally:
        warm_start.disable()
    assert state.is_completed(), state.message
    assert json.loads(out.read_text()) == {"as_of": "2030-03-01T09:30:00"}


def test_a_forked_run_finds_its_checklists_and_drivers_already_loaded():
    """What the fork server preloads covers what the steps load on first use: after the preload,
    running every checklist to a failure (the heavier path) and opening the drivers imports no
    new module, and the first log line compiles no pattern. Measured with py-spy before this preload, those imports were half a flow run's CPU."""
    from handoff.runtime import warm_start

    assert {"handoff.runtime.prefect_patches", "handoff.runtime.warm_imports"} <= set(warm_start.PRELOAD)
    code = (
        "import sys\n"
        "import handoff.runtime.warm_imports as w\n"
        "import pandas as pd\n"
        "from checklists.common import findings\n"
        "before = set(sys.modules)\n"
        "failed = [m.__name__ for m in w.every_checklist() if findings(m, pd.DataFrame())]\n"
        "for name in w.LAZY_MODULES: __import__(name)\n"
        "import re, logging\n"
        "from sqlalchemy import create_engine\n"
        "create_engine('sqlite://').connect().close()\n"
        "create_engine('postgresql+psycopg://nobody@127.0.0.1:9/nothing')\n"
        "from prefect.logging.handlers import PrefectConsoleHandler\n"
        "patterns = len(re._cache)\n"
        "PrefectConsoleHandler().emit(logging.makeLogRecord({'msg': \"Flow run 'x' - Finished in state Completed()\"}))\n"
        "print('PATTERNS', len(re._cache) - patterns)\n"
        "print('FAILED', len(failed), 'NEW', sorted(set(sys.modules) - before))\n"
    )
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # no ephemeral server
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    patterns, rest = out.stdout.split("FAILED")
    assert patterns.split()[-1] == "0", out.stdout  # no pattern compiled for the first log line
    failed, new = rest.split("NEW")
    assert int(failed.split()[-1]) >= 5  # every checklist really ran, and failed, on an empty frame
    assert new.strip() == "[]", out.stdout
