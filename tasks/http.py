"""What every client of another system shares: where the system is, the retry policy, and what
its errors mean.

Errors a step can see (all `IntegrationError`s carry `system`, `status_code`, `error`, `reason`):

    IntegrationError                the other system did not do what the step asked
    ├── BusinessRejection           422: the system said no for a business reason. Not retried.
    ├── RequestRejected             400, 404, 409 ...: our request is wrong. Not retried; fix the
    │   ├── NotFound                data or the code. 404: unknown customer, product, job...
    │   └── Conflict                409: done already under another key, or a key reused for a
    │                               different request (`existing_id` names what exists)
    └── SystemUnavailable           5xx, 429: the system is down or overloaded. Retried.
    httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError   Retried.

Business outcomes are not failures. Where a "no" is a normal path of the procedure — the CRM
declines credit, provisioning refuses a discontinued product, the calendar slot was taken — the
step returns it as a `Declined` value instead of raising: its task run ends Completed (Failed in
the Prefect UI means something broke) and the flow branches on the value. The step's docstring
says which answers come back as `Declined`; everything else above still raises.

Retries belong to Prefect: every call is a `@record_step(..., **RETRY_POLICY)` task — RETRIES retries,
exponential backoff from RETRY_BACKOFF_SECONDS (env HANDOFF_RETRY_BACKOFF_SECONDS, default 2 s:
2, 4, 8, 16, 32 s, with jitter) and `retry_on_transient` deciding. A retry is safe because every
side effect carries an Idempotency-Key made of business ids: the system answers a repeated key
with what it answered the first time and does nothing twice.

Where the systems are: `<settings.sandbox_url>/<system>` (env HANDOFF_SANDBOX_URL, default
http://127.0.0.1:8765), or HANDOFF_<SYSTEM>_URL for one system at its own address.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import httpx
from prefect.client.schemas.objects import State
from prefect.client.schemas.objects import TaskRun
from prefect.tasks import Task
from prefect.tasks import exponential_backoff
from pydantic import BaseModel

from handoff.core.settings import settings

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replay"
RETRY_BACKOFF_ENV = "HANDOFF_RETRY_BACKOFF_SECONDS"

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
RETRIES = 5
RETRY_BACKOFF_SECONDS = float(os.environ.get(RETRY_BACKOFF_ENV, "2"))
RETRY_JITTER_FACTOR = 0.5
# One shared context: loading the CA bundle costs ~20 ms per client otherwise.
SSL_CONTEXT = httpx.create_ssl_context()


# ---- errors --------------------------------------------------------------------------------


class IntegrationError(Exception):
    """Another system answered, but not with what the step needs."""

    def __init__(
        self,
        system: str,
        reason: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(system, reason)  # args that rebuild it when unpickled
        self.system = system
        self.reason = reason
        self.status_code = status_code
        self.error = error
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.system}: {self.reason}"


class BusinessRejection(IntegrationError):
    """The system said no for a business reason. Not retried: a person decides what next."""


class RequestRejected(IntegrationError):
    """Our request is wrong (4xx). Not retried: the data or the code needs fixing."""


class NotFound(RequestRejected):
    """404: the system does not know the id we sent."""


class Conflict(RequestRejected):
    """409: it was done already (under another key), or the key was reused for another request."""

    @property
    def existing_id(self) -> str | None:
        return self.details.get("existing_id")


class SystemUnavailable(IntegrationError):
    """5xx or 429: the system is down or overloaded. Retried."""


class Declined(BaseModel):
    """The other system said no for a business reason: a result the flow decides on, not an error."""

    system: str
    reason: str
    error: str | None = None  # the system's machine-readable code, e.g. "credit_declined"
    details: dict[str, Any] = {}

    @classmethod
    def of(cls, rejection: IntegrationError) -> Declined:
        return cls(system=rejection.system, reason=rejection.reason, error=rejection.error, details=rejection.details)

    def __str__(self) -> str:
        return f"{self.system}: {self.reason}"


TRANSIENT_ERRORS = (SystemUnavailable, httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def is_transient(exc: BaseException) -> bool:
    """Worth another try: timeouts, dropped connections, 5xx / 429 — never a rejection."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, TRANSIENT_ERRORS)


def retry_on_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect `retry_condition_fn`: retry the failed task run only if its error is transient.

    Prefect calls it with the Failed state; for an exception the state's data IS the exception
    (task_engine.can_retry), otherwise we load the state's result.
    """
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    if inspect.isawaitable(error):  # only in an async context; our tasks are sync
        error.close()  # type: ignore[union-attr]
        return False
    return isinstance(error, BaseException) and is_transient(error)


RETRY_POLICY: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=RETRY_BACKOFF_SECONDS),
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_on_transient,
}
# The other system is the record: its calls are `@record_step(..., **RETRY_POLICY)` (tasks/steps.py),
# never cached — always ask it (a replayed key costs nothing).


# ---- calling a system ----------------------------------------------------------------------


def system_url(system: str) -> str:
    """Base URL of one system: HANDOFF_<SYSTEM>_URL, else <settings.sandbox_url>/<system>."""
    own = os.environ.get(f"HANDOFF_{system.upper()}_URL")
    return own or f"{settings.sandbox_url.rstrip('/')}/{system}"


class SystemClient(httpx.Client):
    """An httpx.Client for one system that turns answers into data or the errors above."""

    def __init__(
        self, system: str, timeout: httpx.Timeout = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None
    ) -> None:
        super().__init__(
            base_url=system_url(system),
            timeout=timeout,
            transport=transport,
            verify=SSL_CONTEXT,
            headers={"User-Agent": "handoff"},
        )
        self.system = system

    def side_effect(self, path: str, body: dict[str, Any], *, key: str) -> dict[str, Any]:
        """POST that changes something, at most once per `key` (a replay returns the first answer)."""
        return self.checked(self.post(path, json=body, headers={IDEMPOTENCY_HEADER: key}))

    def read(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.checked(self.get(path, params=params))

    def checked(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_success:
            return response.json()
        body = _json_or_empty(response)
        status = response.status_code
        reason = body.get("reason") or body.get("detail") or response.reason_phrase
        details = {k: v for k, v in body.items() if k not in ("error", "reason")}
        args = (self.system, str(reason))
        kwargs: dict[str, Any] = {"status_code": status, "error": body.get("error"), "details": details}
        if status >= 500 or status == 429:
            raise SystemUnavailable(*args, **kwargs)
        if status == 422:
            raise BusinessRejection(*args, **kwargs)
        if status == 404:
            raise NotFound(*args, **kwargs)
        if status == 409:
            raise Conflict(*args, **kwargs)
        raise RequestRejected(*args, **kwargs)


class System:
    """Another system the steps call: its name (where it is: `system_url`) and how long to wait
    for its answers. Each client module declares its own once: `SYSTEM = System("crm")`."""

    def __init__(self, name: str, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        self.name = name
        self.timeout = timeout

    def client(self) -> SystemClient:
        """A client for one step's calls: `with SYSTEM.client() as crm: ...`."""
        return SystemClient(self.name, self.timeout)


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
