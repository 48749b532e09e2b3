"""The reps' worklist over HTTP (FastAPI's TestClient), without a flow run: signing in and its
rate limit, sessions and CSRF, who may see and act on which item, Get next, reassignment, and
the form rendered from the step's model with its validation messages by field.

Completing through a real paused flow run, and the refusals the flow itself makes, are in
tests/flows/test_completion_proof.py; in a real browser, tests/browser/test_browser_worklist.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from handoff.core import audit
from handoff.core.db import session
from handoff.core.identity import sign_in
from handoff.core.models import AuditEvent
from handoff.core.models import LoginAttempt
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing import router
from handoff.core.routing.worklist import worklist
from handoff.core.settings import settings
from handoff.runtime.worklist import COOKIE
from handoff.runtime.worklist import create_worklist_app

PASSWORD = "correct horse battery"


def NO_PREFECT():
    return __import__("contextlib").nullcontext()


@pytest.fixture
def team(db):
    """Two reps and a supervisor with passwords, and work: three items for ann, one for bob,
    one open item nobody can take yet (bob and ann are full)."""
    with session() as s:
        for name, role, capacity in (("ann", "rep", 3), ("bob", "rep", 1), ("sue", "supervisor", 0)):
            s.add(Worker(name=name, role=role, capacity=capacity, skills=[WorkerSkill(skill="order-entry", level=3)]))
        s.flush()
        for name in ("ann", "bob", "sue"):
            sign_in.set_password(s, name, PASSWORD, actor="test")
        now = utcnow()
        for i, hours in enumerate((30, 2, 10, 5, 1)):
            s.add(
                WorkItem(
                    work_type="order-approval",
                    step_key=f"k{i}",
                    title=f"Approve order {i}",
                    required_skills={"order-entry": 2},
                    due_at=now + timedelta(hours=hours),
                    effort_seconds=300,
                    created_at=now,
                )
            )
        s.flush()
        for item_id in s.scalars(select(WorkItem.id).order_by(WorkItem.id)):
            router.route_item(s, item_id)
    return db


def client() -> TestClient:
    return TestClient(create_worklist_app(prefect_context=NO_PREFECT), follow_redirects=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(name: str) -> tuple[TestClient, str]:
    c = client()
    page = c.get("/login")
    answer = c.post("/login", data={"csrf_token": csrf_of(page.text), "name": name, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    home = c.get("/")
    assert home.status_code == 200
    return c, csrf_of(home.text)


def items_of(name: str) -> list[int]:
    with session() as s:
        return [e.item_id for e in worklist(s, name)]


def test_a_rep_sees_only_their_items_most_urgent_first(team):
    c, _ = signed_in("ann")
    page = c.get("/").text
    shown = [int(i) for i in re.findall(r'data-item="(\d+)"', page)]
    assert shown == items_of("ann") and len(shown) == 3
    assert not set(shown) & set(items_of("bob"))
    assert "h left" in page and "Get next" in page
    assert "The team" not in page  # a rep does not see the team's work
    assert int(re.search(r"app;dur=([\d.]+)", c.get("/").headers["server-timing"]).group(1).split(".")[0]) >= 0


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_an_item_id_no_database_holds_is_not_found(team):
    """Past PostgreSQL's 32-bit ids (2147483648) as past SQLite's 64: a 404, and the CLI's
    `handoff complete` says it does not exist, not a traceback."""
    from handoff.runtime.steps import StepNotReady
    from handoff.runtime.steps import step_form

    c, csrf = signed_in("ann")
    boss, boss_csrf = signed_in("sue")
    for item_id in ("99999999999999999999", "9223372036854775808", "2147483648", "0", "-1"):
        with pytest.raises(StepNotReady, match="does not exist"):
            step_form(int(item_id))
        assert c.get(f"/items/{item_id}").status_code == 404
        assert c.post(f"/items/{item_id}", data={"csrf_token": csrf, "decision": "approve"}).status_code == 404
        moved = boss.post(f"/items/{item_id}/reassign", data={"csrf_token": boss_csrf, "to": "bob", "reason": "x"})
        assert moved.status_code == 404, moved.text  # not a 500 from a number SQLite cannot hold


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_a_nul_in_any_field_is_no_error_on_either_database(team):
    """PostgreSQL refuses NUL in any text, as a value or as a name to look up: a NUL in a
    sign-in name or a reassignment was a 500 there. Every posted field has it replaced."""
    nul = {"Content-Type": "application/x-www-form-urlencoded"}
    c = client()
    csrf = csrf_of(c.get("/login").text)
    wrong = c.post("/login", content=f"csrf_token={csrf}&name=ann%00&password=x%00", headers=nul)
    assert wrong.status_code == 401, wrong.text
    boss, boss_csrf = signed_in("sue")
    moved = items_of("ann")[-1]
    nobody = boss.post(f"/items/{moved}/reassign", content=f"csrf_token={boss_csrf}&to=bob%00&reason=r%00", headers=nul)
    assert nobody.status_code == 409 and "bob\ufffd" in nobody.text, nobody.text
    with session() as s:
        assert s.get(WorkItem, moved).assignee.name == "ann"
        assert s.scalars(select(LoginAttempt.name)).all() == ["ann\ufffd", "sue"]


@pytest.mark.parametrize(("proxies", "recorded"), [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")])
def test_x_forwarded_for_names_the_client_only_when_a_trusted_proxy_sends_it(team, monkeypatch, proxies, recorded):
    """The sign-in limit per address counts the address that connected. uvicorn's default took
    X-Forwarded-For from 127.0.0.1, where handoff listens: any local client could name its own
    address at each guess (never limited) or someone else's (locked out)."""
    import httpx

    from handoff.runtime.worklist import WorklistServer

    monkeypatch.setattr(settings, "trusted_proxies", proxies)
    server = WorklistServer("127.0.0.1", free_port()).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as web:
            csrf = csrf_of(answering(web, "/login").text)
            guess = {"csrf_token": csrf, "name": "ann", "password": "guess"}
            assert web.post("/login", data=guess, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
    finally:
        server.stop()
    with session() as s:
        assert s.scalars(select(LoginAttempt.client)).all() == [recorded]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answering(web, path: str, seconds: float = 10):  # noqa: ANN001, ANN201
    """GET `path` once the server has started answering."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            return web.get(path)
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_another_reps_item_answers_403_and_stays_theirs(team):
    c, csrf = signed_in("ann")
    [bobs] = items_of("bob")
    assert c.get(f"/items/{bobs}").status_code == 403
    post = c.post(f"/items/{bobs}", data={"csrf_token": csrf, "decision": "approve", "note": "mine now"})
    assert post.status_code == 403 and "not yours" in post.text
    assert c.post(f"/items/{bobs}/reassign", data={"csrf_token": csrf, "to": "ann", "reason": "x"}).status_code == 403
    with session() as s:
        item = s.get(WorkItem, bobs)
        assert item.assignee.name == "bob" and item.state == WorkItemState.ASSIGNED
    assert c.get("/items/999999").status_code == 404


def test_no_session_or_a_forged_cookie_signs_nobody_in(team):
    c = client()
    assert c.get("/").headers["location"] == "/login"
    # A cookie naming ann, signed with another secret; then ann's real cookie, one letter changed.
    forged = URLSafeTimedSerializer("not-the-secret", salt="handoff.session.web").dumps({"w": 1, "g": "", "c": "x"})
    for cookie in (forged, "garbage"):
        c.cookies.set(COOKIE, cookie)
        assert c.get("/").headers["location"] == "/login"
        assert c.post("/next", data={"csrf_token": "x"}).status_code == 401
    real, _ = signed_in("ann")
    token = real.cookies.get(COOKIE)
    c.cookies.set(COOKIE, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    assert c.get("/").status_code == 303
    # The cookie is HttpOnly and SameSite=Strict.
    fresh = client()
    answer = fresh.post(
        "/login", data={"csrf_token": csrf_of(fresh.get("/login").text), "name": "ann", "password": PASSWORD}
    )
    session_cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith(COOKIE))
    assert "httponly" in session_cookie.lower() and "samesite=strict" in session_cookie.lower()


def test_a_password_reset_ends_the_old_sessions(team):
    c, _ = signed_in("ann")
    with session() as s:
        sign_in.set_password(s, "ann", "another good password", actor="test")
    assert c.get("/").headers["location"] == "/login"


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(team):
    """A copy of the cookie (another tab, another machine, a stolen one) stops working when its
    person signs out; their other sessions go on."""
    c, csrf = signed_in("ann")
    other_tab, _ = signed_in("ann")  # a second session of hers
    copy = client()
    copy.cookies.set(COOKIE, c.cookies.get(COOKIE))
    assert copy.get("/").status_code == 200
    assert c.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert copy.get("/").headers["location"] == "/login"
    assert copy.post("/next", data={"csrf_token": csrf}).status_code == 401
    assert other_tab.get("/").status_code == 200
    with session() as s:
        assert s.scalar(select(AuditEvent.actor).where(AuditEvent.action == "signed-out")) == "ann"


def test_every_form_post_needs_the_sessions_csrf_token(team):
    c, csrf = signed_in("ann")
    mine = items_of("ann")[0]
    for path, data in (("/next", {}), (f"/items/{mine}", {"decision": "approve", "note": "ok"}), ("/logout", {})):
        missing = c.post(path, data=data)
        wrong = c.post(path, data={**data, "csrf_token": "x" * len(csrf)})
        assert missing.status_code == wrong.status_code == 403 and "CSRF" in missing.text
    _, other_csrf = signed_in("bob")  # another session's token is not this one's
    assert c.post("/next", data={"csrf_token": other_csrf}).status_code == 403
    # Signing in needs the sign-in page's token too.
    assert client().post("/login", data={"name": "ann", "password": PASSWORD}).status_code == 403
    with session() as s:
        assert s.get(WorkItem, mine).state == WorkItemState.ASSIGNED


def test_an_answer_that_cannot_be_sent_is_kept_on_the_form(team, monkeypatch):
    """Prefect away, or the run not waiting yet: the rep gets the form back with what they typed
    and a reason, not an error page that drops a long note."""
    from contextlib import contextmanager

    from prefect.settings import PREFECT_API_URL
    from prefect.settings import temporary_settings

    @contextmanager
    def prefect_away():
        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # nothing listens there
            yield

    monkeypatch.setenv("PREFECT_CLIENT_MAX_RETRIES", "0")
    c = TestClient(create_worklist_app(prefect_context=prefect_away), follow_redirects=False)
    c.post("/login", data={"csrf_token": csrf_of(c.get("/login").text), "name": "ann", "password": PASSWORD})
    csrf = csrf_of(c.get("/").text)
    not_waiting, away = items_of("ann")[:2]
    with session() as s:
        s.get(WorkItem, away).flow_run_id = "0b8f5f2e-3c39-4a4e-9c52-6d5b8f1f0a11"
        s.get(WorkItem, away).input_key = "approval-answer"
    note = "called the customer twice; the second line's price needs a look & a <re-check>"
    for item_id, status in ((not_waiting, 409), (away, 503)):
        answer = c.post(f"/items/{item_id}", data={"csrf_token": csrf, "decision": "approve", "note": note})
        assert answer.status_code == status, answer.text[:400]
        assert "still here" in answer.text
        assert "the second line&#39;s price needs a look &amp; a &lt;re-check&gt;" in answer.text  # kept, escaped
        with session() as s:
            assert s.get(WorkItem, item_id).state == WorkItemState.ASSIGNED


def test_the_form_is_the_steps_model_with_its_messages_by_field(team):
    c, csrf = signed_in("ann")
    mine = items_of("ann")[0]
    page = c.get(f"/items/{mine}").text
    assert '<select id="f-decision" name="decision"' in page and '<option value="reject"' in page
    assert 'name="completed_by"' not in page and 'name="completion_proof"' not in page  # not typed: signed
    assert re.search(r'Decision <span class="required"', page)  # required fields are marked
    bad = c.post(f"/items/{mine}", data={"csrf_token": csrf, "decision": "reject", "note": " "})
    assert bad.status_code == 422
    assert re.search(r'id="e-note" role="alert">a rejection needs a reason', bad.text)
    nothing = c.post(f"/items/{mine}", data={"csrf_token": csrf, "note": "x"})
    assert nothing.status_code == 422 and 'id="e-decision"' in nothing.text
    with session() as s:
        assert s.get(WorkItem, mine).state == WorkItemState.ASSIGNED


def test_get_next_opens_the_most_urgent_item_the_router_holds_for_them(team):
    c, csrf = signed_in("ann")
    answer = c.post("/next", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == f"/items/{items_of('ann')[0]}"
    # bob, full with one item, completes it outside the app: Get next pulls the open item to him.
    with session() as s:
        [bobs] = items_of("bob")
        open_before = s.scalars(select(WorkItem.id).where(WorkItem.state == WorkItemState.OPEN)).all()
        router.complete_item(s, bobs, by="bob", outcome="approve")
    c, csrf = signed_in("bob")
    answer = c.post("/next", data={"csrf_token": csrf})
    assert open_before and answer.headers["location"] == f"/items/{open_before[0]}"


def test_a_supervisor_sees_the_team_and_reassigns_through_the_router(team):
    c, csrf = signed_in("sue")
    page = c.get("/").text
    team_shown = {int(i) for i in re.findall(r'data-team-item="(\d+)"', page)}
    assert set(items_of("ann")) | set(items_of("bob")) <= team_shown
    moved = items_of("ann")[-1]
    refused = c.post(f"/items/{moved}/reassign", data={"csrf_token": csrf, "to": "bob", "reason": "balance"})
    assert refused.status_code == 409 and "no spare capacity" in refused.text  # bob is full: nothing moved
    with session() as s:
        assert s.get(WorkItem, moved).assignee.name == "ann"
        s.get(Worker, s.scalar(select(Worker.id).where(Worker.name == "bob"))).capacity = 2
    done = c.post(f"/items/{moved}/reassign", data={"csrf_token": csrf, "to": "bob", "reason": "ann is in a meeting"})
    assert done.status_code == 303
    with session() as s:
        item = s.get(WorkItem, moved)
        assert item.assignee.name == "bob" and item.state == WorkItemState.ASSIGNED
        ann, bob = (s.scalar(select(Worker).where(Worker.name == n)) for n in ("ann", "bob"))
        assert (ann.open_items, bob.open_items) == (2, 2)
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "reassigned")).one()
        assert event.actor == "sue" and event.details["from_worker"] == "ann" and event.details["reason"]
    # An override needs a reason; the form says so next to the field.
    no_reason = c.post(f"/items/{moved}", data={"csrf_token": csrf, "decision": "approve", "note": "ok"})
    assert no_reason.status_code == 422 and 'id="e-override_reason"' in no_reason.text


@pytest.mark.committed  # the CLI, another process, reads the attempts
def test_sign_in_is_rate_limited_per_name_and_per_address_across_processes(team):
    c = client()
    csrf = csrf_of(c.get("/login").text)
    for _ in range(sign_in.MAX_FAILURES_PER_NAME):
        assert c.post("/login", data={"csrf_token": csrf, "name": "ann", "password": "guess"}).status_code == 401
    limited = c.post("/login", data={"csrf_token": csrf, "name": "ann", "password": PASSWORD})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0  # even the right password
    # Another process (the CLI) counts the same failures: the database holds them.
    env = {**os.environ, "HANDOFF_DATABASE_URL": team, "HANDOFF_HOME": str(settings.home)}
    cli = subprocess.run(
        [sys.executable, "-m", "handoff.cli.main", "login", "--name", "ann", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert cli.returncode == 2 and "too many failed sign-ins" in cli.stdout, cli.stdout + cli.stderr[-3000:]
    # Per address: many names from one address, each failing once or twice, lock the address.
    for i in range(sign_in.MAX_FAILURES_PER_CLIENT - sign_in.MAX_FAILURES_PER_NAME):
        c.post("/login", data={"csrf_token": csrf, "name": f"nobody-{i}", "password": "guess"})
    blocked = c.post("/login", data={"csrf_token": csrf, "name": "bob", "password": PASSWORD})
    assert blocked.status_code == 429 and "this address" in blocked.text
    with session() as s:
        assert (
            s.scalar(select(LoginAttempt).where(LoginAttempt.name == "ann", LoginAttempt.client.like("cli:%"))) is None
        )


def test_a_rep_on_a_browser_they_signed_in_on_before_is_not_locked_out_by_a_stranger(team):
    """A stranger's five wrong passwords for ann lock ann's name for strangers only: ann's own
    browser (its device cookie outlives sign-out) still signs in; a new browser waits."""
    from handoff.runtime.worklist.app import DEVICE_COOKIE

    desk, csrf = signed_in("ann")
    assert desk.cookies.get(DEVICE_COOKIE)
    assert desk.post("/logout", data={"csrf_token": csrf}).status_code == 303
    stranger = client()
    guess = csrf_of(stranger.get("/login").text)
    for _ in range(sign_in.MAX_FAILURES_PER_NAME):
        assert (
            stranger.post("/login", data={"csrf_token": guess, "name": "ann", "password": "guess"}).status_code == 401
        )
    assert stranger.post("/login", data={"csrf_token": guess, "name": "ann", "password": PASSWORD}).status_code == 429
    again = desk.post(
        "/login", data={"csrf_token": csrf_of(desk.get("/login").text), "name": "ann", "password": PASSWORD}
    )
    assert again.status_code == 303 and desk.get("/").status_code == 200
    # The cookie vouches for ann alone: bob, tried from ann's browser, is a stranger's guess.
    for _ in range(sign_in.MAX_FAILURES_PER_NAME):
        desk.post("/login", data={"csrf_token": csrf_of(desk.get("/login").text), "name": "bob", "password": "x"})
    bob = desk.post(
        "/login", data={"csrf_token": csrf_of(desk.get("/login").text), "name": "bob", "password": PASSWORD}
    )
    assert bob.status_code == 429


def test_an_override_needs_a_reason_whichever_way_it_is_sent(team):
    """The worklist refused a supervisor's override without a reason; `handoff complete` took it
    with an empty note and audited "(no reason given)" (found by an outside tester). The rule is
    in the one completion path both use."""
    from handoff.runtime.steps import complete_step

    with session() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.assignee_id.is_not(None)).order_by(WorkItem.id))
        item.flow_run_id, item.input_key = "00000000-0000-0000-0000-000000000001", "work-item-1-0"
        item_id, holder = item.id, item.assignee.name
    for reason in (None, "", "   "):
        with pytest.raises(router.NotAllowed, match="an override needs a reason"):
            complete_step(item_id, {"decision": "approve", "note": reason or ""}, by="sue", override_reason=reason)
    with pytest.raises(router.NotAllowed, match="only the assignee"):  # a rep may not override at all
        complete_step(item_id, {"decision": "approve", "note": "x"}, by="bob" if holder != "bob" else "ann")


def test_a_steps_text_is_the_one_handoff_keeps_and_refused_answers_are_told(team):
    """Reps read the step's text from handoff's database (Prefect's copy can be rewritten by
    anyone who reaches its API), and a rep told "sent" whose answer the run then refused finds
    that out at the top of their worklist."""
    c, _ = signed_in("ann")
    with session() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.assignee.has(name="ann")).order_by(WorkItem.id))
        item.description = "### Order 7 — **check the discount**"
        audit.record(s, "ann", "work_item", item.id, "completion-refused", reason="assigned to bob now", attempt=0)
        audit.record(s, "ann", "work_item", item.id, "completion-refused", reason="refused on sending")  # seen then
        item_id = item.id
    page = c.get(f"/items/{item_id}").text
    assert "<strong>check the discount</strong>" in page
    home = c.get("/").text
    assert f"Your answer to work item {item_id} was not used" in home and "assigned to bob now" in home
    assert "refused on sending" not in home
    assert "was not used" not in signed_in("bob")[0].get("/").text  # only the sender's


def test_a_steps_description_is_rendered_as_markdown_with_its_html_escaped():
    from handoff.runtime.worklist.app import MARKDOWN

    html = MARKDOWN.render(
        "**Why:** large\n\n| line | qty |\n|---|---|\n| 1 | <script>alert(1)</script> |\n\n"
        "[click](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    assert "<strong>Why:</strong>" in html and "<td>1</td>" in html
    assert "<script>" not in html and "<img" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    "name",
    [
        "ACME [URGENT: re-enter your password here](https://evil.example/login)",
        "ACME <https://evil.example/a>",
        "ACME ![x](/logout)",
        "ACME \\[still a link?](https://evil.example/b)",
        "ACME [ref]\n\n[ref]: https://evil.example/c",
    ],
)
def test_text_from_customers_shows_in_a_step_as_text_never_as_a_link(name):
    """What the intake let a customer write (here, their name) reaches a rep as the words it is:
    no link, image or autolink, whatever the spelling; the step's own formatting stays."""
    from handoff.runtime.worklist.app import MARKDOWN
    from tasks.human_step import without_links

    step = f"### Order 1 — {name}\n\n**Why you are asked:** large\n\n- first\n\n| line | qty |\n|---|---|\n| 1 | 3 |"
    html = MARKDOWN.render(without_links(step))
    assert "<a " not in html and "<img" not in html and "ACME" in html  # shown, not linked
    assert "<h3>" in html and "<strong>Why you are asked:</strong>" in html and "<li>first</li>" in html
    assert "<td>3</td>" in html


def test_a_form_over_the_limit_is_refused(team):
    def pieces():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"x" * 1024

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client().post("/login", content=pieces(), headers=form).status_code == 413
    assert client().post("/login", content=b"x" * (200 * 1024), headers=form).status_code == 413


def test_the_worklist_server_cuts_off_slow_heads_and_slow_bodies(team, monkeypatch):
    """The worklist is served as guardedly as the intake (handoff.runtime.app_server)."""
    import select
    import socket
    import time

    import httpx

    from handoff.runtime.worklist import WorklistServer

    monkeypatch.setattr(settings, "intake_read_timeout_seconds", 1.0)
    port = free_port()
    server = WorklistServer("127.0.0.1", port).start()
    try:
        with httpx.Client(base_url=server.url, timeout=1) as web:
            answering(web, "/login")
        # The sign-in page is open to anyone: a body streamed to it is refused while it arrives
        # (past 64 KiB; what the sockets' buffers hold is on its way), not read to its end: this
        # one never ends, so reading it all would mean no answer at all.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent, answer = 0, b""
            while sent < 32 * 2**20 and not answer:
                try:
                    conn.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
                    sent += 1024
                except OSError:  # the server closed the connection
                    break
                if select.select([conn], [], [], 0)[0]:
                    answer = conn.recv(4096)
            answer = answer or conn.recv(4096)
            assert answer.startswith(b"HTTP/1.1 413") and sent < 32 * 2**20, (sent, answer[:40])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nname=")
            started = time.monotonic()
            assert conn.recv(4096).startswith(b"HTTP/1.1 408") and time.monotonic() - started < 4
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\n")  # and then nothing more, ever
            started = time.monotonic()
            assert conn.recv(4096) == b"" and time.monotonic() - started < 4
    finally:
        server.stop()
