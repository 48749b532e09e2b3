"""`handoff up` starts and stops as one thing: one per home, nothing left running on any way out
(a port taken, its Prefect server dying, being killed itself), and flow runs stopped before the
server they talk to."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.test_sqlite_driver import index_short_of_its_rows
from tests.core.test_sqlite_driver import with_workers
from tests.runtime.test_console_lock import environment_without_prefect_and_handoff
from tests.runtime.test_console_lock import free_port
from tests.runtime.test_console_lock import tail

pytestmark = pytest.mark.slow
READY = "serving the deployments"
START_SECONDS = 420


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def server_pid(home: Path) -> int:
    return int((home / "prefect-server.pid").read_text().split()[0])


class Up:
    """One `handoff up` on `home` with ports of its own."""

    def __init__(self, home: Path, tmp: Path, name: str, intake: int | None = None, ui: int | None = None) -> None:
        self.ui, sandbox, worklist = ui or free_port(), free_port(), free_port()
        self.intake = intake or free_port()
        self.log = tmp / f"{name}.log"
        env = {
            **environment_without_prefect_and_handoff(),
            "HANDOFF_HOME": str(home),
            "HANDOFF_PREFECT_UI_URL": f"http://127.0.0.1:{self.ui}",
            "HANDOFF_SANDBOX_URL": f"http://127.0.0.1:{sandbox}",
            "HANDOFF_INTAKE_PORT": str(self.intake),
            "HANDOFF_WORKLIST_PORT": str(worklist),
            "HANDOFF_PREFECT_START_SECONDS": "300",
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "handoff.cli.main", "up"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, words: str, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while words not in self.text():
            assert self.proc.poll() is None, f"exited ({self.proc.returncode}) before {words!r}:\n{tail(self.log)}"
            assert time.monotonic() < deadline, f"no {words!r} within {seconds} s:\n{tail(self.log)}"
            time.sleep(0.5)

    def ended(self, seconds: float) -> int:
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`handoff up` still running after {seconds} s:\n{tail(self.log)}")

    def kill_all(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def test_one_up_per_home_and_nothing_left_running_on_any_way_out(tmp_path):
    home = tmp_path / "home"
    started: list[Up] = []
    try:
        first = Up(home, tmp_path, "first")
        started.append(first)
        first.wait_for(READY)
        server = server_pid(home)
        assert "handoff's database checked" not in first.text()  # a first start: nothing to check yet

        # A second one on the same home is told whose it is, and starts nothing.
        second = Up(home, tmp_path, "second")
        started.append(second)
        assert second.ended(60) != 0
        assert f"already running for {home} (pid {first.proc.pid})" in " ".join(second.text().split())
        assert server_pid(home) == server

        # Killed outright, it leaves its Prefect server behind (nothing could stop it)...
        first.proc.kill()
        first.proc.wait(timeout=30)
        assert alive(server)

        # ...which the next `handoff up` of this home takes over: here it cannot listen for
        # orders (the port is taken), says so, and stops everything, the server it took over too.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            third = Up(home, tmp_path, "third", intake=taken.getsockname()[1], ui=first.ui)
            started.append(third)
            assert third.ended(START_SECONDS) != 0
        said = " ".join(third.text().split())
        assert "left running by an earlier `handoff up`, taken over" in said
        assert "cannot listen" in said and "Traceback" not in said
        deadline = time.monotonic() + 30
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(server), tail(third.log)

        # Its Prefect server dying: `handoff up` says so and stops, rather than serving nothing.
        fourth = Up(home, tmp_path, "fourth")
        started.append(fourth)
        fourth.wait_for(READY)
        assert "handoff's database checked, intact" in fourth.text()
        os.kill(server_pid(home), signal.SIGKILL)
        assert fourth.ended(90) == 1  # a failure, for a supervisor that restarts failed services
        said = " ".join(fourth.text().split())
        # (Prefect's own events client logs its broken websocket; that is its log, not a crash.)
        assert "the Prefect server stopped" in said and "handoff up stopped: its Prefect server died" in said
    finally:
        for up in started:
            up.kill_all()
        if (home / "prefect-server.pid").exists() and alive(server_pid(home)):
            os.kill(server_pid(home), signal.SIGKILL)


def test_up_refuses_a_damaged_database_and_starts_nothing(tmp_path):
    """Served damaged, a lost row shows up hours later as a pipeline that fails or a step no one
    can find, with new work written on top. `handoff up` checks first and says what is wrong."""
    home = tmp_path / "home"
    home.mkdir()
    database = home / "handoff.db"
    with_workers(database)
    index_short_of_its_rows(database)
    as_found = database.read_bytes()
    up = Up(home, tmp_path, "damaged")
    try:
        assert up.ended(120) == 1
    finally:
        up.kill_all()
    said = up.text()
    assert f"handoff's database {database} is damaged" in said and READY not in said
    assert "row 6 missing from index ix_workers_change_seq" in said and "Traceback" not in said
    assert "HANDOFF_CHECK_DATABASE=false" in said
    assert not (home / "prefect-server.pid").exists() and database.read_bytes() == as_found

    database.write_bytes(b"\x00\xffnot SQLite" * 1000)  # not a database at all
    up = Up(home, tmp_path, "not-a-database")
    try:
        assert up.ended(120) == 1
    finally:
        up.kill_all()
    assert "file is not a database" in up.text() and not (home / "prefect-server.pid").exists()


def _ignores_sigterm() -> None:  # pragma: no cover - runs in the child
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)


def test_flow_runs_still_running_are_stopped_even_when_they_ignore_the_request():
    """A run stuck retrying a stopped server held `handoff up` at exit for minutes: the children
    are told to stop, then killed."""
    from handoff.runtime.up import CHILD_STOP_SECONDS
    from handoff.runtime.up import stop_flow_runs

    child = multiprocessing.get_context("spawn").Process(target=_ignores_sigterm)
    child.start()
    time.sleep(1.0)  # its handler is in place
    said: list[str] = []
    started = time.monotonic()
    stop_flow_runs(said.append)
    assert not child.is_alive() and time.monotonic() - started < CHILD_STOP_SECONDS + 5
    assert said == ["stopping 1 flow run(s) in progress (they carry on at the next start)"]


def test_a_dead_prefect_server_is_named_as_the_cause_whichever_error_came_first():
    """Killed while the runner was still starting, the server's death surfaced as the runner's
    "failed to start: event_emitter" (CI, 30 November): the way out checks the server itself, so
    the cause is said, once, however many times it is checked."""
    import threading

    from handoff.runtime.up import server_died

    said: list[str] = []
    died = threading.Event()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not server_died(running, died, said.append) and not died.is_set()
        running.kill()
        running.wait(timeout=10)
        assert server_died(running, died, said.append) and server_died(running, died, said.append)
        assert died.is_set()
        assert said == [f"the Prefect server stopped (exit code {-signal.SIGKILL}): stopping"]
        assert not server_died(None, threading.Event(), said.append)  # one already running is not ours
    finally:
        running.kill()


WORKER_WITH_A_FLOW_RUN = r"""
import os, signal, subprocess, sys, time
# a worker whose flow run (its child, in its process group) keeps going when told to stop
run = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"])
open(sys.argv[1], "w").write(str(run.pid))
time.sleep(600)
"""


def test_stopping_the_worker_stack_stops_each_worker_s_fork_server_and_flow_runs(tmp_path, monkeypatch):
    """`handoff up --workers` said "stopped" with fork servers and flow runs of its workers
    still running (found by an outside tester): each worker now has its own process group,
    asked to stop, then killed whole."""
    from handoff.core.settings import settings
    from handoff.runtime import worker_stack

    monkeypatch.setattr(settings, "home", tmp_path)
    monkeypatch.setattr(worker_stack, "WORKER_STOP_SECONDS", 3)
    pidfile = tmp_path / "flow-run.pid"
    monkeypatch.setattr(
        worker_stack,
        "worker_command",
        lambda pool, name, warm: [sys.executable, "-c", WORKER_WITH_A_FLOW_RUN, str(pidfile)],
    )
    workers = worker_stack.Workers(worker_stack.StackSpec(workers=1), print).start()
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline, "the worker never started its flow run"
        time.sleep(0.1)
    flow_run = int(pidfile.read_text())
    assert alive(flow_run)
    workers.stop()
    deadline = time.monotonic() + 10
    while alive(flow_run) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(flow_run)
    assert all(p.poll() is not None for p in workers.procs.values())
