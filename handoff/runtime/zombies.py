"""Flow runs whose process died — a kill, a crash, a power cut — are marked Crashed, so that
sla-watch restarts them (tasks/stranded.py) instead of their order waiting for ever.

A run killed with its process stays Running on the server: nobody is left to say otherwise.
Prefect's own answer (its "zombie flow runs" recipe) is used: every running flow run sends a
heartbeat event every `HEARTBEAT_SECONDS`, and an automation with a proactive trigger notices a
run whose heartbeats stop without the run finishing or pausing, and sets it Crashed. A paused or
suspended run sends none and is not touched: its Paused/Suspended event is one the trigger
expects. Works the same for `handoff up`'s runner and for workers on other machines.
"""

from __future__ import annotations

import logging
from datetime import timedelta

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30  # the least Prefect accepts
SILENCE = timedelta(seconds=100)  # a few missed heartbeats, not one slow one
AUTOMATION_NAME = "handoff: crash flow runs whose heartbeat stopped"

# Events after which a run rightly sends no more heartbeats.
QUIET_NOW = {
    "prefect.flow-run.heartbeat",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Cancelling",
    "prefect.flow-run.Paused",
    "prefect.flow-run.Suspended",
}


def heartbeat_environment() -> dict[str, str]:
    """What a flow-run process needs in its environment to send heartbeats."""
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}


def crash_silent_runs_automation():  # noqa: ANN201 - prefect.automations.Automation, imported late
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger
    from prefect.events.schemas.automations import Posture

    return Automation(
        name=AUTOMATION_NAME,
        description="A flow run that stopped sending heartbeats without finishing or pausing lost its "
        "process; marked Crashed, sla-watch starts it again.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect=QUIET_NOW,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=SILENCE,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {SILENCE.total_seconds():.0f} s: its process is gone",
            )
        ],
    )


def ensure_crash_silent_runs() -> bool:
    """Create the automation unless the server has it; False (logged) if the server refuses."""
    from prefect.automations import Automation

    try:
        Automation.read(name=AUTOMATION_NAME)
        return True
    except ValueError:  # not there yet
        pass
    try:
        crash_silent_runs_automation().create()
    except Exception as exc:  # noqa: BLE001 - runs still work; only a killed one waits longer
        log.warning("could not create the automation that crashes silent flow runs: %s", exc)
        return False
    return True
