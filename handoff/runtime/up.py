"""`handoff up`: the back office, running — one command on one machine.

It starts (or reuses) the local Prefect server with its UI (locked with basic auth by
`--lock-ui`), the sandbox systems, the HTTP intake endpoint, the reps' worklist, and serves every deployment: order.received events start order pipelines,
sla-watch runs every minute, the handoff-meeting check daily, wip-review twice a day. With
`--feed northwind` it also feeds Northwind's orders through intake at a steady rate.

Ctrl-C stops everything. Everything lives on disk (handoff's database, Prefect's, the
sandbox ledger), so starting again carries on: stored orders not yet announced are announced,
waiting steps are still waiting, and completing one resumes its order.

This module starts and stops the stack; the jobs it runs that get orders and requests into their
pipelines (the outbox, the feed) are handoff.runtime.pipeline_starts.
"""

from __future__ import annotations

import contextvars
import fcntl
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO
from typing import Any
from typing import Protocol

from handoff.core import sqlite_driver
from handoff.core.settings import settings
from handoff.runtime import prefect_server
from handoff.runtime import warm_start
from handoff.runtime.pipeline_starts import Feed
from handoff.runtime.pipeline_starts import announce_pending_orders
from handoff.runtime.pipeline_starts import feed_orders

ROOT = prefect_server.ROOT
CHILD_STOP_SECONDS = 5.0  # a flow run told to stop gets this long before it is killed
SERVER_CHECK_SECONDS = 2.0


def start_systems(prefect_url: str):  # noqa: ANN201 (sandbox.server.SandboxServer)
    """Start the sandbox systems, then tell the processes flow runs start in (runner's or
    workers') where everything is: they read it from the environment."""
    from handoff.runtime import zombies
    from sandbox.server import start_sandbox

    sandbox_port = int(settings.sandbox_url.rsplit(":", 1)[-1].split("/")[0])
    systems = start_sandbox(sandbox_port, state_path=settings.home / "sandbox-ledger.jsonl")
    os.environ.update(
        {
            "HANDOFF_HOME": str(settings.home),
            "HANDOFF_DATABASE_URL": settings.sqlalchemy_url,
            "HANDOFF_SANDBOX_URL": systems.url,
            "PREFECT_API_URL": f"{prefect_url}/api",
            "PREFECT_CLIENT_RETRY_EXTRA_CODES": "500",
            **zombies.heartbeat_environment(),
        }
    )
    return systems


Job = Callable[[threading.Event, Callable[[str], None]], None]


def start_jobs(jobs: list[Job], stop: threading.Event, say: Callable[[str], None]) -> list[threading.Thread]:
    """Each job in a daemon thread (in a copy of this context) until `stop` is set."""
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(job, stop, say), daemon=True) for job in jobs
    ]
    for t in threads:
        t.start()
    return threads


def stop_jobs(stop: threading.Event, threads: list[threading.Thread]) -> None:
    """Tell the jobs to stop and give each a few seconds to finish what it is doing."""
    stop.set()
    for t in threads:
        t.join(timeout=5)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the stack cleanly (workers, server, the throwaway cluster),
    also when it was started in the background, where SIGINT comes in ignored (a shell's `cmd &`,
    or a parent that ignores it): without this, the Ctrl-C a supervisor sends is lost and the
    supervisor's later SIGKILL leaves the Prefect server, in its own session, running alone."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)


def hold_home() -> IO[str]:
    """One `handoff up` per home: two on one home ran two Prefect servers on one database (their
    migrations collided) and two sandboxes on one ledger (resource ids handed out twice). The
    lock goes with the process, however it ends; the file says whose it is."""
    settings.home.mkdir(parents=True, exist_ok=True)
    held = open(settings.home / "up.lock", "a+")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held.seek(0)
        owner = held.read().strip() or "?"
        held.close()
        raise SystemExit(
            f"handoff up is already running for {settings.home} (pid {owner}); stop it first, or set HANDOFF_HOME"
        ) from None
    held.seek(0)
    held.truncate()
    held.write(str(os.getpid()))
    held.flush()
    return held


_held_home: IO[str] | None = None


@contextmanager
def held_home() -> Iterator[None]:
    """`hold_home` for as long as the block runs; re-entrant within a process (`handoff up
    --postgres` holds it from before its PostgreSQL cluster starts, then starts the rest)."""
    global _held_home
    if _held_home is not None:
        yield
        return
    _held_home = hold_home()
    try:
        yield
    finally:
        _held_home.close()
        _held_home = None


def start_prefect_server(
    url: str, say: Callable[[str], None], timeout: float | None = None
) -> prefect_server.Server | None:
    """The Prefect server for this home: started, taken over if an earlier `handoff up` of this
    home left it running (its pid file), or None if someone else's answers at `url`."""
    server = prefect_server.start(
        url,
        log_path=str(settings.home / "prefect-server.log"),
        timeout=timeout,
        pidfile=settings.home / "prefect-server.pid",
    )
    how = {None: "already running", prefect_server.LeftBehind: "left running by an earlier `handoff up`, taken over"}
    say(f"Prefect server {how.get(type(server) if server else None, 'started')}: UI at {url}")
    return server


def stop_flow_runs(say: Callable[[str], None]) -> None:
    """Stop the flow runs this process started before the server they talk to: a run left
    retrying against a stopped server held `handoff up` at exit (multiprocessing joins its
    children) for as long as it kept trying. A run stopped here is restarted by its heartbeat
    check at the next start, its steps idempotent."""
    children = multiprocessing.active_children()
    if not children:
        return
    say(f"stopping {len(children)} flow run(s) in progress (they carry on at the next start)")
    for child in children:
        child.terminate()
    deadline = time.monotonic() + CHILD_STOP_SECONDS
    for child in children:
        child.join(timeout=max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(timeout=5)


def server_died(server: prefect_server.Server | None, died: threading.Event, say: Callable[[str], None]) -> bool:
    """Whether the Prefect server this `handoff up` started has stopped, said once. Checked on the
    way out too: its death often surfaces first as some other error (the runner failing to start
    its event emitter), which would name the symptom rather than the cause."""
    if server is None or server.poll() is None:
        return False
    if not died.is_set():
        died.set()
        say(f"the Prefect server stopped (exit code {server.returncode}): stopping")
    return True


def watch_server(server: prefect_server.Server, died: threading.Event, runner: Any = None) -> Job:
    """A job that stops `handoff up` loudly when the Prefect server it started dies: nothing can
    start or resume without it, and the outbox's quiet retries hid that. It exits non-zero, so
    a supervisor that restarts failed services restarts it."""

    def job(stop: threading.Event, say: Callable[[str], None]) -> None:
        while not stop.wait(SERVER_CHECK_SECONDS):
            if server_died(server, died, say):
                # Prefect's runner pauses every deployment as it stops, through the very server
                # that is gone: it retried for minutes. SIGINT, not SIGTERM, which it takes as
                # its own graceful stop (more calls to the server).
                if runner is not None:
                    runner.pause_on_shutdown = False
                os.kill(os.getpid(), signal.SIGINT)  # the main thread stops everything in order
                return

    return job


def run_up(feed: Feed | None, say: Callable[[str], None], lock_ui: bool | None = None) -> None:
    stop_on_signals()
    os.chdir(ROOT)  # deployments' entrypoints are paths inside the checkout
    with held_home():
        refuse_a_damaged_database(say)
        serve_until_stopped(feed, say, lock_ui)


def refuse_a_damaged_database(say: Callable[[str], None]) -> None:
    """Check handoff's SQLite database before anything reads or writes it. It holds every
    accepted order and every answer a rep sent; served damaged, a lost row shows up hours later
    as an order whose pipeline fails or a step no one can find, and new work is written on top
    of the damage. A soak run met exactly that (sqlite_driver.py). Refused, the operator can
    copy the file aside and recover it while nothing else touches it."""
    url = settings.sqlalchemy_url
    if not settings.check_database or not url.startswith("sqlite"):
        return
    path = url.removeprefix("sqlite:///")
    started = time.monotonic()
    found = sqlite_driver.damage(url)
    if not found:
        if os.path.exists(path):  # (a first start makes it)
            say(f"handoff's database checked, intact ({time.monotonic() - started:.1f} s)")
        return
    problems = "\n".join(f"  {problem}" for problem in found)
    raise SystemExit(
        f"handoff's database {path} is damaged; SQLite's integrity check found:\n{problems}\n"
        f"Nothing was started. Copy {path} (with any -wal file beside it) aside, then recover it "
        f"(`sqlite3 {path} .recover`) or restore a backup; HANDOFF_CHECK_DATABASE=false starts anyway."
    )


def serve_until_stopped(feed: Feed | None, say: Callable[[str], None], lock_ui: bool | None) -> None:
    """Everything `handoff up` runs, started in order and stopped on every way out."""
    from deployments import DEFINITIONS
    from deployments import serve
    from deployments import serving_runner
    from handoff.runtime import console_lock
    from handoff.runtime import zombies
    from handoff.runtime.intake_api import IntakeServer
    from handoff.runtime.intake_api import intake_token
    from handoff.runtime.standins import ensure_standin_reps
    from handoff.runtime.worklist import WorklistServer

    ensure_standin_reps()
    url = settings.prefect_ui_url
    locked = settings.lock_ui if lock_ui is None else lock_ui
    if locked:  # basic auth on the server; the runner and flow-run processes inherit the client side
        user = console_lock.lock_environment().split(":", 1)[0]
    stop, died = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    server = systems = intake = worklist = None
    try:  # everything started is stopped on every way out: an error, Ctrl-C or SIGTERM at any point
        server = start_prefect_server(url, say)
        if locked and not console_lock.refuses_strangers(url):
            raise SystemExit(f"--lock-ui: the Prefect server already running at {url} is not locked; stop it first")
        if locked:
            say(f"the Prefect UI and API are locked: user {user}, password in {settings.home / 'prefect-auth'}")
        systems = start_systems(url)
        say(f"sandbox systems (CRM, provisioning, activation, billing, calendar) at {systems.url}")
        if settings.warm_start and warm_start.enable():  # imports the flows once, in the background
            say("flow runs start from a warm fork server (HANDOFF_WARM_START=false: a fresh interpreter each)")
        with prefect_server.using(url):  # the runner's poll is HANDOFF_RUNNER_POLL_SECONDS
            # deployments, triggers and schedules exist before the first order is fed
            runner = serving_runner(settings.runner_process_limit, settings.runner_poll_seconds)
            if zombies.ensure_crash_silent_runs():  # a run killed with its process is restarted, not lost
                say("flow runs send heartbeats; one whose process died is marked Crashed and restarted")
            say(f"{len(DEFINITIONS)} deployments: " + ", ".join(d.name for d in DEFINITIONS))
            intake = IntakeServer(settings.intake_host, settings.intake_port).start(contextvars.copy_context().run)
            say(f"intake: POST {intake.url}/orders with 'Authorization: Bearer {intake_token()}'")
            worklist = WorklistServer(settings.worklist_host, settings.worklist_port).start(
                contextvars.copy_context().run
            )
            say(f"the reps' worklist: {worklist.url} (passwords: `handoff workers set-password NAME`)")
            jobs = [announce_pending_orders] + ([lambda stop, say: feed_orders(feed, stop, say)] if feed else [])
            if server is not None:
                jobs.append(watch_server(server, died, runner))
            threads = start_jobs(jobs, stop, say)
            say("serving the deployments — Ctrl-C stops everything")
            serve(runner)
    except KeyboardInterrupt:
        pass
    finally:
        stop_stack(server, died, say, (stop, threads), intake, worklist, lambda: stop_flow_runs(say), systems)


class Stoppable(Protocol):
    """A part of the stack that was started: a web app, the sandbox, the workers."""

    def stop(self) -> None: ...


def stop_stack(
    server: prefect_server.Server | None,
    died: threading.Event,
    say: Callable[[str], None],
    jobs: tuple[threading.Event, list[threading.Thread]],
    *parts: Stoppable | Callable[[], object] | None,
) -> None:
    """The one way out of `handoff up` and of its worker stack, called in `finally`.

    The server's death is looked for first, whichever error came first (a runner failing to start
    names the symptom). The jobs stop first, then the parts (a thing that stops, or a function
    that stops it) in the order given, the ones never started being None; the server stops last,
    its events flushed.
    """
    server_died(server, died, say)
    say("stopping…")
    stop_jobs(*jobs)
    for part in parts:
        if callable(part):
            part()
        elif part is not None:
            part.stop()
    prefect_server.flush_and_stop(server)
    say("stopped; `handoff up` carries on from here")
    raise_if_server_died(died)


def raise_if_server_died(died: threading.Event) -> None:
    """Called in `finally`: Prefect's runner ends its own SIGTERM with SystemExit(0)."""
    if died.is_set():
        raise RuntimeError(f"its Prefect server died (log: {settings.home / 'prefect-server.log'}); run it again")


__all__ = ["run_up"]
