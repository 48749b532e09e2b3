"""handoff's SQLite databases are opened with a SQLite free of the WAL-reset bug, and with one
SQLite library per process (two delete each other's files: sqlite.org/howtocorrupt.html)."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from handoff.core import sqlite_driver
from handoff.core.db import alembic_config
from handoff.core.db import engine_for


def test_a_handoff_database_runs_a_sqlite_without_the_wal_reset_bug(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'fixed.db'}")
    with engine.connect() as c:
        version = tuple(int(part) for part in c.scalar(text("SELECT sqlite_version()")).split("."))
    engine.dispose()
    assert sqlite_driver.has_wal_reset_fix(version), version  # the database answered, not the module


@pytest.mark.parametrize(
    ("version", "fixed"),
    [
        ((3, 40, 1), False),  # Debian 12's
        ((3, 44, 5), False),
        ((3, 44, 6), True),  # a backport
        ((3, 45, 0), False),
        ((3, 50, 6), False),
        ((3, 50, 7), True),  # a backport
        ((3, 51, 2), False),
        ((3, 51, 3), True),
        ((3, 53, 4), True),
        ((4, 0, 0), True),
    ],
)
def test_which_sqlite_versions_have_the_fix(version, fixed):
    assert sqlite_driver.has_wal_reset_fix(version) is fixed


def test_the_migrations_open_the_database_with_the_same_sqlite_as_the_process(tmp_path):
    """Alembic's engine was made with Python's `sqlite3`: when it closed, that library (seeing
    no other connection of its own) checkpointed and deleted the -wal and -shm files under the
    process's open connections, whose next statement failed with "disk I/O error"."""
    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    engine = engine_for(url)
    with engine.connect() as held:  # a connection of the process stays open meanwhile
        held.execute(text("CREATE TABLE kept (x INTEGER)"))
        held.commit()
        command.upgrade(alembic_config(url), "head")  # Alembic opens and closes its own engine
        assert path.with_name("shared.db-wal").exists() and path.with_name("shared.db-shm").exists()
        held.execute(text("INSERT INTO kept VALUES (1)"))
        held.commit()
    other = sqlite_driver.dbapi.connect(str(path))
    try:
        assert other.execute("SELECT count(*) FROM kept").fetchone() == (1,)
    finally:
        other.close()
    engine.dispose()


def test_engines_on_other_databases_are_sqlalchemys_own(tmp_path):
    assert sqlite_driver.new_engine(f"sqlite:///{tmp_path / 'x.db'}").dialect.dbapi is sqlite_driver.dbapi
    postgres = sqlite_driver.new_engine("postgresql+psycopg://nobody@127.0.0.1:9/nothing")
    assert postgres.dialect.name == "postgresql"
