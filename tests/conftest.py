"""Shared fixtures: one Prefect test server for the whole session, and a fresh handoff
database for each test (a new SQLite file, brought to head by the same Alembic migrations
users get)."""

from __future__ import annotations

import contextlib
import os
import shutil
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
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=False,
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


# Tests whose database work happens in other threads or processes (flow runs, stand-in reps,
# racing processes) need real commits; the rest run inside one transaction rolled back at the end.
NEEDS_COMMITS = {"prefect_harness", "responder"}


def needs_commits(request: pytest.FixtureRequest) -> bool:
    return bool(NEEDS_COMMITS & set(request.fixturenames)) or request.node.get_closest_marker("committed") is not None


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """One SQLite file brought to head by the same Alembic migrations users get, once."""
    from alembic import command

    from handoff.core.db import alembic_config

    path = tmp_path_factory.mktemp("migrated") / "handoff.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "head")
    return path


@pytest.fixture
def db(request, tmp_path, monkeypatch, migrated_sqlite):
    """The test's handoff database, at head: SQLite (the embedded default), or PostgreSQL
    (production) for a test parametrized with `indirect=["db"]`.

    A test that needs real commits (see `needs_commits`; mark others `@pytest.mark.committed`)
    gets a database of its own: a copy of the migrated SQLite file, or a new PostgreSQL database
    dropped afterwards. Every other test runs inside one transaction that is rolled back at the
    end; the code under test commits savepoints within it."""
    backend = getattr(request, "param", "sqlite")
    monkeypatch.setattr(settings, "home", tmp_path)
    if backend == "postgres":
        cluster = request.getfixturevalue("postgres")
        url = cluster.new_database()
    else:
        path = tmp_path / "handoff.db"
        shutil.copyfile(migrated_sqlite, path)
        url = f"sqlite:///{path}"
    monkeypatch.setattr(settings, "database_url", url)
    from handoff.core import db as database

    if needs_commits(request):
        database.engine()
        yield url
    else:
        with rolled_back(url) as factory:
            monkeypatch.setattr(database, "_session_factory", lambda _url: factory)
            yield url
    database.engine_for(url).dispose()
    if backend == "postgres":
        cluster.drop_database(url)


@contextlib.contextmanager
def rolled_back(url: str):
    """A session factory whose every unit of work is a savepoint in one outer transaction,
    rolled back when the block ends (SQLAlchemy's "join an external transaction" recipe; on
    SQLite, pysqlite's own transaction handling is switched off so SAVEPOINT works)."""
    from sqlalchemy import event
    from sqlalchemy.orm import sessionmaker

    from handoff.core.db import engine_for
    from handoff.core.sqlite_driver import new_engine

    engine_for(url)  # at head
    engine = new_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection, _record) -> None:  # noqa: ANN001
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:  # noqa: ANN001
            connection.exec_driver_sql("BEGIN")

    connection = engine.connect()
    outer = connection.begin()
    try:
        yield sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
    finally:
        outer.rollback()
        connection.close()
        engine.dispose()


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the session (Debian's postgresql, which .ci/run
    installs); the tests that need it are skipped where it is not installed."""
    from handoff.runtime.postgres import PostgresCluster
    from handoff.runtime.postgres import find_bindir

    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    with PostgresCluster() as cluster:
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

QUICK_BACKOFF_SECONDS = 0.01


@pytest.fixture(scope="session")
def sandbox_server():
    from sandbox.faults import Faults
    from sandbox.server import start_sandbox

    with start_sandbox(faults=Faults()) as handle:
        yield handle


def all_client_tasks() -> list:
    """Every Prefect task of the five client modules."""
    from prefect import Task

    from tasks import activation
    from tasks import billing
    from tasks import calendar
    from tasks import crm
    from tasks import provisioning

    return [
        v for m in (crm, provisioning, activation, billing, calendar) for v in vars(m).values() if isinstance(v, Task)
    ]


@pytest.fixture
def client_tasks() -> list:
    return all_client_tasks()


@pytest.fixture
def client_timeout() -> float:
    """How long the clients wait for the sandbox (tests/sandbox make it shorter: an injected
    hang then costs less)."""
    return 1.0


@pytest.fixture
def quick_retries(monkeypatch):
    """The same retry policy, with delays of 10 ms, 20 ms, ... instead of seconds."""
    from prefect.tasks import exponential_backoff

    from tasks import http

    delays = exponential_backoff(backoff_factor=QUICK_BACKOFF_SECONDS)(http.RETRIES)
    for task in all_client_tasks():
        monkeypatch.setattr(task, "retry_delay_seconds", delays)


@pytest.fixture
def sandbox(sandbox_server, monkeypatch, client_timeout, quick_retries):
    """The sandbox, empty and without faults, with the clients pointed at it."""
    import httpx

    from sandbox.faults import SYSTEMS
    from tasks import activation
    from tasks import billing
    from tasks import calendar
    from tasks import crm
    from tasks import provisioning

    sandbox_server.sandbox.reset()
    monkeypatch.setattr(settings, "sandbox_url", sandbox_server.url)
    for system in SYSTEMS:
        monkeypatch.delenv(f"HANDOFF_{system.upper()}_URL", raising=False)
    for module in (crm, provisioning, activation, billing, calendar):
        monkeypatch.setattr(module.SYSTEM, "timeout", httpx.Timeout(client_timeout))
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
        from handoff.runtime.steps import StepNotReady
        from handoff.runtime.steps import complete_step
        from handoff.runtime.steps import waiting_steps

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
