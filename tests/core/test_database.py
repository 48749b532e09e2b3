"""The schema is Alembic's: migrations build exactly what the models describe."""

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy import inspect

from handoff.core.db import alembic_config
from handoff.core.models import Base

BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


def revision_and_tables(url: str) -> tuple[str | None, set[str]]:
    """The database's Alembic revision and its tables (Alembic's own left out)."""
    engine = create_engine(url)
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
