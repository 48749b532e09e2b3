"""The schema is Alembic's: migrations build exactly what the models describe."""

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from handoff.core.db import alembic_config
from handoff.core.models import Base
from handoff.core.sqlite_driver import new_engine

BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


def revision_and_tables(url: str) -> tuple[str | None, set[str]]:
    """The database's Alembic revision and its tables (Alembic's own left out)."""
    engine = new_engine(url)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    return revision, tables


@BOTH_DATABASES
def test_migrations_match_the_models(db):
    head = ScriptDirectory.from_config(alembic_config(db)).get_current_head()
    assert revision_and_tables(db) == (head, set(Base.metadata.tables))
    # and column by column: raises "New upgrade operations detected" if a model changed without a migration
    command.check(alembic_config(db))


@BOTH_DATABASES
def test_migrations_go_down_and_up_again(db):
    cfg = alembic_config(db)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    command.downgrade(cfg, "base")
    assert revision_and_tables(db) == (None, set())
    command.upgrade(cfg, "head")
    assert revision_and_tables(db) == (head, set(Base.metadata.tables))
    command.check(cfg)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path):
    """A database nobody has migrated yet."""
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres")
        url = cluster.new_database()
        yield url
        cluster.drop_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'fresh' / 'handoff.db'}"


def test_processes_and_threads_starting_at_once_on_a_new_database_all_find_it_migrated(empty_database):
    """Workers, `handoff up` and a CLI command may all be the first to open a database: each
    must wait for whichever migrates it, never fail creating a table another has just made."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from handoff.core import db as database

    opener = f"from handoff.core.db import engine_for; engine_for({empty_database!r})"
    processes = [subprocess.Popen([sys.executable, "-c", opener], stderr=subprocess.PIPE) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:  # and threads of this process, meanwhile
        engines = list(pool.map(database.engine_for, [empty_database] * 4))
    ended = [(p, p.communicate(timeout=120)[1]) for p in processes]
    failures = [err.decode()[-600:] for p, err in ended if p.returncode != 0]
    assert failures == []
    assert len({id(e) for e in engines}) == 1  # one engine per database in a process
    head = ScriptDirectory.from_config(alembic_config(empty_database)).get_current_head()
    assert revision_and_tables(empty_database) == (head, set(Base.metadata.tables))
    database.engine_for(empty_database).dispose()


def test_a_database_at_the_newest_migration_opens_without_alembic_and_any_other_goes_through_it(
    empty_database, monkeypatch
):
    """Every flow run and resume is a new process that opens the database: one at head is
    checked with one query (Alembic's own check loaded every migration script each time); a
    database behind, ahead of the scripts or unreadable still goes through `command.upgrade`,
    which migrates it or says what is wrong."""
    from sqlalchemy import text

    from handoff.core import db as database

    database._open(empty_database).dispose()  # a new database: migrated
    scripts = ScriptDirectory.from_config(alembic_config(empty_database))
    head = scripts.get_current_head()
    assert database.migration_head() == head
    upgrades: list[str] = []
    monkeypatch.setattr(database.command, "upgrade", lambda cfg, to: upgrades.append(to))
    database._open(empty_database).dispose()
    assert upgrades == []
    for revision in (scripts.get_revision(head).down_revision, "f00dfeed0000"):  # one behind; unknown
        engine = new_engine(empty_database)
        with engine.begin() as c:
            c.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        engine.dispose()
        database._open(empty_database).dispose()
    assert upgrades == ["head", "head"]
