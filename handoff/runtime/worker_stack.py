"""The production stack: Prefect's server and handoff's database on PostgreSQL, a work pool with
N workers, the intake endpoint, the outbox and the schedules.

    handoff up --postgres --workers 2      # all on this machine, with a throwaway PostgreSQL cluster
    handoff up --workers 2                 # the same, on the databases the URLs below name
    handoff worker --pool back-office      # one more worker, on any machine that reaches the server

On one machine `handoff up --workers N` starts every piece; in production the same pieces take
URLs and run where they should: Prefect's server with `PREFECT_SERVER_DATABASE_CONNECTION_URL=
postgresql+asyncpg://…`, handoff's database with `HANDOFF_DATABASE_URL=postgresql+psycopg://…`, and
each worker machine `handoff worker --pool NAME` (or `prefect worker start --pool NAME`, which
finds the `handoff-process` worker type through the `prefect.collections` entry point).

Workers are separate processes that poll the pool (every HANDOFF_RUNNER_POLL_SECONDS) and start
each flow run warm (handoff.runtime.warm_worker). Two workers never run one flow run twice: a
worker must move the run to Pending first, and the server accepts that from one worker only.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from handoff.core.settings import settings
from handoff.runtime import prefect_server
from handoff.runtime import zombies
from handoff.runtime.up import stop_on_signals

POOL = "back-office"
WORKER_STOP_SECONDS = 30
SERVER_START_SECONDS = 240


@dataclass
class StackSpec:
    workers: int = 0  # 0: `handoff up`'s one runner serves the deployments
    postgres: bool = False  # a throwaway PostgreSQL cluster for both databases
    prefect_database_url: str | None = None  # postgresql+asyncpg://… for Prefect's server
    pool: str = POOL
    warm: bool = True


def use_postgres(spec: StackSpec, say: Callable[[str], None]):
    """Start the throwaway cluster (if asked) and point Prefect's server and handoff at it; write
    where the databases are to HANDOFF_HOME/stack.json (benches and operators read it)."""
    cluster = None
    if spec.postgres:
        from handoff.runtime.postgres import PostgresCluster

        cluster = PostgresCluster().start()
        cluster.create_database("prefect")
        spec.prefect_database_url = cluster.url("prefect", driver="asyncpg")
        settings.database_url = cluster.create_database("handoff")
        say(
            f"throwaway PostgreSQL cluster on 127.0.0.1:{cluster.port} (removed at exit): "
            "databases `prefect` and `handoff`"
        )
    if spec.prefect_database_url:
        os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = spec.prefect_database_url
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "stack.json").write_text(
        json.dumps(
            {
                "handoff_database_url": settings.sqlalchemy_url,
                "prefect_database_url": spec.prefect_database_url or "sqlite (PREFECT_HOME)",
                "postgres_data": str(cluster.data) if cluster else None,
                "workers": spec.workers,
                "pool": spec.pool if spec.workers else None,
            },
            indent=2,
        )
    )
    return cluster


def run_stack(spec: StackSpec, feed, say: Callable[[str], None]) -> None:
    """`handoff up` with its production options."""
    from handoff.runtime.up import held_home
    from handoff.runtime.up import run_up

    stop_on_signals()
    with held_home():  # one per home, its PostgreSQL cluster included
        cluster = use_postgres(spec, say)
        try:
            if spec.workers:
                run_workers(spec, feed, say)
            else:
                run_up(feed, say)
        finally:
            if cluster is not None:
                cluster.stop()


def ensure_pool(name: str) -> None:
    """The work pool of `handoff-process` workers, made if it does not exist yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    from handoff.runtime.warm_worker import WORKER_TYPE
    from handoff.runtime.warm_worker import WarmProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name, type=WORKER_TYPE, base_job_template=WarmProcessWorker.get_default_base_job_template()
                )
            )


def worker_command(pool: str, name: str, warm: bool = True) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from handoff.cli.main import app; app()",
        "worker",
        "--pool",
        pool,
        "--name",
        name,
        *([] if warm else ["--cold"]),
    ]


class Workers:
    """N `handoff worker` processes on this machine; one that dies is started again."""

    def __init__(self, spec: StackSpec, say: Callable[[str], None]) -> None:
        self.spec, self.say = spec, say
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> Workers:
        for i in range(1, self.spec.workers + 1):
            self._start(f"{self.spec.pool}-{i}")
        return self

    def _start(self, name: str) -> None:
        with open(settings.home / f"{name}.log", "ab") as log:  # the worker keeps its own copy
            self.procs[name] = subprocess.Popen(
                worker_command(self.spec.pool, name, self.spec.warm),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its group: the worker, its fork server and its flow runs
            )

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(2):
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None:
                    self.say(
                        f"worker {name} exited with code {proc.returncode}; starting it again "
                        f"(log: {settings.home / (name + '.log')})"
                    )
                    self._start(name)

    def stop(self) -> None:
        """Each worker's whole process group: asked to stop, then killed. Stopping the worker
        alone left its fork server and flow runs running after `handoff up` said "stopped"
        (runs stopped here are restarted at the next start, their steps idempotent)."""
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # whatever of its group is still there
            proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def run_workers(spec: StackSpec, feed, say: Callable[[str], None]) -> None:
    """Server, sandbox, pool and deployments, N workers, intake, outbox and feed, until Ctrl-C."""
    from deployments import DEFINITIONS
    from deployments import deploy_all
    from handoff.runtime.intake_api import IntakeServer
    from handoff.runtime.intake_api import intake_token
    from handoff.runtime.pipeline_starts import announce_pending_orders
    from handoff.runtime.pipeline_starts import feed_orders
    from handoff.runtime.standins import ensure_standin_reps
    from handoff.runtime.up import ROOT
    from handoff.runtime.up import start_jobs
    from handoff.runtime.up import start_prefect_server
    from handoff.runtime.up import start_systems
    from handoff.runtime.up import stop_stack
    from handoff.runtime.up import watch_server

    os.chdir(ROOT)
    ensure_standin_reps()
    url = settings.prefect_ui_url
    stop, died = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    workers = Workers(spec, say)
    server = systems = intake = None
    try:  # everything started is stopped on every way out, as `handoff up`'s own runner
        # PostgreSQL migrations on a first start take longer than SQLite's; a busy machine more still
        server = start_prefect_server(url, say, timeout=SERVER_START_SECONDS)
        systems = start_systems(url)  # and what the workers (and their flow runs) read
        say(f"sandbox systems at {systems.url}")
        with prefect_server.using(url):
            ensure_pool(spec.pool)
            zombies.ensure_crash_silent_runs()  # a run whose worker died is restarted, not lost
            with contextlib.redirect_stdout(io.StringIO()):  # Prefect prints "next steps" per deployment
                deploy_all(spec.pool)
            say(f"{len(DEFINITIONS)} deployments in work pool {spec.pool!r}: " + ", ".join(d.name for d in DEFINITIONS))
            workers.start()
            say(
                f"{spec.workers} worker(s) on pool {spec.pool!r} ({'warm' if spec.warm else 'cold'} start); "
                f"more from any machine: handoff worker --pool {spec.pool}"
            )
            intake = IntakeServer(settings.intake_host, settings.intake_port).start(contextvars.copy_context().run)
            say(f"intake: POST {intake.url}/orders with 'Authorization: Bearer {intake_token()}'")
            jobs = [announce_pending_orders, lambda stop, say: workers.watch(stop)]
            if feed:
                jobs.append(lambda stop, say: feed_orders(feed, stop, say))
            if server is not None:  # its death stops the stack, exit 1 (it served nothing, quietly)
                jobs.append(watch_server(server, died))
            threads = start_jobs(jobs, stop, say)
            say("serving the deployments through the workers — Ctrl-C stops everything")
            while not stop.wait(3600):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        stop_stack(server, died, say, (stop, threads), workers, intake, systems)


def run_worker(pool: str, name: str | None, limit: int | None, warm: bool, say: Callable[[str], None]) -> None:
    """One worker on this machine, until Ctrl-C (`handoff worker`)."""
    import asyncio

    from prefect.settings import PREFECT_WORKER_QUERY_SECONDS
    from prefect.settings import temporary_settings

    from handoff.runtime.warm_worker import WarmProcessWorker

    stop_on_signals()
    # Its flow runs send heartbeats, on this machine as on `handoff up`'s: a run whose process
    # dies is then crashed and restarted (handoff.runtime.zombies, tasks/stranded.py).
    os.environ.update(zombies.heartbeat_environment())
    with temporary_settings(updates={PREFECT_WORKER_QUERY_SECONDS: settings.runner_poll_seconds}):
        worker = WarmProcessWorker(
            work_pool_name=pool, name=name, limit=limit or settings.runner_process_limit, warm=warm
        )
        warm_now = worker.warm_up() if warm else False
        say(
            f"worker {worker.name} on pool {pool!r}: polls every {settings.runner_poll_seconds:g} s, "
            f"{limit or settings.runner_process_limit} flow runs at once, "
            f"{'warm start (a fork server imported the flows)' if warm_now else 'a fresh interpreter per run'}"
        )
        try:
            asyncio.run(worker.start(printer=say))
        except KeyboardInterrupt:
            pass
