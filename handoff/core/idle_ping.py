"""Checking a pooled PostgreSQL connection is alive only when it has been idle.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` at every checkout: a round trip on every
session, paid by every routing decision (about a tenth of one, docs/routing-benchmarks.md).
A connection handed back moments ago was alive moments ago; the ping earns its round trip on
one that sat idle, which a server restart or an idle timeout may have cut. So a connection
is pinged when it has been idle for IDLE_BEFORE_PING seconds or more (or was never used);
one that fails is replaced before anyone uses it, as with `pool_pre_ping`.

What this gives up: a server restarted within that second cuts connections handed out
unpinged, whose first statement then fails (SQLAlchemy recognises the disconnect and drops
the pool's other connections, so it happens once); flow steps retry such a failure, and the
intake answers 503 and keeps nothing half-done.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

IDLE_BEFORE_PING = 1.0  # seconds
_LAST_USED = "handoff_last_used"  # in the connection record's info (cleared when it reconnects)


def ping_when_idle(engine: Engine) -> None:
    """Install the idle check on `engine` (made without `pool_pre_ping`)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is not None and time.monotonic() - last < IDLE_BEFORE_PING:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as e:
            if dialect.is_disconnect(e, dbapi_connection, None):
                raise DisconnectionError(str(e)) from e  # the pool connects afresh and checks again
            raise
        if not alive:
            raise DisconnectionError("the connection did not answer a ping")

    @event.listens_for(engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()
