"""Routing's hot statements run on the driver's cursor, yet write what the ORM writes and fail
the way SQLAlchemy fails: callers catch one kind of error whichever way a statement ran, one
at a time or several together."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import exc
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from handoff.core.routing.driver_sql import PerDatabase
from handoff.core.routing.driver_sql import pipelines
from handoff.core.routing.driver_sql import run_together
from handoff.core.sqlite_driver import new_engine

metadata = MetaData()
stamps = Table("stamps", metadata, Column("id", Integer, primary_key=True), Column("at", DateTime))
ADD = PerDatabase(insert(stamps).values(id=bindparam("id"), at=bindparam("at")))


@pytest.fixture
def engine(tmp_path):
    made = new_engine(f"sqlite:///{tmp_path / 'driver.db'}")
    metadata.create_all(made)
    yield made
    made.dispose()


def test_values_are_written_as_the_orm_writes_them(engine):
    at = datetime(2026, 11, 30, 9, 0)  # no microseconds: the driver alone would write "09:00:00"
    with engine.begin() as c:
        ADD.on(c).run_many(c, [{"id": 1, "at": at}, {"id": 2, "at": at.replace(microsecond=5)}])
    with engine.begin() as c:
        assert c.exec_driver_sql("SELECT at FROM stamps ORDER BY id").scalars().all() == [
            "2026-11-30 09:00:00.000000",
            "2026-11-30 09:00:00.000005",
        ]
        assert c.scalars(select(stamps.c.at).where(stamps.c.at >= at)).all() == [at, at.replace(microsecond=5)]


def test_a_refused_write_raises_sqlalchemys_error_and_a_closed_connection_is_invalidated(engine):
    with engine.begin() as c:
        ADD.on(c).rowcount(c, {"id": 1, "at": None})
    with pytest.raises(exc.IntegrityError), engine.begin() as c:
        ADD.on(c).rowcount(c, {"id": 1, "at": None})
    with engine.connect() as c:
        c.connection.driver_connection.close()  # as if the server had gone
        with pytest.raises(exc.DBAPIError) as raised:
            ADD.on(c).rowcount(c, {"id": 2, "at": None})
        assert raised.value.connection_invalidated and c.invalidated


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request, tmp_path):
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres")
        url = cluster.new_database()
    else:
        url = f"sqlite:///{tmp_path / 'together.db'}"
    made = new_engine(url)
    metadata.create_all(made)
    yield made
    made.dispose()
    if request.param == "postgres":
        cluster.drop_database(url)


COUNT = PerDatabase(select(func.count()).select_from(stamps).where(stamps.c.id >= bindparam("from_id")))
MOVE = PerDatabase(update(stamps).where(stamps.c.id == bindparam("old")).values(id=bindparam("new")))


def test_statements_run_together_answer_each_in_order_as_one_by_one_would(any_engine):
    """On PostgreSQL they go in one pipeline (one round trip); the answers are the same: rows
    for a read, a row count for a write, each seeing the writes before it."""
    at = datetime(2026, 12, 1, 9, 0)
    with any_engine.begin() as c:
        answers = run_together(
            c,
            [
                (ADD.on(c), {"id": 1, "at": at}),
                (ADD.on(c), {"id": 2, "at": at}),
                (MOVE.on(c), {"old": 2, "new": 7}),
                (MOVE.on(c), {"old": 2, "new": 8}),  # moved already: changes nothing
                (COUNT.on(c), {"from_id": 2}),
            ],
        )
        assert answers == [1, 1, 1, 0, [(1,)]]
        assert pipelines(c) == (any_engine.dialect.name == "postgresql")
    with any_engine.begin() as c:
        assert c.scalars(select(stamps.c.id).order_by(stamps.c.id)).all() == [1, 7]


def test_a_statement_refused_among_others_fails_the_lot_as_sqlalchemy_fails(any_engine):
    at = datetime(2026, 12, 1, 9, 0)
    with pytest.raises(exc.IntegrityError), any_engine.begin() as c:
        run_together(
            c, [(ADD.on(c), {"id": 1, "at": at}), (ADD.on(c), {"id": 1, "at": at}), (COUNT.on(c), {"from_id": 0})]
        )
    with any_engine.begin() as c:  # rolled back with its transaction; the connection still serves
        assert run_together(c, [(COUNT.on(c), {"from_id": 0})]) == [[(0,)]]


def test_statements_sent_together_on_a_connection_the_server_dropped_fail_as_a_disconnect(any_engine):
    """A server gone mid-decision: the batch fails as SQLAlchemy's disconnect (callers retry
    on it), the connection is invalidated, and the pool's next one works."""
    at = datetime(2026, 12, 1, 9, 0)
    with any_engine.connect() as c:
        c.connection.driver_connection.close()  # as if the server had gone
        with pytest.raises(exc.DBAPIError) as raised:
            run_together(c, [(ADD.on(c), {"id": 1, "at": at}), (COUNT.on(c), {"from_id": 0})])
        assert raised.value.connection_invalidated and c.invalidated
    with any_engine.begin() as c:
        assert run_together(c, [(COUNT.on(c), {"from_id": 0})]) == [[(0,)]]
