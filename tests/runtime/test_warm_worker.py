"""The `handoff-process` worker type: Prefect finds it the way it finds any worker type, and it
starts warm only the flows that are modules of the code on the worker's machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from prefect.flows import Flow

from handoff.runtime.warm_worker import WORKER_TYPE
from handoff.runtime.warm_worker import WarmProcessWorker
from handoff.runtime.warm_worker import flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]


def test_a_deployment_entrypoint_is_imported_as_a_module_of_this_checkout():
    import flows.billing

    flow = flow_from_entrypoint("flows/billing.py:billing")
    assert isinstance(flow, Flow)
    assert flow is flows.billing.billing  # the very object the fork server imported


@pytest.mark.parametrize(
    "entrypoint",
    [
        "flows/billing.py:no_such_flow",  # not there
        "flows/nowhere.py:billing",  # no such module
        "/etc/passwd.py:x",  # absolute paths are not this machine's code
        "../outside/flows.py:flow",  # nor paths out of it
        "flows/billing.py",  # no function
        "flows.billing:billing",  # not a file path
        "handoff/core/settings.py:settings",  # importable, but not a flow
        "",
    ],
)
def test_anything_else_starts_cold(entrypoint):
    assert flow_from_entrypoint(entrypoint) is None


def test_pyproject_registers_the_worker_type_for_prefect():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["prefect.collections"]["handoff"] == "handoff.runtime.warm_worker"
    assert WarmProcessWorker.type == WORKER_TYPE


def test_prefect_finds_the_worker_type_through_the_entry_point(tmp_path):
    """What `prefect worker start --pool P` does to find a pool's worker class, in a fresh
    interpreter that never imported handoff: installed metadata with the entry point (as
    `pip install` writes it) is enough."""
    dist = tmp_path / "handoff_probe-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: handoff-probe\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[prefect.collections]\nhandoff = handoff.runtime.warm_worker\n")
    probe = (
        "import sys; from prefect.cli._worker_utils import _load_worker_class; "
        "assert 'handoff.runtime.warm_worker' not in sys.modules; "
        f"cls = _load_worker_class({WORKER_TYPE!r}); print(cls.__module__, cls.__name__)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["handoff.runtime.warm_worker", "WarmProcessWorker"]


def test_the_default_job_template_is_a_process_workers():
    template = WarmProcessWorker.get_default_base_job_template()
    assert "command" in template["job_configuration"] and "working_dir" in template["variables"]["properties"]
