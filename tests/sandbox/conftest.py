"""The sandbox tests use the session's sandbox (tests/conftest.py) with shorter client timeouts,
so an injected hang costs 0.3 s, and call its API directly too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.server import SandboxHandle

CLIENT_TIMEOUT_SECONDS = 0.3
API_TIMEOUT = httpx.Timeout(10.0)  # a direct call is not a client under test: a busy machine must not fail it


@pytest.fixture
def client_timeout() -> float:
    return CLIENT_TIMEOUT_SECONDS


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """A plain HTTP client on the sandbox's root, for calling its API directly."""
    with httpx.Client(base_url=sandbox.url, timeout=API_TIMEOUT) as client:
        yield client
