"""One engine and one session factory per database URL; the schema is brought up to date
by Alembic the first time a process touches the database, so upgrades never need a fresh one.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from handoff.core import idle_ping
from handoff.core import sqlite_driver
from handoff.core import wal_checkpoints
from handoff.core.settings import settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    # WAL lets readers (the CLI, reports) work while a flow writes; busy_timeout makes two
    # processes wait for each other instead of failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # Checkpoints run on a thread of their own (wal_checkpoints.py); a commit does one only
    # when the log is far larger than SQLite's default. A SQLite with the WAL-reset bug keeps
    # its default: the fewer checkpoints, the rarer the race (sqlite_driver.py).
    if wal_checkpoints.checkpoints_on_a_thread():
        cur.execute(f"PRAGMA wal_autocheckpoint={wal_checkpoints.SAFETY_NET_PAGES}")
    cur.close()


def engine_for(url: str) -> Engine:
    """The process's engine for `url`, opened (and the database migrated) on first use. At most
    MAX_ENGINES are kept; the least recently used beyond that is disposed, its idle connections
    closed (dropped unclosed, they leaked one PostgreSQL connection each, found by the suite's
    ResourceWarning). A disposed engine still works for whoever holds it: it opens anew."""
    with _OPENING:  # threads asking for a new database at once: one opens (and migrates) it
        found = _ENGINES.get(url)
        if found is not None:
            _ENGINES.move_to_end(url)
            return found
        found = _ENGINES[url] = _open(url)
        while len(_ENGINES) > MAX_ENGINES:
            _ENGINES.popitem(last=False)[1].dispose()
        return found


_OPENING = threading.Lock()
# SQLite has one writer at a time: this write changes nothing (no row has id 0) and takes that
# turn now, for the rest of the transaction (`take_turns`; routing's turn, claims.py).
SQLITE_WRITE_TURN = text("UPDATE change_counter SET seq = seq WHERE id = 0")
_ENGINES: OrderedDict[str, Engine] = OrderedDict()
MAX_ENGINES = 8  # a process uses one database; tests and benchmarks pass through many
MIGRATION_LOCK = 0x68616E64  # PostgreSQL advisory lock key ("hand"): one migrator per database


def _open(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sqlite_driver.new_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sqlite_driver.new_engine(url)
        idle_ping.ping_when_idle(engine)
    if not _at_head(engine):
        with _one_migrator(engine):
            command.upgrade(alembic_config(url), "head")
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        wal_checkpoints.keep_checkpointing(engine, engine.url.database)
    return engine


@lru_cache(maxsize=1)
def migration_head() -> str | None:
    """The newest migration, read from the scripts once per process (the warm fork server reads
    it for every flow run it forks)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _at_head(engine: Engine) -> bool:
    """Is the database at the newest migration already? One query, where Alembic's own check
    loads its environment and every migration script: ~25 ms, paid by every flow run and every
    resume (each a new process). Anything else (a new database, one behind or ahead, one that
    cannot be read) goes through `command.upgrade`, which migrates it or says what is wrong."""
    try:
        with engine.connect() as c:
            return c.scalars(text("SELECT version_num FROM alembic_version")).all() == [migration_head()]
    except DBAPIError:
        return False


@contextmanager
def _one_migrator(engine: Engine) -> Iterator[None]:
    """Processes that start at once on a new database (workers, `handoff up` and a CLI command)
    migrate it one after the other: the others wait, then find it at head. Without this, two
    both saw an empty schema and the second failed creating a table the first had made."""
    database = engine.url.database or ""
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            c.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                yield
            finally:
                c.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                c.commit()
    elif engine.dialect.name == "sqlite" and database not in ("", ":memory:"):
        # A lock file of its own: a lock on the database file would be released by SQLite's
        # own closes (POSIX record locks are per process), so the two must not share a file.
        with open(f"{database}.migrating", "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield  # closing the file releases the lock
    else:
        yield


def engine() -> Engine:
    return engine_for(settings.sqlalchemy_url)


def _session_factory(url: str) -> sessionmaker[Session]:
    return _sessions_of(engine_for(url))


@lru_cache(maxsize=MAX_ENGINES)
def _sessions_of(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session() -> Iterator[Session]:
    """A unit of work: commits when the block ends, rolls back if it raises."""
    with _session_factory(settings.sqlalchemy_url).begin() as s:
        yield s


def take_turns(s: Session, *keys: str) -> None:
    """Make this transaction wait until no other one holding any of `keys` is running, and
    hold them until it ends: for a check-then-write that must not interleave (sign-in's
    attempt limit, `workers add`). PostgreSQL: one transaction-scoped advisory lock per key,
    taken in one order so two transactions wanting the same two keys cannot deadlock. SQLite
    has one writer at a time: `SQLITE_WRITE_TURN` takes that turn now, before the check, so
    the check sees every write committed before it."""
    c = s.connection()
    if c.dialect.name != "postgresql":
        c.execute(SQLITE_WRITE_TURN)
        return
    for key in sorted({_lock_key(k) for k in keys}):
        c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name` (collisions only make two keys share a turn)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
