"""A pooled PostgreSQL connection is checked only when it has been idle (handoff.core.idle_ping):
one the server cut while it sat idle is replaced before anyone uses it, and one handed back a
moment ago is handed out again without a round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import exc
from sqlalchemy import text

from handoff.core import idle_ping
from handoff.core.db import engine_for


@pytest.fixture
def engine(postgres):
    url = postgres.new_database()
    made = engine_for(url)
    yield made
    made.dispose()
    postgres.drop_database(url)


def backend(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT pg_backend_pid()")).scalar_one()


def cut(postgres, pid: int) -> None:
    """The server ends the connection, as a restart or an idle timeout would."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres") as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def pings(engine, monkeypatch) -> list[bool]:
    done: list[bool] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: done.append(True) or real(conn))
    return done


def test_a_connection_handed_back_moments_ago_is_reused_without_a_ping(engine, pings):
    first = backend(engine)
    assert [backend(engine) for _ in range(5)] == [first] * 5
    assert pings == []


def test_a_connection_cut_while_idle_is_replaced_before_anyone_uses_it(engine, pings, postgres, monkeypatch):
    first = backend(engine)
    cut(postgres, first)
    monkeypatch.setattr(idle_ping, "IDLE_BEFORE_PING", 0.0)  # as if it had sat idle for a while
    with engine.connect() as c:  # no error reaches the caller
        assert c.execute(text("SELECT 1")).scalar_one() == 1
        assert c.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    assert pings, "the idle connection was pinged"


def test_a_connection_cut_within_the_idle_second_fails_once_and_the_pool_recovers(engine, postgres, monkeypatch):
    """The trade made for one round trip less per session: a connection cut less than
    IDLE_BEFORE_PING after its last use fails its first statement as a disconnect (a flow step
    retries it); the pool drops it and the next checkout connects afresh."""
    monkeypatch.setattr(idle_ping, "IDLE_BEFORE_PING", 3600.0)
    first = backend(engine)
    cut(postgres, first)
    with pytest.raises(exc.DBAPIError) as raised, engine.connect() as c:
        c.execute(text("SELECT 1"))
    assert raised.value.connection_invalidated
    assert backend(engine) != first
