"""A web app of this process served by uvicorn from a background thread: the intake endpoint and
the reps' worklist under `handoff up` (the sandbox has its own, sandbox/server.py: it knows
nothing of handoff).

Both doors are open to a network, so both are served the same guarded way (`guarded_config`):
a connection that sends no complete request head within HANDOFF_INTAKE_READ_TIMEOUT_SECONDS is
closed, at most `CONNECTIONS_AT_ONCE` are held (uvicorn answers 503 beyond), and a body is read
with `read_limited`: counted as it arrives, refused past its limit or its deadline, so nobody
can make the process hold a body it will refuse anyway."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any
from typing import Self

import uvicorn
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from handoff.core.settings import settings

STOP_TIMEOUT_SECONDS = 5.0
START_TIMEOUT_SECONDS = 30.0
CONNECTIONS_AT_ONCE = 64  # beyond this, uvicorn answers 503 instead of holding more sockets


class BodyRefused(Exception):
    """A request body refused while it arrived: 413 too large, 408 too slow."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


async def read_limited(request: Request, limit: int) -> bytes:
    """The request's body, counted as it arrives: BodyRefused(413) past `limit` bytes (at once
    when Content-Length says so), BodyRefused(408) past the read timeout."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413, f"the body is over the limit of {limit:,} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(settings.intake_read_timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyRefused(413, f"the body is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyRefused(408, f"the body took over {settings.intake_read_timeout_seconds:g} s to arrive") from None
    return b"".join(chunks)


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, plus a deadline for the request head: a connection that has
    not sent a complete request line and headers within the read timeout (from its opening, or
    from the end of its previous response) is closed. uvicorn's keep-alive timeout stops as
    soon as any byte arrives, so a client dripping one header byte a second would hold its
    connection for ever."""

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(settings.intake_read_timeout_seconds, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def handle_events(self) -> None:
        waiting_for_head = self.cycle is None or self.cycle.response_complete
        super().handle_events()
        if waiting_for_head and self.cycle is not None and not self.cycle.response_complete:
            self._cancel_head_deadline()  # a request head arrived; the body has its own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)


def guarded_config(app: object, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for an app open to a network: the head deadline, a short keep-alive,
    a cap on connections, and X-Forwarded-For believed only from the proxies named in
    `settings.trusted_proxies`. uvicorn's own default trusts it from 127.0.0.1, where handoff
    listens: any local client (or a proxy passing the header on) could then name its own
    address and step round the sign-in limit per address, or lock someone else's out."""
    proxies = settings.trusted_proxies.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=HeadDeadlineProtocol,
        timeout_keep_alive=5,
        limit_concurrency=CONNECTIONS_AT_ONCE,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


class AppServer:
    """uvicorn serving `config` from a daemon thread named `name`, at `url`."""

    def __init__(self, config: uvicorn.Config, name: str) -> None:
        self.server = uvicorn.Server(config)
        self.url = f"http://{config.host}:{config.port}"
        self.name = name
        self.thread: threading.Thread | None = None

    def start(self, context_run: Callable[..., Any] | None = None) -> Self:
        """Serve from now on; `context_run` (e.g. `contextvars.copy_context().run`) runs the server
        inside a context, so it sees the caller's settings and Prefect client."""
        run = self.server.run
        target, args = (context_run, (run,)) if context_run is not None else (run, ())
        self.thread = threading.Thread(target=target, args=args, daemon=True, name=self.name)
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:  # uvicorn ends its thread, with only a log line, if it cannot bind
            if not self.thread.is_alive():
                raise OSError(f"{self.name}: cannot listen at {self.url}: is another program using the port?")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name}: not listening at {self.url} after {START_TIMEOUT_SECONDS:g} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=STOP_TIMEOUT_SECONDS)
