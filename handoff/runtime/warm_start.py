"""Start flow-run processes from a warm fork server instead of a fresh interpreter.

Why: `prefect.serve` runs every flow run in its own process, made with multiprocessing's
*spawn*: a new interpreter that imports Prefect and our flows again. On this hardware that is
about 1.7 s of CPU per run (and per resumed approval), most of the time between an
`order.received` event and its pipeline's first step, and the part that grows when the machine
is busy. A fork server imports all of that once, when `handoff up` starts; each flow run is then
a fork of it that starts in a few tens of milliseconds and shares the imported code's memory.

Each run is still its own process (a crash or a memory leak stays in one run), and Prefect still
tracks, cancels and reaps it exactly as before: only the way the process is made changes.
Prefect's `run_flow_in_subprocess` asks `multiprocessing.get_context("spawn")` for its process
factory; `enable()` answers that one call, inside `prefect.flow_engine` only, with a fork-server
context (handoff.runtime.prefect_patches.start_flow_runs_from, guarded by Prefect's version). Flow code is read when the fork server starts: restart `handoff up` after editing a
flow (`HANDOFF_WARM_START=false` goes back to a fresh interpreter per run).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import sys

from handoff.runtime import prefect_patches
from handoff.runtime.prefect_patches import flows_travel_by_reference  # `handoff up` sets it too

log = logging.getLogger(__name__)

# What a flow run imports before its first step; the fork server imports it once.
PRELOAD = [
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "deployments",
    "flows.order_pipeline",
    "flows.sla_watch",
    "flows.wip_review",
    "flows.handoff_meeting_check",
    "handoff.runtime.prefect_patches",  # a run's pickled flow is unpickled through it
    "handoff.runtime.warm_imports",  # what the steps load on first use: checklists, pandera, psycopg
    "handoff.cli.main",  # `handoff up`'s own entry point: every child re-runs it as its __main__
]


def enable(preload: list[str] | None = None) -> bool:
    """Make this process's Prefect runner start flow runs from a warm fork server.

    Starts the fork server now (it imports `preload` once, ~2 s) so that the first order does
    not wait for it. Returns False, and leaves Prefect as it is, where that cannot work.
    """
    if sys.platform == "win32" or "forkserver" not in multiprocessing.get_all_start_methods():
        log.warning("warm start needs a fork server (POSIX); flow runs start a fresh interpreter")
        return False
    if prefect_patches.flow_runs_start_warm():
        return True
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload if preload is not None else PRELOAD))
    if not prefect_patches.start_flow_runs_from(context):
        return False
    multiprocessing.forkserver.ensure_running()
    return True


def disable() -> None:
    """Back to Prefect's own spawn (tests; the fork server stops with this process)."""
    prefect_patches.start_flow_runs_as_prefect_does()


__all__ = ["PRELOAD", "disable", "enable", "flows_travel_by_reference"]
