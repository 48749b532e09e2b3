"""Alembic environment: runs migrations against the URL handoff.core.db passes in."""

from alembic import context
from sqlalchemy.pool import NullPool

from handoff.core.models import Base
from handoff.core.sqlite_driver import new_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
connectable = config.attributes.get("connection")


def run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if connectable is not None:
    run(connectable)
else:
    if url is None:
        raise RuntimeError("alembic needs sqlalchemy.url (handoff.core.db sets it) or a connection")
    # NullPool: the connection closes with the block, instead of idling in a pool nobody disposes
    with new_engine(url, poolclass=NullPool).connect() as connection:
        run(connection)
