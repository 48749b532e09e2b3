"""Sessions: who a page request or a CLI command comes from.

itsdangerous-signed tokens (the web cookie, the CLI's session file) naming the worker, the
password generation and a CSRF nonce: a password reset ends every session issued before it, and
signing out ends one wherever a copy of it is.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from sqlalchemy import delete
from sqlalchemy.orm import Session

from handoff.core import audit
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

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


def _generation(worker: Worker) -> str:
    return worker.password_set_at.isoformat() if worker.password_set_at else ""


def issue_session(worker: Worker, purpose: str = "web") -> str:
    """A signed session token (the cookie's value, or the CLI's session file)."""
    return signer(f"handoff.session.{purpose}").dumps(
        {"w": worker.id, "g": _generation(worker), "c": secrets.token_urlsafe(18)}
    )


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
    worker = s.get(Worker, data.get("w")) if isinstance(data, dict) else None
    if worker is None or not worker.password_hash or data.get("g") != _generation(worker):
        raise NotSignedIn("the session ended (the password was changed); sign in again")
    nonce = str(data.get("c", ""))
    if s.get(EndedSession, _session_id(nonce)) is not None:
        raise NotSignedIn("you signed out of this session; sign in again")
    return SignedIn(worker.id, worker.name, worker.role, nonce)


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
    s.add(
        EndedSession(
            session_id=_session_id(person.csrf),
            worker_id=person.worker_id,
            ended_at=now,
            expires_at=now + timedelta(hours=settings.session_hours),
        )
    )
    audit.record(s, person.name, "worker", person.worker_id, "signed-out")
    return person.name


__all__ = [
    "NotSignedIn",
    "SignedIn",
    "issue_session",
    "read_session",
]
