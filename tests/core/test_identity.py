"""Identity in the core: passwords, sessions, the server secret, and the completion proof."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.identity import completion_proof
from handoff.core.identity import sessions
from handoff.core.identity import sign_in
from handoff.core.models import AuditEvent
from handoff.core.models import EndedSession
from handoff.core.models import LoginAttempt
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import utcnow
from handoff.core.settings import settings
from handoff.core.work_types import WORK_TYPES


def _secret_in(home: str, barrier, out) -> None:
    from handoff.core.identity import secret
    from handoff.core.settings import settings

    settings.server_secret = ""
    barrier.wait()
    out.put(secret.server_secret(Path(home)))


def test_processes_racing_to_make_the_secret_all_get_the_same_one(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "server_secret", "")
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_secret_in, args=(str(tmp_path), barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    secrets_seen = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=30)
    assert len(secrets_seen) == 1 and len(next(iter(secrets_seen))) >= 48
    assert (tmp_path / "server-secret").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["server-secret"]  # no temporary file left behind


@pytest.fixture
def ann(db):
    with session() as s:
        s.add(Worker(name="ann"))
        s.flush()
        sign_in.set_password(s, "ann", "a good long password", actor="test")
    return "ann"


def test_a_password_is_kept_only_as_an_argon2_hash(ann):
    with session() as s:
        stored = s.scalar(select(Worker.password_hash).where(Worker.name == ann))
        with pytest.raises(ValueError, match="at least"):
            sign_in.set_password(s, ann, "short", actor="test")
    assert stored.startswith("$argon2id$") and "a good long password" not in stored


def test_wrong_password_and_unknown_name_are_refused_alike_and_counted(ann):
    messages = []
    for name, password in ((ann, "wrong password!"), ("nobody", "a good long password")):
        with session() as s, pytest.raises(sign_in.LoginRefused) as refused:
            sign_in.authenticate(s, name, password, client="10.0.0.1")
        messages.append(str(refused.value))
    assert messages[0] == messages[1]  # which of the two was wrong is not said
    with session() as s:
        worker = sign_in.authenticate(s, ann, "a good long password", client="10.0.0.1")
        assert worker.failed_logins == 0 and worker.last_login_at is not None
        assert s.query(LoginAttempt).filter_by(succeeded=False).count() == 2


def test_a_session_expires_and_cannot_be_moved_to_another_purpose(ann, monkeypatch):
    with session() as s:
        worker = s.scalar(select(Worker).where(Worker.name == ann))
        web, cli = sessions.issue_session(worker), sessions.issue_session(worker, purpose="cli")
        assert sessions.read_session(s, web).name == ann and sessions.read_session(s, cli, "cli").name == ann
        with pytest.raises(sessions.NotSignedIn):
            sessions.read_session(s, cli)  # a CLI session file is not a web cookie
    monkeypatch.setattr(settings, "session_hours", 1 / 3600)
    time.sleep(2.1)
    with session() as s, pytest.raises(sessions.NotSignedIn, match="expired"):
        sessions.read_session(s, web)


def test_a_session_ends_when_it_was_issued_to_end_even_if_sessions_are_made_longer_later(ann, monkeypatch):
    """Raising HANDOFF_SESSION_HOURS does not lengthen sessions already out, nor bring back one
    signed out of once its record is let go: each token carries its own end."""
    from datetime import timedelta

    monkeypatch.setattr(settings, "session_hours", 1.0)
    with session() as s:
        worker = s.scalar(select(Worker).where(Worker.name == ann))
        kept, ended = sessions.issue_session(worker), sessions.issue_session(worker)
        assert sessions.end_session(s, ended) == ann
        (row,) = s.scalars(select(EndedSession)).all()
        # kept until the session's own end, whatever the setting is by then
        assert abs((row.expires_at - (utcnow() + timedelta(hours=1))).total_seconds()) < 5
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    monkeypatch.setattr(settings, "session_hours", 24.0)
    with session() as s:
        for token in (kept, ended):
            with pytest.raises(sessions.NotSignedIn, match="expired"):
                sessions.read_session(s, token)
        worker = s.scalar(select(Worker).where(Worker.name == ann))
        assert sessions.read_session(s, sessions.issue_session(worker)).name == ann  # a new one: 24 h


@pytest.mark.committed
@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_two_sign_outs_of_one_session_at_once_both_sign_out(db):
    """A double click on "Sign out": both requests read the session as live before either ends
    it. The second used to fail on the ended-sessions key (a 500 page); now both sign out, and
    the sign-out is audited once."""
    import threading

    with session() as s:
        s.add(Worker(name="ann"))
        s.flush()
        sign_in.set_password(s, "ann", "a good long password", actor="test")
        token = sessions.issue_session(s.scalar(select(Worker).where(Worker.name == "ann")))
    both_read = threading.Barrier(2)
    real_read = sessions.read_session

    def read_then_wait(*args, **kwargs):
        person = real_read(*args, **kwargs)
        both_read.wait(timeout=10)
        return person

    def sign_out() -> str | None:
        with session() as s:
            return sessions.end_session(s, token)

    sessions.read_session = read_then_wait
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            answers = [f.result(timeout=60) for f in [pool.submit(sign_out) for _ in range(2)]]
    finally:
        sessions.read_session = real_read
    assert answers == ["ann", "ann"]
    with session() as s:
        assert len(s.scalars(select(EndedSession)).all()) == 1
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "signed-out")).all()) == 1
        with pytest.raises(sessions.NotSignedIn, match="signed out"):
            sessions.read_session(s, token)


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_a_name_with_control_characters_is_a_wrong_name_not_an_error(db):
    """PostgreSQL refuses NUL in text: a sign-in name holding one failed recording its attempt
    (a 500). It is refused as any unknown name is, and recorded printable."""
    with session() as s:
        s.add(Worker(name="ann"))
        s.flush()
        sign_in.set_password(s, "ann", "a good long password", actor="test")
    for name in ("ann\x00", "\x00", "ann\x1b[2J"):
        with session() as s, pytest.raises(sign_in.LoginRefused):
            sign_in.authenticate(s, name, "a good long password", client="10.0.0.1\x00")
    with session() as s:
        recorded = s.execute(select(LoginAttempt.name, LoginAttempt.client).order_by(LoginAttempt.id)).all()
    assert [tuple(r) for r in recorded] == [
        ("ann\\x00", "10.0.0.1\\x00"),
        ("\\x00", "10.0.0.1\\x00"),
        ("ann\\x1b[2J", "10.0.0.1\\x00"),
    ]


def test_an_override_reason_too_long_to_sign_is_refused_saying_how_much_fits():
    """The reason is signed with the answer, and a step's form takes a proof of at most
    PROOF_MAX_LENGTH characters: past it Prefect refused the answer at every try. How much fits
    depends on the script (escaped in the proof); the refusal names it, exactly."""
    import random
    import re

    answer = {"completed_by": "sue", "decision": "approve", "note": "ok"}
    rng = random.Random(7)
    for reason in (
        "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(700)),
        "".join(chr(rng.randint(0x21, 0x7E)) for _ in range(2000)),
        "".join(chr(rng.randint(0x1F300, 0x1F64F)) for _ in range(1000)),
    ):
        with pytest.raises(completion_proof.ProofTooLong) as refused:
            completion_proof.sign_completion(1, "paused-work-item-1-0", "sue", answer, override=reason)
        fits = int(re.search(r"([\d,]+) of its", str(refused.value)).group(1).replace(",", ""))
        assert 0 < fits < len(reason)
        proof = completion_proof.sign_completion(1, "paused-work-item-1-0", "sue", answer, override=reason[:fits])
        assert len(proof) <= completion_proof.PROOF_MAX_LENGTH
        with pytest.raises(completion_proof.ProofTooLong):
            completion_proof.sign_completion(1, "paused-work-item-1-0", "sue", answer, override=reason[: fits + 1])
    assert completion_proof.sign_completion(1, "k", "sue", answer, override="assignee away for a week")


def test_the_proof_binds_item_attempt_person_and_answer(ann):
    with session() as s:
        item = WorkItem(
            work_type="order-approval",
            step_key="k",
            title="t",
            required_skills={},
            due_at=utcnow(),
            effort_seconds=60,
            input_key="paused-work-item-1-0",
        )
        s.add(item)
        s.flush()
        answer = {"completed_by": ann, "decision": "approve", "note": "ok"}
        proof = completion_proof.sign_completion(item.id, item.input_key, ann, answer)
        assert completion_proof.verify_completion(s, item.id, {**answer, "completion_proof": proof}).person == ann
        # Key order and the proof itself do not change what is signed; any other change does.
        assert (
            completion_proof.verify_completion(
                s, item.id, {"note": "ok", "completion_proof": proof, "decision": "approve", "completed_by": ann}
            ).person
            == ann
        )
        for changed, why in (
            ({"note": "ok "}, "altered"),
            ({"completed_by": "bob"}, "altered"),
            ({"extra": 1}, "altered"),
        ):
            with pytest.raises(completion_proof.CompletionRefused, match=why):
                completion_proof.verify_completion(s, item.id, {**answer, **changed, "completion_proof": proof})
        item.input_key = "paused-work-item-1-1"  # the next attempt
        with pytest.raises(completion_proof.CompletionRefused, match="replay"):
            completion_proof.verify_completion(s, item.id, {**answer, "completion_proof": proof})
        with pytest.raises(completion_proof.CompletionRefused, match="no proof"):
            completion_proof.verify_completion(s, item.id, answer)
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "completed")).all()


@pytest.mark.parametrize(
    "work_type", [w for w in WORK_TYPES.values() if isinstance(w.standin, Mapping)], ids=lambda w: w.name
)
def test_every_form_says_how_its_step_came_out(work_type):
    """The outcome recorded on an item (and tallied by the demo) comes from the form's own
    answer field, for every work type: never a bare "done" that hides a decline."""
    outcome = completion_proof.outcome_of(dict(work_type.standin))
    assert outcome != "done"
    assert outcome in {str(v) for v in work_type.standin.values()} | {
        word for words in completion_proof.YES_NO_FIELDS.values() for word in words
    }


def test_a_no_is_recorded_as_a_no():
    assert completion_proof.outcome_of({"confirmed": False, "note": ""}) == "not confirmed"
    assert completion_proof.outcome_of({"customer_answer": "declined", "note": "too dear"}) == "declined"
    assert completion_proof.outcome_of({"note": "nothing to say"}) == "done"


@pytest.mark.committed
@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_guesses_made_at_the_same_moment_are_limited_like_guesses_made_one_by_one(db):
    """Forty wrong passwords for one name at once: exactly the limit are checked (attempts take
    turns to be counted and recorded, before the password is checked), the rest are told to
    wait; once the limit is used up, the right one waits too, for the window. Recording first
    and counting after let none through at all under a burst (CI, PostgreSQL)."""
    from concurrent.futures import ThreadPoolExecutor

    with session() as s:
        s.add(Worker(name="bob"))
        s.flush()
        sign_in.set_password(s, "bob", "the right long password", actor="test")

    def guess(n: int) -> str:
        try:
            with session() as s:
                sign_in.authenticate(s, "bob", f"wrong guess {n}", client=f"10.0.0.{n}")
        except sign_in.TooManyAttempts:
            return "wait"
        except sign_in.LoginRefused:
            return "checked"
        return "signed in"

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(guess, range(40)))
    assert answers.count("signed in") == 0
    assert answers.count("checked") == sign_in.MAX_FAILURES_PER_NAME, answers
    with session() as s:
        recorded = s.query(LoginAttempt).filter_by(name="bob").count()
    assert recorded == answers.count("checked")  # the ones told to wait are not kept
    assert [guess(100 + n) for n in range(3)] == ["wait"] * 3  # guessing on, one by one
    with session() as s, pytest.raises(sign_in.TooManyAttempts):
        sign_in.authenticate(s, "bob", "the right long password", client="10.0.0.99")


@pytest.mark.committed
def test_a_stranger_guessing_locks_the_name_for_strangers_not_for_the_rep_on_their_own_device(db):
    """Five wrong passwords from anywhere locked a rep out of their own desk for 15 minutes:
    anyone who knew a name could keep a rep from working. A device the rep signed in on before
    is limited on its own; strangers (any address, a forged token, another rep's device) stay
    under the name's limit."""
    right = "the right long password"
    with session() as s:
        s.add_all([Worker(name="bob"), Worker(name="mallory")])
        s.flush()
        for name in ("bob", "mallory"):
            sign_in.set_password(s, name, right, actor="test")
    with session() as s:
        bobs_desk = sign_in.issue_device(sign_in.authenticate(s, "bob", right, client="10.0.0.7"))
    with session() as s:
        mallorys_own = sign_in.issue_device(sign_in.authenticate(s, "mallory", right, client="10.6.6.6"))

    def attempt(password: str, device: str | None = None, client: str = "10.6.6.6", purpose: str = "web") -> str:
        try:
            with session() as s:
                sign_in.authenticate(s, "bob", password, client=client, device=device, purpose=purpose)
        except sign_in.TooManyAttempts as wait:
            return f"wait: {wait}"
        except sign_in.LoginRefused:
            return "refused"
        return "signed in"

    assert [attempt(f"guess {n}") for n in range(sign_in.MAX_FAILURES_PER_NAME)] == ["refused"] * 5
    assert attempt(right).startswith("wait: too many failed sign-ins for this name")
    for stranger in (
        mallorys_own,  # a real device token, but another rep's
        bobs_desk[:-3] + ("AAA" if not bobs_desk.endswith("AAA") else "BBB"),  # forged
        bobs_desk,  # the right token, for another purpose: a web cookie is not a CLI device file
    ):
        assert attempt(right, stranger, purpose="cli" if stranger == bobs_desk else "web").startswith("wait:")
    # Bob at his own desk, from the attacker's very address (one office behind one NAT), is let in.
    assert attempt(right, bobs_desk) == "signed in"
    # A device's own mistakes are limited per device, and do not add to the strangers' count.
    with session() as s:
        strangers_before = s.query(LoginAttempt).filter_by(name="bob", device=None, succeeded=False).count()
    assert [attempt(f"typo {n}", bobs_desk) for n in range(sign_in.MAX_FAILURES_PER_DEVICE)] == ["refused"] * 5
    assert attempt(right, bobs_desk).startswith("wait: too many failed sign-ins for this device")
    with session() as s:
        assert s.query(LoginAttempt).filter_by(name="bob", device=None, succeeded=False).count() == strangers_before
