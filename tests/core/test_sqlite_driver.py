"""handoff's SQLite databases are opened with a SQLite free of the WAL-reset bug, and with one
SQLite library per process (two delete each other's files: sqlite.org/howtocorrupt.html)."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.orm import Session

from handoff.core import sqlite_driver
from handoff.core.db import alembic_config
from handoff.core.db import engine_for
from handoff.core.models import Worker


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


def with_workers(path) -> str:  # noqa: ANN001
    """A migrated handoff database at `path` holding a team of 20, closed; its URL."""
    url = f"sqlite:///{path}"
    with Session(engine_for(url)) as s, s.begin():
        s.add_all(Worker(name=f"rep-{k}", capacity=k % 5 + 1) for k in range(20))
    engine_for(url).dispose()
    return url


def index_short_of_its_rows(path) -> None:  # noqa: ANN001
    """Damage as the WAL-reset bug left it: an index that no longer lists its table's rows (its
    definition rewritten under it, so its entries are for another column)."""
    c = sqlite_driver.dbapi.connect(str(path))
    c.execute("PRAGMA writable_schema=ON")
    c.execute(
        "UPDATE sqlite_schema SET sql = 'CREATE INDEX ix_workers_change_seq ON workers (capacity)' "
        "WHERE name = 'ix_workers_change_seq'"
    )
    c.commit()
    c.close()


def test_the_integrity_check_finds_an_index_short_of_its_rows_and_a_file_that_is_not_a_database(tmp_path):
    url = with_workers(tmp_path / "handoff.db")
    assert sqlite_driver.damage(url) == []
    index_short_of_its_rows(tmp_path / "handoff.db")
    found = sqlite_driver.damage(url, limit=5)
    assert len(found) == 5 and all("missing from index ix_workers_change_seq" in problem for problem in found)
    (tmp_path / "junk.db").write_bytes(b"\x00\xffnot SQLite" * 1000)
    assert sqlite_driver.damage(f"sqlite:///{tmp_path / 'junk.db'}") == ["file is not a database"]


def test_nothing_to_check_is_not_damage(tmp_path):
    assert sqlite_driver.damage(f"sqlite:///{tmp_path / 'not-yet.db'}") == []
    assert not (tmp_path / "not-yet.db").exists()  # and the check made no file
    assert sqlite_driver.damage("sqlite://") == []
    assert sqlite_driver.damage("postgresql+psycopg://handoff@localhost/handoff") == []
