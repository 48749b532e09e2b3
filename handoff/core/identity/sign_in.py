"""Passwords and sign-in.

- passwords: argon2id hashes (argon2-cffi); a reset ends every session issued before it
  (sessions.py).
- sign-in: refused after too many failures for one name or from one client address in a
  window; attempts are rows in the database, so the web app and the CLI count together. A
  device a rep signed in on before (a signed device token: the web's device cookie, the CLI's
  device file) is limited on its own instead: a stranger guessing a rep's password locks the
  name for strangers, not for the rep at their own desk (OWASP's "device cookies").
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from itsdangerous import BadSignature
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.identity.secret import signer
from handoff.core.intake.text import printable
from handoff.core.models import LoginAttempt
from handoff.core.models import Worker
from handoff.core.models import utcnow
from handoff.core.routing import router

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
    return signer(f"handoff.device.{purpose}").dumps({"w": worker.id, "d": secrets.token_urlsafe(18)})


def trusted_device(name: str, token: str | None, purpose: str = "web") -> str | None:
    """The device id (a hash) when `token` is a device token handoff issued, within DEVICE_DAYS,
    to the worker named `name`; None otherwise (a stranger's device, or a forged token)."""
    if not token:
        return None
    try:
        data = signer(f"handoff.device.{purpose}").loads(token, max_age=DEVICE_DAYS * 86400)
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
    device: str | None = None,
) -> None:
    """Raise TooManyAttempts if this name or this address failed too often lately, counting
    strangers' attempts only; from a trusted `device`, if that device did."""
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
        if failures >= limit:
            wait = int(((oldest or now) + LOGIN_WINDOW - now).total_seconds()) + 1
            raise TooManyAttempts(
                f"too many failed sign-ins for {what}; try again in {wait // 60 + 1} min",
                retry_after_seconds=max(wait, 1),
            )


def _attempt_counted_first(name: str, client: str, device: str | None) -> int:
    """Record the attempt as a failure, committed, before its password is checked, unless the
    limit refuses it. Counting and recording take turns per name, address and device
    (`db.take_turns`), so attempts made at the same moment are admitted one after another:
    exactly as many as the limit allows are checked, the rest are told to wait (checking
    first and recording after let 19 of 100 parallel guesses through a limit of 5; recording
    first and counting after, without turns, refused a burst of 40 entirely, the right password
    too). One refused by the limit is not kept: an attacker who keeps trying must not keep the
    name locked for ever. Its own transaction: call before the caller's session writes
    anything."""
    from handoff.core.db import session
    from handoff.core.db import take_turns

    with session() as own:
        if device:
            take_turns(own, f"sign-in device {device}")
        else:
            take_turns(own, f"sign-in name {name}", f"sign-in client {client}")
        check_rate_limit(own, name, client, device=device)
        row = LoginAttempt(name=name, client=client, succeeded=False, device=device)
        own.add(row)
        own.flush()
        return row.id


def authenticate(
    s: Session, name: str, password: str, client: str, device: str | None = None, purpose: str = "web"
) -> Worker:
    """The worker whose name and password these are. Every attempt is recorded, as a failure
    until its password is found right (so one cut short by a crash counts against the limit).
    `device`: the device token this client holds, if any (`issue_device`)."""
    # Unprintable characters written as escapes (no worker's name holds one: worker_record):
    # a NUL in a name made the attempt's row, and so the sign-in, fail on PostgreSQL.
    name = printable(name.strip())[:80]
    client = printable(client)[:80]
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


__all__ = [
    "LoginRefused",
    "TooManyAttempts",
    "authenticate",
    "set_password",
]
