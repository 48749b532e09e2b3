"""The server secret: what handoff signs sessions, device tokens and completion proofs with.

HANDOFF_SERVER_SECRET, else `home/server-secret` (0600), made once, atomically (two processes
starting together end up with the same secret). Only handoff holds it, so nobody who only
reaches Prefect can forge what it signs.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from itsdangerous import URLSafeSerializer
from itsdangerous import URLSafeTimedSerializer

from handoff.core.settings import settings


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


def signer(salt: str, timed: bool = True) -> URLSafeSerializer | URLSafeTimedSerializer:
    cls = URLSafeTimedSerializer if timed else URLSafeSerializer
    return cls(server_secret(), salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


__all__ = ["server_secret"]
