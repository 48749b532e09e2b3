"""Each patch of (or reliance on) a private Prefect detail in handoff.runtime.prefect_patches:
what it changes, proved on the installed Prefect; and outside the tested versions, a warning
and either the patch anyway or Prefect's own behaviour, never a crash."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from packaging.version import Version
from prefect.server.database.configurations import AioSqliteConfiguration

from handoff.runtime import prefect_patches
from handoff.runtime import prefect_server


@pytest.fixture
def untested_prefect(monkeypatch):
    monkeypatch.setattr(prefect_patches, "prefect_version", lambda: Version("3.10.0"))
    monkeypatch.setattr(prefect_patches, "_warned", set())


def test_the_installed_prefect_is_a_tested_one():
    assert prefect_patches.is_tested(), prefect_patches.prefect_version()


# --- 1. SQLite writes begin IMMEDIATE --------------------------------------------------------
# A transaction that reads and then writes, while another writer commits in between: Prefect's
# DEFERRED transaction fails at once with "database is locked" (the server answers 503 and the
# automation that starts an order's pipeline retries 2 s later); begun IMMEDIATE, it holds the
# write lock from the start, the other writer waits its turn, and both writes land.


async def read_then_write_while_another_commits(url: str) -> int:
    config = AioSqliteConfiguration(connection_url=url)
    engine = await config.engine()
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE flow_run (id INTEGER)"))

    async def another_writer() -> None:
        async with await config.session(engine) as session, config.begin_transaction(session):
            await session.execute(sa.text("INSERT INTO flow_run VALUES (2)"))

    try:
        async with await config.session(engine) as session, config.begin_transaction(session):
            await session.execute(sa.text("SELECT count(*) FROM flow_run"))  # reads first
            other = asyncio.create_task(another_writer())
            # The other writer commits now (DEFERRED: nothing stops it), or waits for this one
            # (IMMEDIATE): give it time to do either, however busy the machine is.
            await asyncio.wait({other}, timeout=5)
            await session.execute(sa.text("INSERT INTO flow_run VALUES (1)"))
        await other
        async with engine.connect() as connection:
            return (await connection.execute(sa.text("SELECT count(*) FROM flow_run"))).scalar_one()
    finally:
        await engine.dispose()


@pytest.fixture
def immediate():
    yield prefect_patches.sqlite_writes_begin_immediate()
    prefect_patches.sqlite_writes_begin_as_prefect_does()


def test_prefects_deferred_transaction_fails_when_another_write_comes_between(tmp_path):
    prefect_patches.sqlite_writes_begin_as_prefect_does()
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        asyncio.run(read_then_write_while_another_commits(f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"))


def test_begun_immediate_both_writes_land(tmp_path, immediate):
    assert immediate
    assert asyncio.run(read_then_write_while_another_commits(f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}")) == 2


def test_outside_the_tested_versions_immediate_applies_with_a_warning(tmp_path, untested_prefect, caplog):
    prefect_patches.sqlite_writes_begin_as_prefect_does()
    with caplog.at_level(logging.WARNING, logger=prefect_patches.__name__):
        assert prefect_patches.sqlite_writes_begin_immediate()
    try:
        assert f"is tested on Prefect {prefect_patches.TESTED}; this is Prefect 3.10.0" in caplog.text
        assert asyncio.run(read_then_write_while_another_commits(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")) == 2
    finally:
        prefect_patches.sqlite_writes_begin_as_prefect_does()


def test_where_prefect_moved_the_detail_it_is_left_alone_and_says_so(monkeypatch, caplog):
    from prefect.server.database import configurations

    class Moved:  # a Prefect whose SQLite configuration no longer has begin_transaction
        pass

    monkeypatch.setattr(configurations, "AioSqliteConfiguration", Moved)
    with caplog.at_level(logging.WARNING, logger=prefect_patches.__name__):
        assert prefect_patches.sqlite_writes_begin_immediate() is False
    assert "has no AioSqliteConfiguration.begin_transaction; writes begin DEFERRED" in caplog.text
    assert not hasattr(Moved, "begin_transaction")


# --- end to end: the server `handoff up` starts -----------------------------------------------


def free_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def a_write_that_reads_first_while_the_database_is_held(url: str, home: Path) -> int:
    """Hold SQLite's write lock on the server's database and change a row; meanwhile ask the
    server to create a run of a deployment (it reads the deployment, then writes the run, as
    when an order.received event starts a pipeline). Then commit. Returns the server's answer,
    sent once (no client retries)."""
    api = f"{url}/api"
    flow = httpx.post(f"{api}/flows/", json={"name": "immediate-probe"}, timeout=30).json()
    deployment = httpx.post(f"{api}/deployments/", json={"name": "probe", "flow_id": flow["id"]}, timeout=30).json()
    holder = sqlite3.connect(home / "prefect.db", timeout=30, isolation_level=None)
    answer: dict[str, int] = {}
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE flow SET tags = tags")  # another writer's change, not yet committed

        def create_run() -> None:
            answer["status"] = httpx.post(
                f"{api}/deployments/{deployment['id']}/create_flow_run", json={}, timeout=60
            ).status_code

        request = threading.Thread(target=create_run)
        request.start()
        time.sleep(2.0)  # the server has begun its transaction meanwhile
        holder.execute("COMMIT")
        request.join(timeout=60)
    finally:
        holder.close()
    return answer["status"]


@dataclass
class Started:
    url: str
    home: Path
    pid: int = 0


@pytest.fixture(scope="module")
def both_servers(tmp_path_factory) -> Iterator[dict[str, Started]]:
    """The server `handoff up` starts and `prefect server start` itself, started side by side
    (each start costs ~20 s; one after the other the module paid twice)."""
    root = tmp_path_factory.mktemp("two-servers")
    plain = Started(free_url(), root / "prefect")
    ours = Started(free_url(), root / "handoff")
    plain.home.mkdir()
    ours.home.mkdir()
    env = {
        **os.environ,
        "PREFECT_HOME": str(plain.home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"{plain.url}/api",
    }
    for name in ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(name, None)
    with open(plain.home / "server.log", "ab") as log:
        prefects = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
            + ["--port", plain.url.rsplit(":", 1)[1]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    handoffs = None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PREFECT_HOME", str(ours.home))
            for name in ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
                patch.delenv(name, raising=False)
            handoffs = prefect_server.start(ours.url, log_path=str(ours.home / "server.log"), timeout=180)
        assert handoffs is not None
        ours.pid, plain.pid = handoffs.pid, prefects.pid
        deadline = time.monotonic() + 180
        while not prefect_server.is_up(plain.url):
            assert prefects.poll() is None and time.monotonic() < deadline, "prefect server start did not start"
            time.sleep(0.5)
        yield {"handoff": ours, "prefect": plain}
    finally:
        prefect_server.stop(prefects)
        if handoffs is not None:
            prefect_server.stop(handoffs)


@pytest.mark.slow
def test_the_server_handoff_up_starts_begins_its_writes_immediate(both_servers):
    """`handoff up` starts the server with handoff.runtime.prefect_server.start; a write that
    reads first waits for the lock there and lands (201), where Prefect's own server (below)
    fails it with "database is locked" (503)."""
    ours = both_servers["handoff"]
    assert a_write_that_reads_first_while_the_database_is_held(ours.url, ours.home) in (200, 201)


@pytest.mark.slow
def test_prefects_own_server_fails_the_same_write(both_servers):
    """The control: the same request against `prefect server start` itself."""
    plain = both_servers["prefect"]
    assert a_write_that_reads_first_while_the_database_is_held(plain.url, plain.home) == 503


def sqlite_libraries(pid: int) -> set[str]:
    """The SQLite libraries a process has loaded: Python's `_sqlite3` links the system's
    libsqlite3; pysqlite3's module carries its own SQLite inside it."""
    mapped = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line}
    return {Path(m).name for m in mapped if "sqlite" in Path(m).name}


@pytest.mark.slow
def test_the_server_handoff_up_starts_keeps_its_database_with_a_sqlite_free_of_the_wal_reset_bug(both_servers):
    """Prefect's database holds every run and paused step; the server `handoff up` starts opens
    it with pysqlite3's SQLite (handoff.core.sqlite_driver), the only SQLite in that process.
    The control: `prefect server start` itself uses the system's (3.40.1 on Debian 12)."""
    for started in both_servers.values():  # each has opened its database: it answered a query
        httpx.post(f"{started.url}/api/flows/filter", json={}, timeout=30).raise_for_status()
    ours, plain = sqlite_libraries(both_servers["handoff"].pid), sqlite_libraries(both_servers["prefect"].pid)
    assert any(name.startswith("_sqlite3") and "pysqlite3" not in name for name in plain), plain
    assert any("libsqlite3" in name for name in plain), plain
    assert not any("libsqlite3" in name for name in ours), ours
    assert any(name.startswith("_sqlite3") for name in ours), ours  # pysqlite3/_sqlite3.cpython-311-….so


# --- 2. warm start: Prefect's process factory ------------------------------------------------


def test_flow_runs_start_from_the_given_context_and_back():
    import multiprocessing

    from prefect import flow_engine

    context = multiprocessing.get_context("forkserver")
    try:
        assert prefect_patches.start_flow_runs_from(context)
        assert flow_engine.multiprocessing.get_context("spawn") is context
        assert flow_engine.multiprocessing.get_context("fork") is multiprocessing.get_context("fork")
        assert flow_engine.multiprocessing.Process is multiprocessing.Process
    finally:
        prefect_patches.start_flow_runs_as_prefect_does()
    assert flow_engine.multiprocessing is multiprocessing


def test_a_flow_engine_that_makes_processes_another_way_is_left_alone(monkeypatch, caplog):
    import multiprocessing

    from prefect import flow_engine

    monkeypatch.setattr(flow_engine, "multiprocessing", None, raising=False)
    with caplog.at_level(logging.WARNING, logger=prefect_patches.__name__):
        assert prefect_patches.start_flow_runs_from(multiprocessing.get_context("forkserver")) is False
    assert flow_engine.multiprocessing is None
    assert "flow runs start a fresh interpreter" in caplog.text


# --- 3. flows pickled by reference -----------------------------------------------------------


def test_a_module_flow_pickles_as_a_reference_to_its_module():
    from flows.sla_watch import sla_watch

    assert prefect_patches.flows_travel_by_reference()
    data = pickle.dumps(sla_watch)
    assert b"flows.sla_watch" in data and len(data) < 500  # a name, not the code
    assert pickle.loads(data) is sla_watch


def test_a_flow_made_inside_a_function_still_pickles_by_value():
    from prefect import flow

    @flow
    def local() -> int:
        return 1

    import cloudpickle  # what Prefect's runner uses

    prefect_patches.flows_travel_by_reference()
    assert cloudpickle.loads(cloudpickle.dumps(local)).fn() == 1


# --- 4. the keys a paused run waits on -------------------------------------------------------


def test_the_keys_come_from_the_paused_state_prefect_stores():
    from prefect.input import keyset_from_paused_state
    from prefect.states import Paused
    from prefect.states import Suspended

    for state in (Paused(pause_key="work-item-7-0"), Suspended(pause_key="work-item-7-1")):
        state.state_details.run_input_keyset = keyset_from_paused_state(state)
        keyset = prefect_patches.pause_keyset(state)
        assert keyset == state.state_details.run_input_keyset
        assert keyset["schema"].endswith(f"{prefect_patches.pause_key(state)}-schema")


def test_a_run_not_paused_for_input_has_no_keys():
    from prefect.states import Paused
    from prefect.states import Running

    assert prefect_patches.pause_keyset(Running()) is None
    assert prefect_patches.pause_keyset(Paused(pause_key="x")) is None  # paused without a form


@pytest.mark.slow
def test_a_waiting_run_keyset_read_from_the_server_finds_its_form(prefect_harness):
    """A real pause: the keyset read from the run's state names the schema the run saved."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    from prefect import flow
    from prefect import pause_flow_run
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter
    from prefect.client.schemas.filters import FlowFilterName
    from prefect.input import RunInput

    class Answer(RunInput):
        ok: bool

    @flow(name="keyset-probe")
    def waits() -> bool:
        return pause_flow_run(wait_for_input=Answer, key="work-item-99-0", timeout=60, poll_interval=1).ok

    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(contextvars.copy_context().run, waits, return_state=True)
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 60
            while True:
                # This probe's run only: the session's server also holds other tests' paused runs.
                runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["keyset-probe"])))
                run = next((r for r in runs if r.state.is_paused()), None)
                if run is not None:
                    keyset = prefect_patches.pause_keyset(run.state)
                    if keyset and client.filter_flow_run_input(run.id, keyset["schema"], 1, set()):
                        break
                assert time.monotonic() < deadline, "the probe never paused for its form"
                time.sleep(0.3)
            assert prefect_patches.pause_key(run.state) == "work-item-99-0"
            assert client.resume_flow_run(run.id, run_input={"ok": True}).status.value == "ACCEPT"
        assert done.result(timeout=60).result() is True


# --- 5. the drain of queued events and logs --------------------------------------------------


def test_the_drain_sends_what_was_queued(monkeypatch, untested_prefect, caplog):
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    drained = []
    for worker in (EventsWorker, APILogWorker):
        monkeypatch.setattr(worker, "drain_all", classmethod(lambda cls, timeout=None: drained.append(cls)))
    with caplog.at_level(logging.WARNING, logger=prefect_patches.__name__):
        assert prefect_patches.drain_client_services(timeout=1)  # outside the tested range: still drains
    assert set(drained) == {EventsWorker, APILogWorker}
    assert "drain of queued events and logs is tested on Prefect" in caplog.text


def test_without_a_drain_the_stop_goes_on_and_says_so(monkeypatch, caplog):
    from prefect.events.worker import EventsWorker

    monkeypatch.setattr(EventsWorker, "drain_all", None)
    with caplog.at_level(logging.WARNING, logger=prefect_patches.__name__):
        assert prefect_patches.drain_client_services(timeout=1) is False
    assert "EventsWorker.drain_all" in caplog.text


# --- 6. one verified TLS context for a process's API clients --------------------------------
# Prefect builds a TLS context (parsing the whole CA bundle) for every client it makes; shared,
# a verified context is built once per CA file — and only a verified one is ever shared.


@pytest.fixture
def contexts_built(monkeypatch):
    """Every context the real `ssl.create_default_context` builds, with the arguments asked."""
    import ssl

    built: list[tuple[dict, ssl.SSLContext]] = []
    real = ssl.create_default_context

    def building(*args, **kwargs):
        context = real(*args, **kwargs)
        built.append((kwargs, context))
        return context

    monkeypatch.setattr(ssl, "create_default_context", building)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # a client, never a connection
    yield built
    prefect_patches.api_clients_build_tls_contexts_as_prefect_does()


def clients_verify_with(count: int, settings: dict | None = None) -> list:
    """The TLS context each of `count` new Prefect API clients (sync and async) hands httpx."""
    from prefect.client.orchestration import get_client
    from prefect.settings import temporary_settings

    seen = []
    with temporary_settings(updates=settings or {}):
        for i in range(count):
            client = get_client(sync_client=bool(i % 2))
            transport = client._client._transport._pool  # httpx's pool holds the context it was given
            seen.append(transport._ssl_context)
    return seen


def test_clients_share_one_verified_context_that_still_verifies(contexts_built):
    assert prefect_patches.api_clients_share_tls_contexts()
    contexts = clients_verify_with(6)
    assert len({id(c) for c in contexts}) == 1
    import ssl

    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname
    assert [kwargs for kwargs, _ in contexts_built] == [{"cafile": contexts_built[0][0]["cafile"]}]


def test_without_the_patch_each_client_builds_its_own(contexts_built):
    contexts = clients_verify_with(4)
    assert len({id(c) for c in contexts}) == 4 and len(contexts_built) == 4


def test_an_unverified_context_is_never_shared_nor_poisons_the_verified_one(contexts_built):
    import ssl

    from prefect.settings import PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    assert prefect_patches.api_clients_share_tls_contexts()
    verified = clients_verify_with(1)[0]
    loose = clients_verify_with(3, {PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True})
    assert len({id(c) for c in loose}) == 3 and all(c.verify_mode == ssl.CERT_NONE for c in loose)
    again = clients_verify_with(1)[0]
    assert again is verified and again.verify_mode == ssl.CERT_REQUIRED and again.check_hostname


def test_a_ca_bundle_changed_on_disk_gets_a_new_context(contexts_built, tmp_path):
    import os

    import certifi
    from prefect.settings import PREFECT_API_SSL_CERT_FILE

    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    assert prefect_patches.api_clients_share_tls_contexts()
    first = clients_verify_with(2, {PREFECT_API_SSL_CERT_FILE: str(bundle)})
    os.utime(bundle, (time.time() + 60, time.time() + 60))  # rotated
    second = clients_verify_with(2, {PREFECT_API_SSL_CERT_FILE: str(bundle)})
    assert first[0] is first[1] and second[0] is second[1] and first[0] is not second[0]


def test_where_prefects_clients_no_longer_call_ssl_they_are_left_alone(monkeypatch, caplog):
    from prefect.client import orchestration

    monkeypatch.delattr(orchestration, "ssl")
    with caplog.at_level(logging.WARNING, logger=prefect_patches.__name__):
        assert prefect_patches.api_clients_share_tls_contexts() is False
    assert "`ssl` in prefect.client.orchestration" in caplog.text


def test_the_fork_server_builds_the_shared_context_before_any_run(contexts_built):
    """warm_imports (imported by the fork server) shares and builds it: runs fork with it."""
    import importlib

    from handoff.runtime import warm_imports

    importlib.reload(warm_imports)
    assert len(contexts_built) == 1
    assert clients_verify_with(2) == [contexts_built[0][1]] * 2
