"""One FastAPI app serving all five stand-in systems under their prefixes, plus admin endpoints.

    /crm/...  /provisioning/...  /activation/...  /billing/...  /calendar/...   (see each module)
    GET  /health                    {"status": "ok", "systems": [...]}
    GET  /ledger?system=&operation= {"entries": [...]} side effects, oldest first
    GET  /_requests?system=         {"requests": [...]} every request in arrival order: status, fault
    GET  /_faults                   the faults in force
    POST /_faults                   change some of them: {"error_share": 0.2, "down": ["billing"]}

Admin endpoints never meet faults. Errors share one body: {"error": code, "reason": sentence};
a malformed request (bad JSON, missing or ill-typed field) is a 400, so that 422 always means
a business rejection.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from sandbox import activation
from sandbox import billing
from sandbox import calendar
from sandbox import crm
from sandbox import provisioning
from sandbox.core import IDEMPOTENCY_HEADER
from sandbox.core import REPLAY_HEADER
from sandbox.core import ApiError
from sandbox.core import Sandbox
from sandbox.core import utcnow
from sandbox.faults import SYSTEMS


def create_app(sb: Sandbox) -> FastAPI:
    app = FastAPI(
        title="handoff sandbox",
        description="Stand-ins for the CRM, provisioning, activation, billing and calendar.",
    )
    app.state.sandbox = sb
    for system in (crm, provisioning, activation, billing, calendar):
        app.include_router(system.router(sb))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status_code == 503 else None
        return exc.response(headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return ApiError(400, "invalid_request", problems).response()

    @app.get("/health", tags=["admin"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "systems": list(SYSTEMS)}

    @app.get("/ledger", tags=["admin"])
    async def ledger(system: str | None = None, operation: str | None = None) -> dict[str, Any]:
        return {"entries": sb.ledger(system, operation)}

    @app.get("/_requests", tags=["admin"])
    async def requests(system: str | None = None) -> dict[str, Any]:
        return {"requests": sb.requests(system)}

    @app.get("/_faults", tags=["admin"])
    async def get_faults() -> dict[str, Any]:
        return sb.faults.model_dump(mode="json")

    @app.post("/_faults", tags=["admin"])
    async def set_faults(changes: dict[str, Any]) -> JSONResponse:
        try:
            faults = sb.set_faults(**changes)
        except ValidationError as exc:
            return ApiError(400, "invalid_faults", str(exc)).response()
        return JSONResponse(faults.model_dump(mode="json"))

    app.add_middleware(RequestLog, sandbox=sb)
    return app


class RequestLog:
    """ASGI middleware: note every request in `Sandbox.requests()` (status None until answered)."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        path: str = scope["path"]
        first = path.strip("/").split("/", 1)[0]
        headers = {name.decode().lower(): value.decode() for name, value in scope.get("headers", [])}
        # Noted on arrival (so the log is in arrival order), completed when the answer starts.
        entry: dict[str, Any] = {
            "at": utcnow().isoformat(),
            "system": first if first in SYSTEMS else "admin",
            "method": scope["method"],
            "path": path,
            "idempotency_key": headers.get(IDEMPOTENCY_HEADER.lower()),
            "status_code": None,
            "replay": False,
            "fault": None,
        }
        self.sandbox.log_request(entry)

        async def note_then_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                with self.sandbox.lock:
                    entry["status_code"] = message["status"]
                    entry["replay"] = any(
                        name.decode().lower() == REPLAY_HEADER.lower() for name, _ in message.get("headers", [])
                    )
                    entry["fault"] = scope["state"].get("fault")
            await send(message)

        await self.app(scope, receive, note_then_send)
