"""The reps' worklist: a web page made for them, served by `handoff up` (HANDOFF_WORKLIST_PORT).

    GET  /login, POST /login, POST /logout     sign in (rate-limited), sign out
    GET  /                                     my items, most urgent first (+ the team's, for a supervisor)
    POST /next                                 Get next: the most urgent item the router holds for me
    GET  /items/{id}, POST /items/{id}         the step's description and its form; complete it
    POST /items/{id}/reassign                  a supervisor hands an item to another rep

Sessions are itsdangerous-signed, HttpOnly, SameSite=Strict cookies naming the worker; every
form post carries the session's CSRF token. Another rep's item answers 403. A completion goes
through handoff.runtime.steps.complete_step with the signed-in person, so the flow receives
handoff's signed proof of who sent it. No JavaScript: plain HTML forms.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from handoff.core import supervision
from handoff.core.db import session
from handoff.core.identity import completion_proof
from handoff.core.identity.sessions import NotSignedIn
from handoff.core.identity.sessions import SignedIn
from handoff.core.identity.sessions import end_session
from handoff.core.identity.sessions import issue_session
from handoff.core.identity.sessions import read_session
from handoff.core.identity.sign_in import DEVICE_DAYS
from handoff.core.identity.sign_in import LoginRefused
from handoff.core.identity.sign_in import TooManyAttempts
from handoff.core.identity.sign_in import authenticate
from handoff.core.identity.sign_in import issue_device
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import find_work_item
from handoff.core.models import utcnow
from handoff.core.routing import router
from handoff.core.routing.worklist import worklist
from handoff.core.settings import settings
from handoff.runtime.app_server import BodyRefused
from handoff.runtime.app_server import read_limited
from handoff.runtime.worklist.fields import answer_from
from handoff.runtime.worklist.fields import errors_by_field
from handoff.runtime.worklist.fields import field_views

log = logging.getLogger(__name__)
COOKIE = "handoff_session"
LOGIN_CSRF_COOKIE = "handoff_login_csrf"
CONFIRM_SECONDS = 4.0  # how long a completion waits for its run to record (or refuse) the answer
NOT_USED_SHOWN_FOR = timedelta(hours=24)  # a rep's answers a run refused after "sent": shown this long
DEVICE_COOKIE = "handoff_device"  # this browser signed in as someone before (kept after sign-out)
MAX_BODY = 64 * 1024
TEMPLATES = Path(__file__).parent / "templates"
# Raw HTML in a step's description is shown as text; links keep markdown-it's safe-URL check.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def hours_left(seconds: float) -> str:
    if seconds < 0:
        return f"late {-seconds / 3600:.1f} h"
    return f"{seconds / 3600:.1f} h left"


def prefect_context_now() -> Callable[[], Any]:
    """The Prefect API (and basic auth) this process talks to now, to re-enter in request threads."""
    from prefect.settings import PREFECT_API_AUTH_STRING
    from prefect.settings import PREFECT_API_URL
    from prefect.settings import temporary_settings

    updates = {PREFECT_API_URL: PREFECT_API_URL.value()}
    if PREFECT_API_AUTH_STRING.value():
        updates[PREFECT_API_AUTH_STRING] = PREFECT_API_AUTH_STRING.value()
    return lambda: temporary_settings(updates=updates)


def create_worklist_app(prefect_context: Callable[[], Any] | None = None) -> FastAPI:
    """The app; `prefect_context` enters the Prefect settings to use (default: this process's now)."""
    from handoff.runtime.steps import AnswerNotUsed
    from handoff.runtime.steps import StepNotReady
    from handoff.runtime.steps import answers_not_used
    from handoff.runtime.steps import complete_step
    from handoff.runtime.steps import form_for

    app = FastAPI(title="handoff worklist", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["hours_left"] = hours_left
    templates.env.filters["markdown"] = lambda text: MARKDOWN.render(text or "")
    entered = prefect_context or prefect_context_now()

    @contextmanager
    def prefect() -> Iterator[None]:
        with entered():
            yield

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, context, status_code=status)

    def me(request: Request) -> SignedIn:
        with session() as s:
            return read_session(s, request.cookies.get(COOKIE))

    async def posted(request: Request) -> dict[str, str]:
        try:
            body = await read_limited(request, MAX_BODY)
        except BodyRefused as refused:
            raise Refused(refused.status, "the form is too large" if refused.status == 413 else str(refused)) from None
        # NUL becomes U+FFFD: PostgreSQL refuses it in any text, as a value or as a name to look
        # up, so one NUL in a note or a sign-in name was a 500 there (or a run that could not
        # record the answer); what else they typed stays as typed.
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k.replace("\x00", "\ufffd"): v[0].replace("\x00", "\ufffd") for k, v in fields.items()}

    def check_csrf(form: dict[str, str], person: SignedIn) -> None:
        if not secrets.compare_digest(form.get("csrf_token", "").encode(), person.csrf.encode()):
            raise Refused(403, "this form's CSRF token is missing or wrong: reload the page and send it again")

    def sender(request: Request, form: dict[str, str]) -> SignedIn:
        """The signed-in person who sent `form`, once the form carries their CSRF token."""
        person = me(request)
        check_csrf(form, person)
        return person

    @app.middleware("http")
    async def timing_and_headers(request: Request, call_next):
        started, cpu = time.perf_counter(), time.process_time()
        response = await call_next(request)
        # wall time, and this process's CPU time meanwhile (what the request cost on a busy machine)
        response.headers["Server-Timing"] = (
            f"app;dur={(time.perf_counter() - started) * 1000:.2f}, cpu;dur={(time.process_time() - cpu) * 1000:.2f}"
        )
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET":
            response: Response = RedirectResponse("/login", status_code=303)
        else:
            response = page(request, "message.html", 401, title="Not signed in", message=str(exc), person=None)
        response.delete_cookie(COOKIE)
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return page(request, "message.html", exc.status, title="Refused", message=str(exc), person=None)

    def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", secure=settings.secure_cookies, path="/"
        )

    # --- signing in -------------------------------------------------------------------------

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login")
    def login_page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(18)
        response = page(request, "login.html", csrf_token=nonce, person=None)
        set_cookie(response, LOGIN_CSRF_COOKIE, nonce)
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        return await run_in_threadpool(sign_in, request, await posted(request))

    def sign_in(request: Request, form: dict[str, str]) -> Response:
        nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not nonce or not secrets.compare_digest(form.get("csrf_token", "").encode(), nonce.encode()):
            raise Refused(403, "this form's CSRF token is missing or wrong: reload the sign-in page")
        name, client = form.get("name", ""), request.client.host if request.client else "unknown"
        with session() as s:  # commits the attempt even when refused: it counts for the limit
            try:
                worker = authenticate(
                    s, name, form.get("password", ""), client=client, device=request.cookies.get(DEVICE_COOKIE)
                )
                token, device, problem = issue_session(worker), issue_device(worker), None
            except LoginRefused as why:
                token, device, problem = None, None, why
        if problem is not None:
            status = 429 if isinstance(problem, TooManyAttempts) else 401
            response = page(request, "login.html", status, csrf_token=nonce, error=str(problem), name=name, person=None)
            if isinstance(problem, TooManyAttempts):
                response.headers["Retry-After"] = str(problem.retry_after_seconds)
            return response
        response = RedirectResponse("/", status_code=303)
        set_cookie(response, COOKIE, token, max_age=int(settings.session_hours * 3600))
        set_cookie(response, DEVICE_COOKIE, device, max_age=DEVICE_DAYS * 86400)
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        form = await posted(request)
        check_csrf(form, await run_in_threadpool(me, request))
        await run_in_threadpool(sign_out, request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    def sign_out(token: str | None) -> None:
        """On the server too: a copy of the cookie (another tab, a stolen one) stops working."""
        with session() as s:
            end_session(s, token)

    # --- the worklist -----------------------------------------------------------------------

    @app.get("/")
    def my_worklist(
        request: Request, done: int | None = None, empty: int | None = None, reassigned: int | None = None
    ) -> Response:
        person = me(request)
        with session() as s:
            entries = worklist(s, person.name)
            # the text handoff's flow wrote for the attempt waiting now (never Prefect's copy)
            descriptions = (
                dict(
                    s.execute(
                        select(WorkItem.id, WorkItem.description).where(WorkItem.id.in_([e.item_id for e in entries]))
                    ).all()
                )
                if entries
                else {}
            )
            team = supervision.team_items(s) if person.is_supervisor else []
            not_used = answers_not_used(s, person.name, utcnow() - NOT_USED_SHOWN_FOR)
        return page(
            request,
            "worklist.html",
            person=person,
            entries=entries,
            descriptions=descriptions,
            not_used=not_used,
            team=team,
            done=done,
            empty=empty,
            reassigned=reassigned,
        )

    @app.post("/next")
    async def get_next(request: Request) -> Response:
        return await run_in_threadpool(next_item, request, await posted(request))

    def next_item(request: Request, form: dict[str, str]) -> Response:
        person = sender(request, form)
        with session() as s:
            router.route_for_worker(s, person.worker_id)  # fill spare capacity first, as the router would
            entries = worklist(s, person.name)
        if not entries:
            return RedirectResponse("/?empty=1", status_code=303)
        return RedirectResponse(f"/items/{entries[0].item_id}", status_code=303)

    # --- one item ---------------------------------------------------------------------------

    def load_item(person: SignedIn, item_id: int) -> dict[str, Any]:
        """The item as the page shows it; 404 if there is none, 403 if it is not theirs to see."""
        with session() as s:
            item = find_work_item(s, item_id)
            if item is None:
                raise Refused(404, f"there is no work item {item_id}")
            if item.assignee_id != person.worker_id and not person.is_supervisor:
                raise Refused(403, f"work item {item_id} is not yours: it is assigned to someone else")
            workers = [w.name for w in s.scalars(select(Worker).order_by(Worker.name))] if person.is_supervisor else []
            return {
                "item": item,
                "assignee": item.assignee.name if item.assignee else None,
                "workers": workers,
                "mine": item.assignee_id == person.worker_id,
                "active": item.state in (WorkItemState.OPEN, WorkItemState.ASSIGNED, WorkItemState.STARTED),
            }

    def item_page(
        request: Request,
        person: SignedIn,
        item_id: int,
        status: int = 200,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        message: str | None = None,
    ) -> HTMLResponse:
        loaded = load_item(person, item_id)
        form = form_for(loaded["item"].work_type)
        return page(
            request,
            "item.html",
            status,
            person=person,
            **loaded,
            description=loaded["item"].description,
            fields=field_views(form, values, errors),
            form_error=(errors or {}).get(""),
            override_error=(errors or {}).get("override_reason"),
            message=message,
            override_reason=(values or {}).get("override_reason", ""),
        )

    @app.get("/items/{item_id}")
    def show_item(request: Request, item_id: int) -> Response:
        return item_page(request, me(request), item_id)

    @app.post("/items/{item_id}")
    async def complete_item(request: Request, item_id: int) -> Response:
        # Prefect's calls run synchronously only outside the event loop: the work runs in a thread.
        return await run_in_threadpool(send_answer, request, item_id, await posted(request))

    def send_answer(request: Request, item_id: int, form_data: dict[str, str]) -> Response:
        person = sender(request, form_data)
        loaded = load_item(person, item_id)  # 403 before anything else for another rep's item
        if not loaded["active"]:
            raise Refused(409, f"work item {item_id} is {loaded['item'].state}; nothing to complete")
        form = form_for(loaded["item"].work_type)
        answer = answer_from(form, form_data)
        override = None
        if not loaded["mine"]:  # a supervisor completing someone else's item: an override, with a reason
            override = form_data.get("override_reason", "").strip()
            if not override:
                return item_page(
                    request,
                    person,
                    item_id,
                    422,
                    {**answer, "override_reason": ""},
                    {"override_reason": "an override needs a reason"},
                )
        kept = {**answer, "override_reason": override or ""}

        def not_sent(status: int, why: str) -> HTMLResponse:
            """The form again with what they typed: an answer that could not be sent is not lost."""
            return item_page(
                request,
                person,
                item_id,
                status,
                kept,
                message=f"{why} Your answer was not sent: it is still here, send it again.",
            )

        try:
            form.model_validate({**answer, "completed_by": person.name})
            with prefect():
                complete_step(
                    item_id,
                    answer,
                    by=person.name,
                    override_reason=override,
                    via="worklist",
                    wait_seconds=5,
                    confirm_seconds=CONFIRM_SECONDS,
                )
        except ValidationError as bad:
            return item_page(request, person, item_id, 422, kept, errors_by_field(form, bad))
        except completion_proof.ProofTooLong as why:
            return item_page(request, person, item_id, 422, kept, {"override_reason": str(why)})
        except router.NotAllowed as why:
            raise Refused(403, str(why)) from None
        except AnswerNotUsed:  # the worklist says why, at the top (the item may be someone else's now)
            return RedirectResponse("/", status_code=303)
        except StepNotReady as why:
            return not_sent(409, f"{why}; wait a moment.")
        except (httpx.HTTPError, OSError) as why:  # Prefect's server away, or a network fault
            log.warning("work item %s: the answer could not reach Prefect: %r", item_id, why)
            return not_sent(503, "The workflow server could not be reached.")
        except Exception as why:
            if type(why).__name__ in ("NotPausedError", "FlowPauseTimeout", "RuntimeError"):
                raise Refused(409, f"work item {item_id} is not waiting for an answer now ({why})") from None
            raise
        return RedirectResponse(f"/?done={item_id}", status_code=303)

    @app.post("/items/{item_id}/reassign")
    async def reassign(request: Request, item_id: int) -> Response:
        return await run_in_threadpool(hand_over, request, item_id, await posted(request))

    def hand_over(request: Request, item_id: int, form_data: dict[str, str]) -> Response:
        person = sender(request, form_data)
        if not person.is_supervisor:
            raise Refused(403, "only a supervisor may reassign work")
        try:
            with session() as s:
                supervision.reassign_item(
                    s, item_id, form_data.get("to", ""), by=person.name, reason=form_data.get("reason", "")
                )
        except supervision.CannotReassign as why:
            return item_page(request, person, item_id, 409, message=str(why))
        return RedirectResponse(f"/?reassigned={item_id}", status_code=303)

    return app


__all__ = ["COOKIE", "create_worklist_app", "hours_left"]
