"""The HTTP door for orders: what a CRM or a web form calls.

    POST /orders   Authorization: Bearer <HANDOFF_INTAKE_TOKEN>
    body: one order, a list of orders, or {"orders": [...]} — the same shape as `orders submit`
          (Content-Type: text/csv: the CSV shape)
    POST /quotes   requests for quotation, the same way ({"requests": [...]}; `quotes request`)
    POST /quotes/{request id}/answer   {"answer": "accept" | "decline"}: the customer's answer

The same contract, quarantine and `order.received` event as the CLI. The answer lists what
was accepted, what was a duplicate, and every quarantined order with its reasons by field:
201 when everything was accepted, 207 when some were quarantined, 422 when none was.

Hardened for a door open to a network: the body is counted while it arrives and refused with
413 past HANDOFF_INTAKE_MAX_BYTES (or at once, from Content-Length); a body that takes longer
than HANDOFF_INTAKE_READ_TIMEOUT_SECONDS is refused with 408, and a connection that sends no
complete request head in that time is closed; the database work runs in a worker thread, so
one large batch does not hold up other requests; any malformed Authorization header is a 401;
there are no unauthenticated docs.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import asdict
from typing import Any

from fastapi import Depends
from fastapi import FastAPI
from fastapi import HTTPException
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from handoff.core.intake import QUOTE_REQUEST_FORM
from handoff.core.intake import IntakeInterrupted
from handoff.core.intake import IntakeResult
from handoff.core.intake import parse_csv_orders
from handoff.core.intake import parse_json_orders
from handoff.core.intake import submit_orders
from handoff.core.intake import submit_quote_requests
from handoff.core.intake.text import printable
from handoff.core.settings import settings
from handoff.runtime import outbox
from handoff.runtime.app_server import AppServer
from handoff.runtime.app_server import BodyRefused
from handoff.runtime.app_server import guarded_config
from handoff.runtime.app_server import read_limited


def intake_token() -> str:
    """The token callers must present: HANDOFF_INTAKE_TOKEN, else one made once and kept in a
    file only its owner can read (created 0600, never widened: a new file is written under a
    temporary name and linked into place, so no reader ever sees it half-written or open)."""
    if settings.intake_token:
        return settings.intake_token
    path = settings.home / "intake-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".intake-token.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temporary, path)  # fails if another process made one meanwhile: theirs stands
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text().strip()


def bearer_token(request: Request) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, as bytes; None for anything else
    (no header, another scheme, no token, several tokens)."""
    value = request.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token.encode("latin-1")  # headers arrive as bytes, which Starlette decodes as latin-1


def create_intake_app(token: str | None = None, announce: bool = True) -> FastAPI:
    expected = (token or intake_token()).encode("utf-8")
    app = FastAPI(title="handoff intake", version="1", docs_url=None, redoc_url=None, openapi_url=None)

    def authorised(request: Request) -> None:
        given = bearer_token(request)
        if given is None or not hmac.compare_digest(given, expected):
            raise HTTPException(
                status_code=401, detail="a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/orders", dependencies=[Depends(authorised)])
    async def receive_orders(request: Request) -> JSONResponse:
        return await receive(request, take_orders, announce, "orders")

    @app.post("/quotes", dependencies=[Depends(authorised)])
    async def receive_quote_requests(request: Request) -> JSONResponse:
        """Requests for quotation: the same shapes, contract and answers as /orders."""
        return await receive(request, take_quote_requests, announce, "requests")

    @app.post("/quotes/{request_id}/answer", dependencies=[Depends(authorised)])
    async def receive_answer(request_id: str, request: Request) -> JSONResponse:
        """The customer's answer: {"answer": "accept"} or {"answer": "decline"}."""
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        return await run_in_threadpool(take_answer, request_id, body, announce)

    return app


async def read_body(request: Request) -> bytes | JSONResponse:
    """The request's body, counted as it arrives: 413 past the limit, 408 past the read timeout."""
    try:
        return await read_limited(request, settings.intake_max_bytes)
    except BodyRefused as refused:
        detail = str(refused) + (" (HANDOFF_INTAKE_MAX_BYTES)" if refused.status == 413 else "")
        return JSONResponse({"detail": detail}, status_code=refused.status, headers={"Connection": "close"})


async def receive(request: Request, take, announce: bool, plural: str) -> JSONResponse:  # noqa: ANN001
    raw = await read_body(request)
    if isinstance(raw, JSONResponse):
        return raw
    is_csv = request.headers.get("content-type", "").split(";")[0].strip().lower() == "text/csv"
    try:
        result = await run_in_threadpool(take, raw, is_csv, announce)
    except IntakeInterrupted as stopped:
        body = answer(stopped.result)
        body["detail"] = f"the database could not be reached; the {plural} not listed here were not taken"
        return JSONResponse(body, status_code=503)
    body = answer(result)
    if not result.quarantined:
        status = 201
    elif result.accepted or result.duplicates:
        status = 207
    else:
        status = 422
    return JSONResponse(body, status_code=status)


def take_orders(raw: bytes, is_csv: bool, announce: bool) -> IntakeResult:
    """The database side of a POST, run in a worker thread."""
    submissions = parse_csv_orders(raw) if is_csv else parse_json_orders(raw)
    return submit_orders(submissions, source="http", announce=outbox.announce_orders if announce else None)


def take_quote_requests(raw: bytes, is_csv: bool, announce: bool) -> IntakeResult:
    form = QUOTE_REQUEST_FORM
    submissions = parse_csv_orders(raw, form) if is_csv else parse_json_orders(raw, form)
    return submit_quote_requests(
        submissions, source="http", announce=outbox.announce_quote_requests if announce else None
    )


ANSWERS = {"accept": True, "decline": False}


def take_answer(request_id: str, raw: bytes, announce: bool) -> JSONResponse:
    """The database side of an answer: 200 with the order (if accepted), 404 no such quote, 409
    refused (declined, expired, not sent), 422 not an answer. The same answer again is 200."""
    from handoff.core.intake.reading import DECODER
    from handoff.core.intake.reading import decode
    from handoff.core.quotes import AnswerRefused
    from handoff.core.quotes import UnknownQuote
    from handoff.core.quotes import answer_quote

    text, why = decode(raw)
    try:
        data = DECODER.decode(text) if text is not None else None
    except (ValueError, RecursionError):
        data, why = None, "is not valid JSON"
    plain = isinstance(data, dict) and set(data) == {"answer"} and not getattr(data, "repeated", ())
    choice = data.get("answer") if plain else None  # type: ignore[union-attr]
    if not isinstance(choice, str) or choice not in ANSWERS:
        return JSONResponse(
            {
                "detail": f'the body must be {{"answer": "accept"}} or {{"answer": "decline"}}{f" ({why})" if why else ""}'
            },
            status_code=422,
        )
    try:
        answered = answer_quote(
            request_id, ANSWERS[choice], by="http", announce=outbox.announce_orders if announce else None
        )
    except UnknownQuote as unknown:
        return JSONResponse({"detail": printable(str(unknown))}, status_code=404)
    except AnswerRefused as refused:
        return JSONResponse({"detail": printable(str(refused))}, status_code=409)
    return JSONResponse(asdict(answered), status_code=200)


def answer(result: IntakeResult) -> dict[str, Any]:
    return {
        "submitted": result.submitted,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "quarantined": [asdict(r) for r in result.quarantined],
    }


class IntakeServer(AppServer):
    """The intake app served by uvicorn in a background thread."""

    def __init__(self, host: str, port: int, token: str | None = None, announce: bool = True) -> None:
        super().__init__(guarded_config(create_intake_app(token, announce), host, port), name="intake-http")


__all__ = ["IntakeServer", "create_intake_app", "intake_token"]
