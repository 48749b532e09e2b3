"""Every place handoff patches, or relies on, a private detail of Prefect — and only here.

Each is tested on the Prefect versions in `TESTED` (tests/runtime/test_prefect_patches.py). On
another version a patch still applies where the detail it needs is where it expects it, with a
warning in the log; where the detail has moved, Prefect is left as it is (its own, slower or
less strict, behaviour) and the log says so. Nothing here is needed for correctness on a
PostgreSQL Prefect server except the drain, which only speeds a clean stop.

| patch / reliance                  | private detail                                      | without it          |
|-----------------------------------|-----------------------------------------------------|---------------------|
| `sqlite_writes_begin_immediate`   | `AioSqliteConfiguration.begin_transaction`          | 503 + 2 s retries   |
| `start_flow_runs_from(context)`   | `prefect.flow_engine.multiprocessing.get_context`   | cold start, ~1.7 s  |
| `flows_travel_by_reference`       | the runner pickles the `Flow` object it starts      | runs fail to start  |
| `pause_keyset(state)`             | `state_details.run_input_keyset` / `pause_key`      | rebuilt like Prefect|
| `drain_client_services`           | `EventsWorker` / `APILogWorker.drain_all`           | last events lost    |
| `api_clients_share_tls_contexts`  | the `ssl` module Prefect's API clients call         | ~30 ms per client   |
"""

from __future__ import annotations

import copyreg
import importlib
import logging
import multiprocessing
import os
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

log = logging.getLogger(__name__)

TESTED = SpecifierSet(">=3.9.1,<3.10")


@lru_cache(maxsize=1)
def prefect_version() -> Version:
    import prefect

    return Version(prefect.__version__.split("+")[0])


def is_tested() -> bool:
    return prefect_version() in TESTED


_warned: set[str] = set()


def _outside_tested(patch: str) -> None:
    """Say once per process that a patch runs on a Prefect it was not tested on."""
    if not is_tested() and patch not in _warned:
        _warned.add(patch)
        log.warning(
            "%s is tested on Prefect %s; this is Prefect %s: applying it anyway, watch for errors",
            patch,
            TESTED,
            prefect_version(),
        )


def _cannot_apply(patch: str, missing: str, fallback: str) -> bool:
    log.warning("%s: Prefect %s has no %s; %s", patch, prefect_version(), missing, fallback)
    return False


# --- 1. the embedded server's SQLite writes begin IMMEDIATE ----------------------------------


def sqlite_writes_begin_immediate() -> bool:
    """Begin every SQLite write transaction of this process's Prefect server IMMEDIATE.

    Why: Prefect opens them DEFERRED. One that reads (creating a flow run reads its deployment
    first) and then writes fails at once with "database is locked" if another write committed in
    between (SQLite cannot wait for a newer snapshot); the server answers 503 and the caller
    retries 2 s later. Taking the write lock first makes a writer wait its turn (SQLite's busy
    timeout) instead — the remedy Prefect's own comment in its SQLite set-up names. Readers are
    not affected (WAL); SQLite has one writer at a time either way. Prefect itself asks for
    IMMEDIATE through `with_for_update=True`; this makes that the default.
    """
    patch = "SQLite writes begin IMMEDIATE"
    try:
        from prefect.server.database import configurations
    except ImportError:
        return _cannot_apply(patch, "prefect.server.database.configurations", "writes begin DEFERRED")
    sqlite = getattr(configurations, "AioSqliteConfiguration", None)
    deferred = getattr(sqlite, "begin_transaction", None)
    if deferred is None:
        return _cannot_apply(patch, "AioSqliteConfiguration.begin_transaction", "writes begin DEFERRED")
    if getattr(deferred, "_handoff_immediate", False):
        return True
    _outside_tested(patch)

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncGenerator[Any, None]:
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction._handoff_immediate = True  # type: ignore[attr-defined]
    begin_transaction._handoff_deferred = deferred  # type: ignore[attr-defined]
    sqlite.begin_transaction = begin_transaction  # type: ignore[union-attr]
    return True


def sqlite_writes_begin_as_prefect_does() -> None:
    """Undo `sqlite_writes_begin_immediate` (tests)."""
    from prefect.server.database.configurations import AioSqliteConfiguration as sqlite

    original = getattr(sqlite.begin_transaction, "_handoff_deferred", None)
    if original is not None:
        sqlite.begin_transaction = original  # type: ignore[method-assign]


# --- 2. flow runs fork from a warm fork server ----------------------------------------------


class _ForkServerForSpawn:
    """Stands in for the `multiprocessing` module inside `prefect.flow_engine`: answers its one
    `get_context("spawn")` with the given context, everything else as multiprocessing would."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def get_context(self, method: str | None = None) -> Any:
        return self._context if method == "spawn" else multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def start_flow_runs_from(context: Any) -> bool:
    """Make Prefect's `run_flow_in_subprocess` take its process factory from `context` (a
    fork-server context) instead of `multiprocessing.get_context("spawn")`. False, Prefect left
    as it is, where its flow engine does not make processes that way."""
    patch = "warm start"
    from prefect import flow_engine

    current = getattr(flow_engine, "multiprocessing", None)
    if isinstance(current, _ForkServerForSpawn):
        return True
    if not callable(getattr(current, "get_context", None)):
        return _cannot_apply(
            patch, "prefect.flow_engine.multiprocessing.get_context", "flow runs start a fresh interpreter"
        )
    _outside_tested(patch)
    flow_engine.multiprocessing = _ForkServerForSpawn(context)  # type: ignore[attr-defined]
    return True


def start_flow_runs_as_prefect_does() -> None:
    from prefect import flow_engine

    if isinstance(getattr(flow_engine, "multiprocessing", None), _ForkServerForSpawn):
        flow_engine.multiprocessing = multiprocessing  # type: ignore[attr-defined]


def flow_runs_start_warm() -> bool:
    from prefect import flow_engine

    return isinstance(getattr(flow_engine, "multiprocessing", None), _ForkServerForSpawn)


# --- 3. flows travel to their run's process by reference ------------------------------------


def flows_travel_by_reference() -> bool:
    """Send a flow to its run's process as "module.name", not as a copy of its code.

    Prefect's runner pickles the flow it starts. A flow's module attribute is the Flow, not its
    function, so cloudpickle copies the function by value, with only the globals its code names:
    a parameter annotated with an imported type under `from __future__ import annotations`
    (sla-watch's `now: datetime | None`) then cannot be resolved and every run fails before it
    starts. By reference, the process uses the flow exactly as its module defines it (and, with
    warm start, the one already imported). A flow that is not a module attribute goes Prefect's
    own way.
    """
    from prefect.flows import Flow

    if copyreg.dispatch_table.get(Flow) is _reduce_flow:
        return True
    _outside_tested("flows pickled by reference")
    copyreg.pickle(Flow, _reduce_flow)
    return True


def _reduce_flow(flow: Any) -> Any:
    module = sys.modules.get(getattr(flow.fn, "__module__", ""), None)
    name = getattr(flow.fn, "__name__", "")
    if module is not None and module.__name__ != "__main__" and getattr(module, name, None) is flow:
        return _flow_in_module, (module.__name__, name)
    return flow.__reduce_ex__(4)


def _flow_in_module(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


# --- 4. the keys a paused run waits on ------------------------------------------------------


def pause_key(state: Any) -> str | None:
    """The key the flow gave `pause_flow_run` / `suspend_flow_run` (ours: "work-item-12-0")."""
    details = getattr(state, "state_details", None)
    key = getattr(details, "pause_key", None)
    return str(key) if key is not None else None


def pause_keyset(state: Any) -> dict[str, str] | None:
    """The run-input keys ("schema", "response", "description") a paused run waits on, as the
    run stored them in its Paused state; None when the run is not paused for input.

    Prefect stores the keyset in `state_details.run_input_keyset` (the server validates a resume
    against it). Were it gone, Prefect's own `keyset_from_paused_state` derives it the same way
    the pausing run did."""
    if state is None or not state.is_paused():
        return None
    _outside_tested("reading the pause's input keys from its state")
    keyset = getattr(state.state_details, "run_input_keyset", None)
    if keyset and {"schema", "response", "description"} <= set(keyset):
        return dict(keyset)
    if keyset is None and hasattr(state.state_details, "run_input_keyset"):
        return None  # paused without waiting for input
    log.warning("Prefect %s keeps no run_input_keyset in a paused state; deriving it", prefect_version())
    try:
        from prefect.input import keyset_from_paused_state

        return dict(keyset_from_paused_state(state))
    except (ImportError, RuntimeError):
        return None


# --- 5. this process's queued events and logs reach the server before it stops ---------------


def drain_client_services(timeout: float = 10) -> bool:
    """Send the events and logs this process has queued (Prefect sends them from background
    workers); False where Prefect's workers have no `drain_all` (then they may be lost at exit)."""
    patch = "drain of queued events and logs"
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker
    except ImportError:
        return _cannot_apply(patch, "EventsWorker / APILogWorker", "queued events and logs may be lost at exit")
    _outside_tested(patch)
    drained = True
    for worker in (APILogWorker, EventsWorker):
        drain = getattr(worker, "drain_all", None)
        if drain is None:
            drained = _cannot_apply(patch, f"{worker.__name__}.drain_all", "queued items may be lost at exit")
            continue
        try:
            drain(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - nothing more can be sent; stopping matters more
            log.warning("could not send the last queued %s: %s", worker.__name__, exc)
            drained = False
    return drained


# --- 6. a process's API clients share one verified TLS context -------------------------------


class _SharedVerifiedContexts:
    """Prefect's `ssl`, except that a verified context for a CA file is made once per process.

    Only `create_default_context(cafile=...)` with nothing else is shared: that is the verified
    context Prefect's clients hand httpx unchanged. The unverified one (no arguments, then
    loosened by its caller) is made fresh each time, as before, so a loosened context is never
    shared. A CA file that changes on disk (a rotated bundle) gets a new context."""

    def __init__(self, ssl_module: Any) -> None:
        self._ssl = ssl_module
        self._verified: dict[tuple[str, float], Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssl, name)

    def create_default_context(self, *args: Any, **kwargs: Any) -> Any:
        cafile = kwargs.get("cafile")
        if args or set(kwargs) != {"cafile"} or not isinstance(cafile, str):
            return self._ssl.create_default_context(*args, **kwargs)
        try:
            key = (cafile, os.stat(cafile).st_mtime)
        except OSError:
            return self._ssl.create_default_context(cafile=cafile)  # let ssl say what is wrong
        context = self._verified.get(key)
        if context is None:
            context = self._verified[key] = self._ssl.create_default_context(cafile=cafile)
        return context


TLS_CONTEXT_MODULES = ("prefect.client.orchestration", "prefect._internal.version_checking")


def api_clients_share_tls_contexts() -> bool:
    """Make each of this process's Prefect API clients reuse one verified TLS context.

    Why: every `get_client()` builds a new `ssl.create_default_context(cafile=certifi)`, which
    parses the whole CA bundle (~30 ms of CPU here), even for an http:// API. A flow run makes
    six before its first step (its engine, its context, the log and event workers, the
    suspension observer and its server-version check): a py-spy profile of the worker stack put
    a sixth of the flow runs' CPU there. Made in the fork server, the context is made once for
    every run it forks. Verification is unchanged: the same CA file verifies the same way."""
    import ssl

    patch = "one TLS context for Prefect's API clients"
    modules = []
    for name in TLS_CONTEXT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            return _cannot_apply(patch, name, "each client builds its own TLS context")
        current = getattr(module, "ssl", None)
        if not (current is ssl or isinstance(current, _SharedVerifiedContexts)):
            return _cannot_apply(patch, f"`ssl` in {name}", "each client builds its own TLS context")
        modules.append(module)
    _outside_tested(patch)
    shared = next((m.ssl for m in modules if isinstance(m.ssl, _SharedVerifiedContexts)), None)
    shared = shared or _SharedVerifiedContexts(ssl)
    for module in modules:
        module.ssl = shared
    return True


def verified_tls_context_for_the_api() -> Any:
    """The context Prefect's clients will verify the API with (made now, shared from now on)."""
    import certifi
    from prefect.client import orchestration
    from prefect.settings import PREFECT_API_SSL_CERT_FILE

    return orchestration.ssl.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())


def api_clients_build_tls_contexts_as_prefect_does() -> None:
    """Undo `api_clients_share_tls_contexts` (tests)."""
    import ssl

    for name in TLS_CONTEXT_MODULES:
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, "ssl", None), _SharedVerifiedContexts):
            module.ssl = ssl
