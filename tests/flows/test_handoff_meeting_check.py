"""The daily check starts each waiting account's meeting run once: Prefect de-duplicates the
runs by the account's idempotency key (tasks/deployment_runs.py), and a run that ended without
the account signed off is followed by exactly one new run.

The meeting deployment here has no worker, so its runs stay where the test puts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.client.schemas.filters import FlowRunFilterTags
from prefect.settings import get_current_settings
from prefect.states import Cancelled
from prefect.states import Completed
from prefect.states import Crashed
from prefect.states import Failed
from prefect.states import Paused
from prefect.states import Running
from prefect.states import Suspended

from flows.handoff_meeting_check import handoff_meeting_check
from handoff.core.db import session
from handoff.core.models import HandoffMeeting
from tasks.meetings import start_handoff_meeting

pytestmark = pytest.mark.usefixtures("prefect_harness", "meeting_deployment")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def meeting_deployment(prefect_harness):
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("handoff-meeting")
        return client.create_deployment(flow_id=flow_id, name="handoff-meeting")


def new_customer(prefix: str = "C") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


def runs_of(customer_id: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"customer:{customer_id}"]))
        )


def set_state(run_id: str, state) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, state, force=True)


def test_asking_again_keeps_the_run_under_way():
    customer = new_customer()
    first = start_handoff_meeting.fn(customer)
    assert start_handoff_meeting.fn(customer) == first == start_handoff_meeting.fn(customer)
    [run] = runs_of(customer)
    assert str(run.id) == first and run.name == f"handoff-{customer}"
    assert run.parameters == {"customer_id": customer} and run.idempotency_key == f"handoff-meeting:{customer}"


def test_accounts_whose_ids_share_a_prefix_each_get_their_run():
    """The name filter this replaces took "handoff-AB" for "handoff-ABC"'s run."""
    longer = new_customer("AB")
    shorter = longer[:-1]
    assert start_handoff_meeting.fn(longer) != start_handoff_meeting.fn(shorter)
    assert len(runs_of(longer)) == len(runs_of(shorter)) == 1


@pytest.mark.parametrize(
    "state", [Running, Paused, lambda: Suspended(timeout_seconds=3600)], ids=["running", "paused", "suspended"]
)
def test_a_run_running_or_waiting_for_a_sign_off_is_kept(state):
    customer = new_customer()
    first = start_handoff_meeting.fn(customer)
    set_state(first, state())
    assert start_handoff_meeting.fn(customer) == first
    assert len(runs_of(customer)) == 1


@pytest.mark.parametrize(
    "end", [Crashed, Failed, Cancelled, Completed], ids=["crashed", "failed", "cancelled", "completed"]
)
def test_a_run_that_ended_with_the_account_still_waiting_is_followed_by_one_new_run(end):
    customer = new_customer()
    first = start_handoff_meeting.fn(customer)
    set_state(first, end())
    second = start_handoff_meeting.fn(customer)
    assert second != first
    assert start_handoff_meeting.fn(customer) == second  # and then kept
    set_state(second, end())
    third = start_handoff_meeting.fn(customer)
    assert third not in (first, second) and start_handoff_meeting.fn(customer) == third
    keys = sorted(run.idempotency_key for run in runs_of(customer))
    assert keys == sorted(
        [
            f"handoff-meeting:{customer}",
            f"handoff-meeting:{customer}/after/{first}",
            f"handoff-meeting:{customer}/after/{second}",
        ]
    )


RACER = """
import sys, time
from pathlib import Path
customer, gun, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
from tasks.meetings import start_handoff_meeting
ready.touch()
while not gun.exists():
    time.sleep(0.001)
print(start_handoff_meeting.fn(customer))
"""


@pytest.mark.parametrize("first_run", ["none", "crashed"])
def test_two_checks_at_once_start_one_run(tmp_path, first_run):
    """Two processes (two `handoff up`s, or a check and a manual one) ask at the same moment."""
    customer = new_customer()
    if first_run == "crashed":
        set_state(start_handoff_meeting.fn(customer), Crashed())
    env = {
        **os.environ,
        "PREFECT_API_URL": str(get_current_settings().api.url),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    gun = tmp_path / "go"
    racers = []
    for k in range(2):
        ready = tmp_path / f"ready-{k}"
        racers.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", RACER, customer, str(gun), str(ready)],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _ in racers):
        assert time.monotonic() < deadline, "the racing processes did not start"
        assert all(p.poll() is None for _, p in racers), [p.communicate() for _, p in racers if p.poll() is not None]
        time.sleep(0.01)
    gun.touch()
    started = set()
    for _, p in racers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        started.add(out.strip().splitlines()[-1])
    live = [run for run in runs_of(customer) if not run.state.is_final()]
    assert len(started) == 1 and [str(run.id) for run in live] == list(started)


def test_the_daily_check_starts_each_waiting_accounts_meeting_once(db):
    waiting, signed = new_customer(), new_customer()
    with session() as s:
        s.add(HandoffMeeting(customer_id=waiting, attempt=1, agenda={}, status="to-schedule"))
        s.add(HandoffMeeting(customer_id=signed, attempt=1, agenda={}, status="signed"))
    for _ in range(2):
        result = handoff_meeting_check()
        assert result["accounts"] == 1
    assert len(runs_of(waiting)) == 1
    assert runs_of(signed) == []
