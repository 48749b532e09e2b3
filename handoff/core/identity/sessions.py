"""Sessions: who a page request or a CLI command comes from.

itsdangerous-signed tokens (the web cookie, the CLI's session file) naming the worker, the
password generation and a CSRF nonce: a password reset ends every session issued before it, and
signing out ends one wherever a copy of it is.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.clock import epoch
from handoff.core.clock import from_epoch
from handoff.core.identity.secret import signer
from handoff.core.models import EndedSession
from handoff.core.models import Worker
from handoff.core.models import utcnow
from handoff.core.settings import settings


class NotSignedIn(Exception):
    """No session, a forged or expired one, or one ended by a password reset."""


@dataclass(frozen=True)
class SignedIn:
    worker_id: int
    name: str
    role: str
    csrf: str  # the nonce every form post of this session must carry
    ends_at: datetime  # when the session ends, fixed when it was issued (naive UTC)

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


def _generation(worker: Worker) -> str:
    return worker.password_set_at.isoformat() if worker.password_set_at else ""


def issue_session(worker: Worker, purpose: str = "web") -> str:
    """A signed session token (the cookie's value, or the CLI's session file). It carries the
    moment it ends ("x"), fixed when it is issued: sessions made longer later
    (HANDOFF_SESSION_HOURS) do not lengthen the ones already out, nor bring back one signed out
    of whose record has been let go. Made shorter, they end sooner (the signature's age)."""
    ends = utcnow() + timedelta(hours=settings.session_hours)
    return signer(f"handoff.session.{purpose}").dumps(
        {"w": worker.id, "g": _generation(worker), "c": secrets.token_urlsafe(18), "x": int(epoch(ends))}
    )


def _ends_at(data: dict) -> datetime:
    """When a session ends, as its token says (an older token, without "x", has ended)."""
    ends = data.get("x")
    return from_epoch(ends if isinstance(ends, int) and 0 < ends < 2**40 else 0)


def read_session(s: Session, token: str | None, purpose: str = "web") -> SignedIn:
    """Who this session token belongs to, checked against the database now."""
    if not token:
        raise NotSignedIn("not signed in")
    try:
        data = signer(f"handoff.session.{purpose}").loads(token, max_age=int(settings.session_hours * 3600))
    except SignatureExpired:
        raise NotSignedIn("your sign-in expired; sign in again") from None
    except BadSignature:
        raise NotSignedIn("the session is not one handoff issued") from None
    if not isinstance(data, dict):
        raise NotSignedIn("the session is not one handoff issued")
    ends_at = _ends_at(data)
    if ends_at <= utcnow():
        raise NotSignedIn("your sign-in expired; sign in again")
    worker = s.get(Worker, data.get("w"))
    if worker is None or not worker.password_hash or data.get("g") != _generation(worker):
        raise NotSignedIn("the session ended (the password was changed); sign in again")
    nonce = str(data.get("c", ""))
    if s.get(EndedSession, _session_id(nonce)) is not None:
        raise NotSignedIn("you signed out of this session; sign in again")
    return SignedIn(worker.id, worker.name, worker.role, nonce, ends_at)


def _session_id(nonce: str) -> str:
    """What `ended_sessions` keeps of a session: a hash of its nonce, which the pages show as
    their CSRF token."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def end_session(s: Session, token: str | None, purpose: str = "web") -> str | None:
    """Sign out: the session's token is refused from now on, wherever a copy of it is. The name
    of whoever it was, or None for a token that signs nobody in (nothing to end)."""
    try:
        person = read_session(s, token, purpose)
    except NotSignedIn:
        return None
    now = utcnow()
    s.execute(delete(EndedSession).where(EndedSession.expires_at < now))  # past expiry: refused anyway
    # Kept until the session would have ended anyway (its own end, whatever the setting says
    # by then). Two sign-outs of one session at once (a double click): the second finds the
    # row there and is a sign-out all the same, not an error.
    ended = s.execute(
        _insert_new(s)(EndedSession)
        .values(
            session_id=_session_id(person.csrf),
            worker_id=person.worker_id,
            ended_at=now,
            expires_at=person.ends_at,
        )
        .on_conflict_do_nothing(index_elements=["session_id"])
        .returning(EndedSession.session_id)  # no row when it was there already (rowcount: -1 on psycopg)
    ).first()
    if ended is not None:
        audit.record(s, person.name, "worker", person.worker_id, "signed-out")
    return person.name


def _insert_new(s: Session):  # noqa: ANN202 - the dialect's insert, which can skip a row already there
    return postgresql_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


__all__ = [
    "NotSignedIn",
    "SignedIn",
    "issue_session",
    "read_session",
]
