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
context. Flow code is read when the fork server starts: restart `handoff up` after editing a
flow (`HANDOFF_WARM_START=false` goes back to a fresh interpreter per run).
"""

from __future__ import annotations

import copyreg
import importlib
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import sys
from typing import Any

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
    "handoff.cli.main",  # `handoff up`'s own entry point: every child re-runs it as its __main__
]


class _ForkServerForSpawn:
    """Stands in for the `multiprocessing` module inside `prefect.flow_engine`."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self._context = context

    def get_context(self, method: str | None = None) -> Any:
        return self._context if method == "spawn" else multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def flows_travel_by_reference() -> None:
    """Send a flow to its run's process as "module.name", not as a copy of its code.

    Prefect's runner pickles the flow it starts. A flow's module attribute is the Flow, not its
    function, so cloudpickle copies the function by value, with only the globals its code names:
    a parameter annotated with an imported type under `from __future__ import annotations`
    (sla-watch's `now: datetime | None`) then cannot be resolved and every run fails before it
    starts. By reference, the process uses the flow exactly as its module defines it (and, with
    warm start, the one already imported).
    """
    from prefect.flows import Flow

    copyreg.pickle(Flow, _reduce_flow)


def _reduce_flow(flow: Any) -> Any:
    module = sys.modules.get(getattr(flow.fn, "__module__", ""), None)
    name = getattr(flow.fn, "__name__", "")
    if module is not None and module.__name__ != "__main__" and getattr(module, name, None) is flow:
        return _flow_in_module, (module.__name__, name)
    return flow.__reduce_ex__(4)  # not a module-level flow: Prefect's own way


def _flow_in_module(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def enable(preload: list[str] | None = None) -> bool:
    """Make this process's Prefect runner start flow runs from a warm fork server.

    Starts the fork server now (it imports `preload` once, ~2 s) so that the first order does
    not wait for it. Returns False, and leaves Prefect as it is, where that cannot work.
    """
    import prefect.flow_engine as flow_engine

    if sys.platform == "win32" or "forkserver" not in multiprocessing.get_all_start_methods():
        log.warning("warm start needs a fork server (POSIX); flow runs start a fresh interpreter")
        return False
    if not callable(getattr(getattr(flow_engine, "multiprocessing", None), "get_context", None)):
        log.warning("this Prefect's flow engine does not use multiprocessing.get_context; "
                    "flow runs start a fresh interpreter")
        return False
    if isinstance(flow_engine.multiprocessing, _ForkServerForSpawn):
        return True
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload if preload is not None else PRELOAD))
    multiprocessing.forkserver.ensure_running()
    flow_engine.multiprocessing = _ForkServerForSpawn(context)  # type: ignore[assignment]
    return True


def disable() -> None:
    """Back to Prefect's own spawn (tests; the fork server stops with this process)."""
    import prefect.flow_engine as flow_engine

    if isinstance(flow_engine.multiprocessing, _ForkServerForSpawn):
        flow_engine.multiprocessing = multiprocessing  # type: ignore[assignment]
