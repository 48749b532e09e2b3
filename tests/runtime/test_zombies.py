"""The automation that marks a flow run Crashed when its heartbeats stop (handoff/runtime/zombies.py)."""

from __future__ import annotations

from handoff.runtime import zombies


def test_the_automation_is_created_once_and_spares_paused_and_suspended_runs(prefect_harness):
    from prefect.client.orchestration import get_client

    assert zombies.ensure_crash_silent_runs()
    assert zombies.ensure_crash_silent_runs()  # a second `handoff up` finds it and adds none
    with get_client(sync_client=True) as client:
        mine = [a for a in client.read_automations() if a.name == zombies.AUTOMATION_NAME]
    assert len(mine) == 1
    trigger = mine[0].trigger
    assert str(trigger.posture) in ("Proactive", "Posture.Proactive")
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    # a run waiting for a person sends no heartbeat and must not be crashed
    assert {"prefect.flow-run.Paused", "prefect.flow-run.Suspended", "prefect.flow-run.Completed"} <= trigger.expect
    assert trigger.within.total_seconds() > 3 * zombies.HEARTBEAT_SECONDS
    [action] = mine[0].actions
    assert action.type == "change-flow-run-state" and str(action.state).endswith("CRASHED")


def test_flow_run_processes_are_told_to_send_heartbeats():
    env = zombies.heartbeat_environment()
    assert int(env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]) == zombies.HEARTBEAT_SECONDS
