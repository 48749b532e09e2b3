"""The schema is Alembic's: migrations build exactly what the models describe."""

import pytest
from alembic import command

from handoff.db import alembic_config

BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


@BOTH_DATABASES
def test_migrations_match_the_models(db):
    # Fails with "New upgrade operations detected" if a model changed without a migration.
    command.check(alembic_config(db))


@BOTH_DATABASES
def test_migrations_go_down_and_up_again(db):
    cfg = alembic_config(db)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    command.check(cfg)
