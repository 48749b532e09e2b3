"""Routing's hot statements, compiled once per database and run on the driver's own cursor.

Every routing decision runs a handful of tiny indexed statements (the refresh's reads, the
claim's conditional UPDATEs). SQLAlchemy's work per execution (compiled-cache lookup, parameter
processing, result wrapping) cost about twice what the database itself did
(docs/routing-benchmarks.md), so these statements skip it: compiled once, their values turned
into what the driver takes by the columns' own bind processors (a timestamp is written exactly
as the ORM writes it, an enum as its stored string), executed on the connection the caller's
transaction already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any
from typing import cast

from sqlalchemy import Connection
from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class DriverStatement:
    """One statement, compiled for one database dialect, run on the driver's cursor."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.order = compiled.positiontup  # parameter names in placeholder order (qmark), or None
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for bind in compiled.binds.values():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[compiled.bind_names[bind]] = process
        # Values written into the statement itself (a state to match, a NULL to set).
        self.fixed = {compiled.bind_names[b]: b.effective_value for b in compiled.binds.values() if not b.required}

    def values(self, params: dict) -> Sequence[Any] | dict:
        given = self.fixed | params
        for name, process in self.processors.items():
            if name in given:
                given[name] = process(given[name])
        return [given[name] for name in self.order] if self.order is not None else given

    def rows(self, c: Connection, params: dict) -> list[tuple]:
        with self._cursor(c, params) as cursor:
            cursor.execute(self.sql, self.values(params))
            return cursor.fetchall()

    def scalar(self, c: Connection, params: dict | None = None) -> Any:
        """The first column of the first row, or None."""
        found = self.rows(c, params or {})
        return found[0][0] if found else None

    def rowcount(self, c: Connection, params: dict) -> int:
        """Run a write; how many rows it changed."""
        with self._cursor(c, params) as cursor:
            cursor.execute(self.sql, self.values(params))
            return cursor.rowcount

    def run_many(self, c: Connection, params: list[dict]) -> None:
        if not params:
            return
        with self._cursor(c, params) as cursor:
            if len(params) == 1:  # psycopg's executemany costs a pipeline sync more than one execute
                cursor.execute(self.sql, self.values(params[0]))
            else:
                cursor.executemany(self.sql, [self.values(p) for p in params])

    @contextmanager
    def _cursor(self, c: Connection, params: dict | list[dict]) -> Iterator[Any]:
        """The driver's cursor on the caller's connection; its errors raised as SQLAlchemy
        raises them (`OperationalError`, `IntegrityError`, ...), a broken connection invalidated
        as SQLAlchemy would, so callers catch one kind of error whichever way a statement ran."""
        dialect = c.dialect
        driver_error = dialect.loaded_dbapi.Error
        cursor = None
        try:
            cursor = c.connection.driver_connection.cursor()  # type: ignore[union-attr]
            yield cursor
        except driver_error as e:
            broken = dialect.is_disconnect(e, c.connection.dbapi_connection, cursor)
            if broken:
                c.invalidate(e)
            raise DBAPIError.instance(
                self.sql, params, e, driver_error, connection_invalidated=broken, dialect=dialect
            ) from e
        finally:
            if cursor is not None and not c.invalidated:
                cursor.close()


class PerDatabase:
    """A statement's `DriverStatement` for each dialect it meets (a process may route on SQLite
    in one test and PostgreSQL in the next)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self.compiled: dict[str, DriverStatement] = {}

    def on(self, c: Connection) -> DriverStatement:
        name = c.dialect.name
        found = self.compiled.get(name)
        if found is None:
            found = self.compiled[name] = DriverStatement(self.statement, c.dialect)
        return found
