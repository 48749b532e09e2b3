"""The operators' console, locked: Prefect's own basic authentication on its server and UI.

The OSS Prefect server has one shared credential at most: `PREFECT_SERVER_API_AUTH_STRING` on the
server (the UI then asks for it), and `PREFECT_API_AUTH_STRING` on every client — the runner of
`handoff up`, the flow-run processes it starts (they inherit its environment), the CLI (it reads
the same string from HANDOFF_HOME). Reps never need it: they use the worklist, which talks to
Prefect with the string from inside handoff.

The string is HANDOFF_PREFECT_AUTH_STRING, else `operator:<random>` made once in
`home/prefect-auth` (0600).
"""

from __future__ import annotations

import os
import secrets

import httpx

from handoff.core.settings import settings

AUTH_FILE = "prefect-auth"
OPERATOR = "operator"


def stored_auth_string() -> str | None:
    """The console's credential if it is locked (or was: a harmless header for an open server)."""
    if settings.prefect_auth_string:
        return settings.prefect_auth_string
    path = settings.home / AUTH_FILE
    return path.read_text().strip() or None if path.exists() else None


def auth_string() -> str:
    """The credential, made on first use (atomically: O_EXCL, so two starts agree)."""
    existing = stored_auth_string()
    if existing:
        return existing
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(settings.home / AUTH_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return stored_auth_string() or auth_string()
    try:
        os.write(fd, f"{OPERATOR}:{secrets.token_urlsafe(24)}".encode())
    finally:
        os.close(fd)
    return stored_auth_string() or ""


def lock_environment() -> str:
    """Put the credential in this process's environment for the server it starts (server side)
    and for every process it starts (client side). Returns the credential."""
    auth = auth_string()
    os.environ["PREFECT_SERVER_API_AUTH_STRING"] = auth
    os.environ["PREFECT_API_AUTH_STRING"] = auth
    return auth


def refuses_strangers(url: str) -> bool:
    """Does the Prefect API at `url` refuse a call without the credential?"""
    try:
        return httpx.post(f"{url}/api/flow_runs/filter", json={"limit": 1}, timeout=5).status_code == 401
    except httpx.HTTPError:
        return False


__all__ = ["auth_string", "lock_environment", "refuses_strangers", "stored_auth_string"]
