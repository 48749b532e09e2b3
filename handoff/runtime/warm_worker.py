"""A Prefect worker type, `handoff-process`: a process worker whose flow runs start warm.

Why: Prefect's `process` worker starts every flow run, and every resumed approval, as a fresh
`python -m prefect.engine` that imports Prefect and the flows again (~1.7 s of CPU here). That
is what `handoff up`'s warm start removed for the single-machine runner
(handoff.runtime.warm_start); a user who scales out to workers would lose it exactly there.

How: Prefect (3.9) lets a package add worker types. A `BaseWorker` subclass with its own `type`
is registered when its module is imported, and `prefect worker start` imports the modules named
in the `prefect.collections` entry point group before it looks a pool's type up (handoff's
pyproject declares this module there). The worker's `run` is the extension point: for a
deployment whose entrypoint is a module of the code installed on the worker's machine
(`flows/order_pipeline.py:order_pipeline` → `flows.order_pipeline`), it hands the imported flow
to Prefect's own `run_flow_in_subprocess` (what `Runner.add_flow` does), and warm_start makes that
process a fork of a fork server that imported Prefect and the flows once. Each run is still its
own process, tracked, cancelled and reaped by Prefect's executor as for any process worker.
Anything else (a flow that is not importable here) runs the ordinary way, as Prefect's process
worker runs it.

What it gives up, on purpose: a warm run uses the flow code installed on the worker's machine,
not the deployment's `pull_steps` (a git clone per run). Deploy the same commit everywhere;
restart the workers after changing a flow (as `handoff up` needs a restart too).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import anyio
import anyio.abc
from prefect.workers.process import ProcessJobConfiguration
from prefect.workers.process import ProcessWorker
from prefect.workers.process import ProcessWorkerResult

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import Flow

WORKER_TYPE = "handoff-process"
log = logging.getLogger(__name__)


def flow_from_entrypoint(entrypoint: str) -> Flow[..., Any] | None:
    """The flow an entrypoint names, imported as a module of the code on this machine
    (`flows/billing.py:billing` → `flows.billing.billing`), or None if it is not importable."""
    from prefect.flows import Flow

    path, _, name = entrypoint.partition(":")
    if not path.endswith(".py") or not name or Path(path).is_absolute() or ".." in Path(path).parts:
        return None
    module_name = path.removesuffix(".py").replace("/", ".")
    try:
        flow = getattr(importlib.import_module(module_name), name, None)
    except Exception:  # noqa: BLE001 - not importable here: Prefect's ordinary way runs it
        log.info("entrypoint %s is not importable on this worker; it starts cold", entrypoint)
        return None
    return flow if isinstance(flow, Flow) else None


class WarmStarter:
    """Starts one flow run as a fork of the warm process (Prefect's ProcessStarter contract:
    signal the handle, then block until the process exits)."""

    def __init__(
        self, flow: Flow[..., Any], deployment_name: str | None, env: dict[str, str | None], control_channel: Any
    ) -> None:
        self.flow, self.deployment_name, self.env, self.control_channel = flow, deployment_name, env, control_channel

    async def start(
        self, flow_run: FlowRun, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        from prefect import flow_engine
        from prefect.runner._process_manager import ProcessHandle

        env: dict[str, str | None] = {**self.env, "PREFECT__DEPLOYMENT_NAME": self.deployment_name}
        registered = False
        if self.control_channel is not None:
            try:
                port, token = self.control_channel.register(flow_run.id)
                env.update({"PREFECT__CONTROL_PORT": str(port), "PREFECT__CONTROL_TOKEN": token})
                registered = True
            except RuntimeError:  # no loopback listener: Prefect falls back to kill-only cancellation
                pass
        handed_off = False
        try:
            process = flow_engine.run_flow_in_subprocess(self.flow, flow_run=flow_run, env=env)
            task_status.started(ProcessHandle(process))
            handed_off = True
            await anyio.to_thread.run_sync(process.join)
        except BaseException:
            if registered and not handed_off:
                self.control_channel.unregister(flow_run.id)
            raise


class WarmProcessWorker(ProcessWorker):
    """`prefect worker start --pool NAME --type handoff-process`, or `handoff worker --pool NAME`."""

    type = WORKER_TYPE
    job_configuration = ProcessJobConfiguration
    _display_name = "Process, warm start (handoff)"
    _description = (
        "Runs flow runs as subprocesses forked from a process that imported Prefect and the "
        "flows once; flows that are not importable on the worker run as a process worker's do."
    )

    def __init__(self, *args: Any, warm: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warm_requested = warm
        self._warm: bool | None = None  # decided when the first run comes (the fork server starts then)
        self._flows: dict[str, Any] = {}  # deployment id → (name, flow or None)
        self._executor_context: Any = None
        self._hook_runner: Any = None

    def warm_up(self) -> bool:
        """Start the fork server now (it imports the flows, ~2 s) so the first run does not wait."""
        from handoff.runtime import warm_start

        if self._warm is None:
            warm_start.flows_travel_by_reference()
            preload = list(warm_start.PRELOAD)
            if "prefect" in Path(sys.argv[0]).name:  # `prefect worker start`: each run re-imports its __main__
                preload.append("prefect.cli")
            self._warm = self._warm_requested and warm_start.enable(preload)
        return self._warm

    async def _deployment_flow(self, flow_run: FlowRun) -> tuple[str | None, Flow[..., Any] | None]:
        if flow_run.deployment_id is None:
            return None, None
        key = str(flow_run.deployment_id)
        if key not in self._flows:
            deployment = await self.client.read_deployment(flow_run.deployment_id)
            flow = flow_from_entrypoint(deployment.entrypoint or "")
            self._flows[key] = (deployment.name, flow)
        return self._flows[key]

    async def __aenter__(self) -> WarmProcessWorker:
        """One executor context (API client, process manager, cancellation observer, control
        channel) for all of this worker's warm runs, as Prefect's Runner keeps one: setting one up
        per run, as the process worker does, costs 1-2 s on a busy 2-core machine. It is entered
        here, in the worker's own task, because its task groups must be left in the same task."""
        from prefect.runner._flow_run_executor import FlowRunExecutorContext
        from prefect.runner._hook_runner import HookRunner

        await super().__aenter__()
        if self._warm_requested:
            context = FlowRunExecutorContext()
            await context.__aenter__()
            self._executor_context = context
            self._hook_runner = HookRunner(resolve_flow=self._resolve_flow)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await super().__aexit__(*exc)  # waits for the runs in flight
        finally:
            if self._executor_context is not None:
                context, self._executor_context = self._executor_context, None
                await context.__aexit__(None, None, None)

    async def _resolve_flow(self, flow_run: FlowRun) -> Flow[..., Any]:
        _, flow = await self._deployment_flow(flow_run)
        if flow is None:
            raise RuntimeError(f"flow run {flow_run.id} has no warm flow")
        return flow

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        deployment_name, flow = await self._deployment_flow(flow_run)
        if flow is None or configuration._command_configured or self._executor_context is None or not self.warm_up():
            return await super().run(flow_run, configuration, task_status)
        return await self._run_warm(
            flow_run, flow, deployment_name, configuration, task_status or anyio.TASK_STATUS_IGNORED
        )

    async def _run_warm(
        self,
        flow_run: FlowRun,
        flow: Flow[..., Any],
        deployment_name: str | None,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int],
    ) -> ProcessWorkerResult:
        import os

        from prefect.runner._flow_run_executor import FlowRunExecutionResult

        # Only what the pool's job template adds to this worker's own environment travels.
        job_env = {k: v for k, v in (configuration.env or {}).items() if os.environ.get(k) != v}
        execution: FlowRunExecutionResult | None = None
        ctx = self._executor_context
        starter = WarmStarter(flow, deployment_name, job_env, ctx.control_channel)
        executor = ctx.create_executor(flow_run, starter, hook_runner=self._hook_runner, propose_submitting=False)

        async def execute(*, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
            nonlocal execution
            execution = await executor.submit(task_status=task_status)

        async with anyio.create_task_group() as group:
            handle = await group.start(execute)
            if handle.pid is None:
                raise RuntimeError("Flow run process has no PID")
            task_status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("Failed to start flow run process.")
        return ProcessWorkerResult(status_code=execution.status_code, identifier=str(execution.handle.pid))
