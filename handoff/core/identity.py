"""Who is who: reps' passwords, sign-in with a rate limit, sessions, and the signed proof that a
completion came from a signed-in person.

Why: the OSS Prefect server has no user accounts, and a form's `completed_by` is a name anyone
can type (in the UI's Resume dialog, or straight to Prefect's API). So handoff signs every
completion it sends — for that item, that attempt (the key the run waits on), that person and
that answer (a hash of its canonical JSON) — with a secret only handoff holds, and the waiting
flow accepts nothing else (`complete_verified`). Nobody who only reaches Prefect can forge it.

- passwords: argon2id hashes (argon2-cffi); a reset ends every session issued before it.
- sign-in: refused after too many failures for one name or from one client address in a
  window; attempts are rows in the database, so the web app and the CLI count together. A
  device a rep signed in on before (a signed device token: the web's device cookie, the CLI's
  device file) is limited on its own instead: a stranger guessing a rep's password locks the
  name for strangers, not for the rep at their own desk (OWASP's "device cookies").
- sessions: itsdangerous-signed tokens (the web cookie, the CLI's session file) naming the
  worker, the password generation and a CSRF nonce.
- the server secret: HANDOFF_SERVER_SECRET, else `home/server-secret` (0600), made once,
  atomically (two processes starting together end up with the same secret).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeSerializer
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.models import EndedSession
from handoff.core.models import LoginAttempt
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import utcnow
from handoff.core.routing import router
from handoff.core.settings import settings

PROOF_FIELD = "completion_proof"  # the form field that carries the signed proof
MIN_PASSWORD_LENGTH = 10
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5  # in LOGIN_WINDOW: then that name waits, whoever tries it
MAX_FAILURES_PER_CLIENT = 20  # in LOGIN_WINDOW: then that address waits, whatever name it tries
MAX_FAILURES_PER_DEVICE = 5  # in LOGIN_WINDOW, from a trusted device: then that device waits
DEVICE_DAYS = 180  # a device stays trusted this long after its last sign-in there
HASHER = PasswordHasher()  # argon2id, the library's recommended parameters


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified when the name is unknown, so an unknown name takes as long as a wrong password.
    Made on first use: every flow-run process imports this module and should not pay for it."""
    return HASHER.hash(secrets.token_hex(16))


class LoginRefused(Exception):
    """Wrong name or password (which one is not said), or no password set yet."""


class TooManyAttempts(LoginRefused):
    """The rate limit: too many failures for this name or from this address lately."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class NotSignedIn(Exception):
    """No session, a forged or expired one, or one ended by a password reset."""


class CompletionRefused(router.NotAllowed):
    """A completion without a valid proof of who sent it. `actor` is who the audit names."""

    def __init__(self, message: str, actor: str = "unverified", **details: Any) -> None:
        super().__init__(message)
        self.actor = actor
        self.details = details


# --- the secret --------------------------------------------------------------------------


def server_secret(home: Path | None = None) -> bytes:
    """HANDOFF_SERVER_SECRET, else the one kept in home (made once, 0600, atomically)."""
    if settings.server_secret:
        return settings.server_secret.encode()
    home = home or settings.home
    path = home / "server-secret"
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: link() fails if another process
    # got there first, and then its secret is the one everybody uses.
    tmp = home / f".server-secret.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_urlsafe(48).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    value = path.read_bytes().strip()
    if not value:
        raise FileNotFoundError(path)  # a half-written file from a crash: treat as absent
    return value


def _signer(salt: str, timed: bool = True) -> URLSafeSerializer | URLSafeTimedSerializer:
    cls = URLSafeTimedSerializer if timed else URLSafeSerializer
    return cls(server_secret(), salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


# --- passwords and sign-in ---------------------------------------------------------------


def set_password(s: Session, name: str, password: str, actor: str) -> Worker:
    """Set (or reset) a worker's password; every session they had ends."""
    worker = s.scalar(select(Worker).where(Worker.name == name))
    if worker is None:
        raise router.UnknownWorker(f"no worker named {name!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    worker.password_hash = HASHER.hash(password)
    worker.password_set_at = utcnow()
    worker.failed_logins = 0
    audit.record(s, actor, "worker", worker.id, "password-set")
    return worker


def _failures_since(
    s: Session, column: Any, value: str, since: datetime, strangers_only: bool
) -> tuple[int, datetime | None]:
    query = select(func.count(), func.min(LoginAttempt.at)).where(
        column == value, LoginAttempt.at >= since, LoginAttempt.succeeded.is_(False)
    )
    if strangers_only:  # a trusted device's mistakes count against that device alone
        query = query.where(LoginAttempt.device.is_(None))
    count, oldest = s.execute(query).one()
    return int(count), oldest


def issue_device(worker: Worker, purpose: str = "web") -> str:
    """A token that marks this browser (or this CLI home) as one `worker` signed in on: given at
    each sign-in, kept after sign-out, worth nothing for any other name."""
    return _signer(f"handoff.device.{purpose}").dumps({"w": worker.id, "d": secrets.token_urlsafe(18)})


def trusted_device(name: str, token: str | None, purpose: str = "web") -> str | None:
    """The device id (a hash) when `token` is a device token handoff issued, within DEVICE_DAYS,
    to the worker named `name`; None otherwise (a stranger's device, or a forged token)."""
    if not token:
        return None
    try:
        data = _signer(f"handoff.device.{purpose}").loads(token, max_age=DEVICE_DAYS * 86400)
    except BadSignature:  # SignatureExpired included
        return None
    if not isinstance(data, dict) or not isinstance(data.get("d"), str):
        return None
    from handoff.core.db import session

    with session() as own:  # not the caller's: it must not open a transaction before the attempt's
        worker_id = own.scalar(select(Worker.id).where(Worker.name == name))
    if worker_id is None or data.get("w") != worker_id:
        return None
    return hashlib.sha256(f"{purpose}:{data['d']}".encode()).hexdigest()


def check_rate_limit(
    s: Session,
    name: str,
    client: str,
    now: datetime | None = None,
    counting_one_more: int = 0,
    device: str | None = None,
) -> None:
    """Raise TooManyAttempts if this name or this address failed too often lately, counting
    strangers' attempts only; from a trusted `device`, if that device did
    (`counting_one_more`: attempts already recorded among the failures that are still trying)."""
    now = now or utcnow()
    since = now - LOGIN_WINDOW
    limits = (
        ((LoginAttempt.device, device, MAX_FAILURES_PER_DEVICE, "this device"),)
        if device
        else (
            (LoginAttempt.name, name, MAX_FAILURES_PER_NAME, "this name"),
            (LoginAttempt.client, client, MAX_FAILURES_PER_CLIENT, "this address"),
        )
    )
    for column, value, limit, what in limits:
        failures, oldest = _failures_since(s, column, value, since, strangers_only=not device)
        if failures - counting_one_more >= limit:
            wait = int(((oldest or now) + LOGIN_WINDOW - now).total_seconds()) + 1
            raise TooManyAttempts(
                f"too many failed sign-ins for {what}; try again in {wait // 60 + 1} min",
                retry_after_seconds=max(wait, 1),
            )


def _attempt_counted_first(name: str, client: str, device: str | None) -> int:
    """Record the attempt as a failure, committed, before its password is checked, then apply
    the limit counting it: attempts made at the same moment each see the others, so no more
    than the limit are ever checked (checking first and recording after let 19 of 100 parallel
    guesses through a limit of 5). One refused by the limit is not kept: an attacker who keeps
    trying must not keep the name locked for ever. Its own transaction: call before the
    caller's session writes anything."""
    from handoff.core.db import session

    with session() as own:
        row = LoginAttempt(name=name, client=client, succeeded=False, device=device)
        own.add(row)
        own.flush()
        attempt = row.id
    try:
        with session() as own:
            check_rate_limit(own, name, client, counting_one_more=1, device=device)
    except TooManyAttempts:
        with session() as own:
            own.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt))
        raise
    return attempt


def authenticate(
    s: Session, name: str, password: str, client: str, device: str | None = None, purpose: str = "web"
) -> Worker:
    """The worker whose name and password these are. Every attempt is recorded, as a failure
    until its password is found right (so one cut short by a crash counts against the limit).
    `device`: the device token this client holds, if any (`issue_device`)."""
    name = name.strip()[:80]
    client = client[:80]
    attempt = _attempt_counted_first(name, client, trusted_device(name, device, purpose))
    worker = s.scalar(select(Worker).where(Worker.name == name))
    stored = worker.password_hash if worker is not None and worker.password_hash else _dummy_hash()
    try:
        ok = HASHER.verify(stored, password) and worker is not None and worker.password_hash is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if ok:
        s.execute(update(LoginAttempt).where(LoginAttempt.id == attempt).values(succeeded=True))
    else:
        if worker is not None:
            worker.failed_logins += 1
        raise LoginRefused("wrong name or password (or no password set yet: ask your supervisor)")
    assert worker is not None and worker.password_hash is not None  # ok implies both (see the verify line)
    worker.failed_logins = 0
    worker.last_login_at = utcnow()
    if HASHER.check_needs_rehash(worker.password_hash):
        worker.password_hash = HASHER.hash(password)
    audit.record(s, worker.name, "worker", worker.id, "signed-in", client=client)
    return worker


# --- sessions ----------------------------------------------------------------------------


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
    return _signer(f"handoff.session.{purpose}").dumps(
        {"w": worker.id, "g": _generation(worker), "c": secrets.token_urlsafe(18)}
    )


def read_session(s: Session, token: str | None, purpose: str = "web") -> SignedIn:
    """Who this session token belongs to, checked against the database now."""
    if not token:
        raise NotSignedIn("not signed in")
    try:
        data = _signer(f"handoff.session.{purpose}").loads(token, max_age=int(settings.session_hours * 3600))
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


# --- the proof a completion carries ------------------------------------------------------


def canonical_answer(answer: dict[str, Any]) -> str:
    """The answer as the proof covers it: every field but the proof, in one spelling."""
    rest = {k: v for k, v in answer.items() if k != PROOF_FIELD}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def answer_digest(answer: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_answer(answer).encode()).hexdigest()


def sign_completion(
    item_id: int,
    attempt_key: str,
    person: str,
    answer: dict[str, Any],
    override: str | None = None,
    via: str = "handoff",
) -> str:
    """The proof handoff attaches to an answer it sends for a signed-in person."""
    return _signer("handoff.completion", timed=False).dumps(
        {
            "item": item_id,
            "key": attempt_key,
            "by": person,
            "answer": answer_digest(answer),
            "override": override,
            "via": via,
            "at": utcnow().isoformat(timespec="seconds"),
        }
    )


@dataclass(frozen=True)
class Proof:
    person: str
    attempt_key: str
    override: str | None
    via: str
    digest: str


def verify_completion(s: Session, item_id: int, answer: dict[str, Any]) -> Proof:
    """Who sent this answer, proved; CompletionRefused (with the reason) otherwise."""
    claimed = str(answer.get("completed_by") or "?")
    token = answer.get(PROOF_FIELD)
    if not token:
        raise CompletionRefused(
            "the answer carries no proof of who sent it (it came around handoff: the Prefect UI's "
            "Resume dialog or Prefect's API); complete it in the worklist or with `handoff complete`",
            claimed_by=claimed,
        )
    try:
        data = _signer("handoff.completion", timed=False).loads(str(token))
    except BadSignature:
        raise CompletionRefused("the proof of who sent the answer is forged or damaged", claimed_by=claimed) from None
    item = s.get(WorkItem, item_id)
    if item is None or data.get("item") != item_id:
        raise CompletionRefused(
            f"the proof was made for work item {data.get('item')}, not {item_id}", claimed_by=claimed
        )
    if data.get("key") != item.input_key:
        raise CompletionRefused(
            f"the proof was made for an earlier attempt ({data.get('key')}), not the one waiting now "
            f"({item.input_key}): a replay",
            claimed_by=claimed,
            signed_by=data.get("by"),
        )
    if data.get("answer") != answer_digest(answer):
        raise CompletionRefused(
            "the answer was altered after it was signed", claimed_by=claimed, signed_by=data.get("by")
        )
    if data.get("by") != answer.get("completed_by"):
        raise CompletionRefused(
            f"the form names {claimed} but was signed for {data.get('by')}",
            claimed_by=claimed,
            signed_by=data.get("by"),
        )
    return Proof(
        str(data["by"]), str(data["key"]), data.get("override"), str(data.get("via", "handoff")), str(data["answer"])
    )


# The field of each form that says how the step came out (checklists/forms.py), and the words
# for the yes/no ones: what the item's outcome, the demo's tally and a late completer are shown.
OUTCOME_FIELDS = ("decision", "resolution", "customer_answer", "outcome")
YES_NO_FIELDS = {
    "confirmed": ("confirmed", "not confirmed"),
    "signed": ("signed", "not signed"),
    "visit_done": ("visit done", "visit not done"),
}


def outcome_of(answer: dict[str, Any]) -> str:
    for field in OUTCOME_FIELDS:
        if answer.get(field):
            return str(answer[field])
    for field, (yes, no) in YES_NO_FIELDS.items():
        if isinstance(answer.get(field), bool):
            return yes if answer[field] else no
    return "done"


def complete_verified(s: Session, item_id: int, answer: dict[str, Any]) -> WorkItem:
    """Close the item for the person the proof names — never for the name typed in the form.
    Refusals are router.NotAllowed (CompletionRefused for a missing or bad proof)."""
    proof = verify_completion(s, item_id, answer)
    try:
        item = router.complete_item(s, item_id, by=proof.person, outcome=outcome_of(answer), note=answer.get("note"))
    except router.NotAllowed as refused:
        raise CompletionRefused(str(refused), actor=proof.person) from refused
    item.answer = {k: v for k, v in answer.items() if k != PROOF_FIELD}
    audit.record(
        s,
        proof.person,
        "work_item",
        item_id,
        "completion-verified",
        attempt=proof.attempt_key,
        answer_sha256=proof.digest,
        via=proof.via,
    )
    if proof.override is not None:
        audit.record(s, proof.person, "work_item", item_id, "override", reason=proof.override)
    return item


__all__ = [
    "PROOF_FIELD",
    "CompletionRefused",
    "LoginRefused",
    "NotSignedIn",
    "SignedIn",
    "TooManyAttempts",
    "authenticate",
    "complete_verified",
    "issue_session",
    "read_session",
    "server_secret",
    "set_password",
    "sign_completion",
    "verify_completion",
]
