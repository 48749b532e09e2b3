"""Routing's hot statements run on the driver's cursor, yet write what the ORM writes and fail
the way SQLAlchemy fails: callers catch one kind of error whichever way a statement ran."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import create_engine
from sqlalchemy import exc
from sqlalchemy import insert
from sqlalchemy import select

from handoff.core.routing.driver_sql import PerDatabase

metadata = MetaData()
stamps = Table("stamps", metadata, Column("id", Integer, primary_key=True), Column("at", DateTime))
ADD = PerDatabase(insert(stamps).values(id=bindparam("id"), at=bindparam("at")))


@pytest.fixture
def engine(tmp_path):
    made = create_engine(f"sqlite:///{tmp_path / 'driver.db'}")
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
