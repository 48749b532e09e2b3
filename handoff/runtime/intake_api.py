"""The HTTP door for orders: what a CRM or a web form calls.

    POST /orders   Authorization: Bearer <HANDOFF_INTAKE_TOKEN>
    body: one order, a list of orders, or {"orders": [...]} — the same shape as `orders submit`

The same validation, quarantine and `order.received` event as the CLI. The answer lists what
was accepted, what was a duplicate, and every quarantined order with its reasons by field:
201 when everything was accepted, 207 when some were quarantined, 422 when none was.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import asdict
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from handoff.core.intake import parse_json_orders, submit_orders
from handoff.runtime import outbox
from handoff.core.settings import settings

bearer = HTTPBearer(auto_error=False)


def intake_token() -> str:
    """The token callers must present: HANDOFF_INTAKE_TOKEN, else one made once and kept."""
    if settings.intake_token:
        return settings.intake_token
    path = settings.home / "intake-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def create_intake_app(token: str | None = None, announce: bool = True) -> FastAPI:
    expected = token or intake_token()
    app = FastAPI(title="handoff intake", version="1")

    def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials, expected):
            raise HTTPException(status_code=401, detail="a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/orders", dependencies=[Depends(authorised)])
    async def receive_orders(request: Request) -> JSONResponse:
        text = (await request.body()).decode("utf-8", errors="replace")
        result = submit_orders(parse_json_orders(text), source="http",
                               announce=outbox.announce_orders if announce else None)
        body: dict[str, Any] = {
            "submitted": result.submitted,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "quarantined": [asdict(r) for r in result.quarantined],
        }
        if not result.quarantined:
            status = 201
        elif result.accepted or result.duplicates:
            status = 207
        else:
            status = 422
        return JSONResponse(body, status_code=status)

    return app


class IntakeServer:
    """The intake app served by uvicorn in a background thread."""

    def __init__(self, host: str, port: int, token: str | None = None, announce: bool = True) -> None:
        config = uvicorn.Config(create_intake_app(token, announce), host=host, port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="intake-http")

    def start(self, context_run=None) -> "IntakeServer":  # noqa: ANN001
        if context_run is not None:
            self.thread = threading.Thread(target=context_run, args=(self.server.run,), daemon=True, name="intake-http")
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


__all__ = ["IntakeServer", "create_intake_app", "intake_token"]
