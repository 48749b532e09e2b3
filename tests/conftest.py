"""Shared fixtures: one Prefect test server for the whole session, and a fresh handoff
database for each test (a new SQLite file, brought to head by the same Alembic migrations
users get)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# A SQLite Prefect server answers 500 "database is locked" under concurrent writes; the client
# retries those like 502/503 instead of failing the run.
os.environ.setdefault("PREFECT_CLIENT_RETRY_EXTRA_CODES", "500")

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from handoff.core.settings import settings

# Property tests: a bounded number of examples in CI ("ci", the default here); a long run is
# bench/hostile_intake.py. HYPOTHESIS_PROFILE=dev runs more.
hypothesis_settings.register_profile(
    "ci", max_examples=30, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.register_profile("dev", parent=hypothesis_settings.get_profile("ci"), max_examples=300)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (~10-15 s to start); never nest a second."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def bounded_waits(monkeypatch):
    """A flow left waiting by a failed test gives up after a while instead of blocking the
    session for the 7 days a real step may wait."""
    monkeypatch.setattr(settings, "human_step_timeout_seconds", 90)


@pytest.fixture
def db(request, tmp_path, monkeypatch):
    """A fresh, migrated handoff database for this test: SQLite (the embedded default), or
    PostgreSQL (production) for a test parametrized with `indirect=["db"]`."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgres":
        url = request.getfixturevalue("postgres").new_database()
    else:
        url = f"sqlite:///{tmp_path / 'handoff.core.db'}"
    monkeypatch.setattr(settings, "database_url", url)
    monkeypatch.setattr(settings, "home", tmp_path)
    from handoff.core.db import engine

    engine()
    yield settings.database_url


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the session (Debian's postgresql, which .ci/run
    installs); the tests that need it are skipped where it is not installed."""
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    with PostgresCluster(bindir) as cluster:
        yield cluster


@pytest.fixture
def catalogue(db):
    """Northwind's customers and products, the catalogue real orders are checked against."""
    from handoff.core.northwind import load_catalogue

    return load_catalogue()


@pytest.fixture
def reps(db):
    from handoff.runtime.standins import ensure_standin_reps

    ensure_standin_reps()


# --- the other systems, on localhost ---------------------------------------------------------

CLIENT_TIMEOUT_SECONDS = 1.0
QUICK_BACKOFF_SECONDS = 0.01


@pytest.fixture(scope="session")
def sandbox_server():
    from sandbox.faults import Faults
    from sandbox.server import start_sandbox

    with start_sandbox(faults=Faults()) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server, monkeypatch):
    """The sandbox, empty and without faults; the clients call it with short timeouts and
    retry delays of milliseconds (the same policy otherwise)."""
    import httpx
    from prefect.tasks import exponential_backoff

    from sandbox.faults import SYSTEMS
    from tasks import activation, billing, calendar, crm, http, provisioning

    sandbox_server.sandbox.reset()
    monkeypatch.setattr(settings, "sandbox_url", sandbox_server.url)
    for system in SYSTEMS:
        monkeypatch.delenv(f"HANDOFF_{system.upper()}_URL", raising=False)
    delays = exponential_backoff(backoff_factor=QUICK_BACKOFF_SECONDS)(http.RETRIES)
    for module in (crm, provisioning, activation, billing, calendar):
        monkeypatch.setattr(module, "TIMEOUT", httpx.Timeout(CLIENT_TIMEOUT_SECONDS))
        for value in vars(module).values():
            if hasattr(value, "retry_delay_seconds") and hasattr(value, "fn"):
                monkeypatch.setattr(value, "retry_delay_seconds", delays)
    yield sandbox_server
    sandbox_server.sandbox.reset()


class Responder:
    """Stand-in reps answering waiting steps in a background thread, as the assignee would
    (handoff.runtime.standins), unless a test gives its own answer for a work type."""

    def __init__(self) -> None:
        import threading

        self.overrides: dict = {}
        self.answered: list[tuple[str, int, dict]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from handoff.runtime.standins import standin_answer
        from handoff.runtime.steps import StepNotReady, complete_step, waiting_steps

        done: set[tuple[int, str]] = set()
        while not self.stop.is_set():
            for step in waiting_steps():
                if (step.item_id, step.input_key) in done or step.assignee is None:
                    continue
                answer = standin_answer(step.item_id)
                override = self.overrides.get(step.work_type)
                if override is not None:
                    answer = {**answer, **override(step, answer)}
                try:
                    complete_step(step.item_id, answer, wait_seconds=2)
                except StepNotReady:
                    continue
                done.add((step.item_id, step.input_key))
                self.answered.append((step.work_type, step.item_id, answer))
            self.stop.wait(0.2)


@pytest.fixture
def responder(prefect_harness, monkeypatch):
    import contextvars
    import threading

    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    r = Responder()
    thread = threading.Thread(target=contextvars.copy_context().run, args=(r.run,), daemon=True)
    thread.start()
    yield r
    r.stop.set()
    thread.join(timeout=10)


class PostgresCluster:
    """initdb + pg_ctl in a temp directory, on a free port, trusting local connections; one
    new database per test. As root it runs as the `postgres` user (initdb refuses root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="handoff-postgres-"))
        self.data = self.dir / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str | Path) -> None:
        done = subprocess.run([*self.as_postgres, *map(str, args)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def __enter__(self) -> "PostgresCluster":
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.dir / "server.log", "-w", "start", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c max_connections=200")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        from sqlalchemy import create_engine, text

        name = f"handoff_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)
