"""The session's sandbox server (tests/conftest.py), emptied before each test; the client
modules pointed at it, with shorter timeouts than the flow tests so an injected hang costs 0.3 s."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prefect import Task
from prefect.tasks import exponential_backoff

from handoff.core.settings import settings
from sandbox.faults import SYSTEMS
from sandbox.server import SandboxHandle
from tasks import activation, billing, calendar, crm, http, provisioning

CLIENT_MODULES = (crm, provisioning, activation, billing, calendar)
CLIENT_TIMEOUT = httpx.Timeout(0.3)
QUICK_BACKOFF_SECONDS = 0.01


def all_client_tasks() -> list[Task]:
    return [value for module in CLIENT_MODULES for value in vars(module).values() if isinstance(value, Task)]


@pytest.fixture
def client_tasks() -> list[Task]:
    """Every Prefect task of the five client modules."""
    return all_client_tasks()


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """The sandbox, empty and without faults; the clients call it."""
    sandbox_server.sandbox.reset()
    monkeypatch.setattr(settings, "sandbox_url", sandbox_server.url)
    for system in SYSTEMS:
        monkeypatch.delenv(f"HANDOFF_{system.upper()}_URL", raising=False)
    for module in CLIENT_MODULES:
        monkeypatch.setattr(module, "TIMEOUT", CLIENT_TIMEOUT)
    yield sandbox_server
    sandbox_server.sandbox.reset()


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """A plain HTTP client on the sandbox's root, for calling its API directly."""
    with httpx.Client(base_url=sandbox.url, timeout=CLIENT_TIMEOUT) as client:
        yield client


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same retry policy, delays of 10 ms, 20 ms, ... instead of seconds."""
    delays = exponential_backoff(backoff_factor=QUICK_BACKOFF_SECONDS)(http.RETRIES)
    for task in all_client_tasks():
        monkeypatch.setattr(task, "retry_delay_seconds", delays)
