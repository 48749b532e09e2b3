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

import functools
import sys
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
        # Known here rather than asked of each cursor (psycopg builds its column descriptions
        # to answer: a quarter of a millisecond per routing decision).
        if compiled.isupdate or compiled.isinsert or compiled.isdelete:
            self.returns_rows = bool(compiled.effective_returning)
        else:  # a SELECT, or text: rows if it reads or returns them
            words = self.sql.upper().split()
            self.returns_rows = bool(words) and (words[0] in ("SELECT", "VALUES") or "RETURNING" in words)

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
        """The driver's cursor on the caller's connection, its errors raised as SQLAlchemy's
        (`driver_errors`)."""
        cursor = None
        with driver_errors(c, self.sql, params):
            try:
                cursor = c.connection.driver_connection.cursor()  # type: ignore[union-attr]
                yield cursor
            finally:
                if cursor is not None and not c.invalidated:
                    cursor.close()


@contextmanager
def driver_errors(c: Connection, sql: str, params: dict | list[dict]) -> Iterator[None]:
    """The driver's errors raised as SQLAlchemy raises them (`OperationalError`,
    `IntegrityError`, ...), a broken connection invalidated as SQLAlchemy would, so callers
    catch one kind of error whichever way a statement ran."""
    dialect = c.dialect
    driver_error = dialect.loaded_dbapi.Error
    try:
        yield
    except driver_error as e:
        broken = dialect.is_disconnect(e, c.connection.dbapi_connection, None)
        if broken:
            c.invalidate(e)
        raise DBAPIError.instance(sql, params, e, driver_error, connection_invalidated=broken, dialect=dialect) from e


def run_together(c: Connection, runs: Sequence[tuple[DriverStatement, dict]]) -> list[Any]:
    """Run statements in order on the caller's connection; each one's rows (a statement that
    returns rows) or row count (a write).

    On PostgreSQL (psycopg) they go in one pipeline: sent together, answered together, one
    round trip to the server instead of one each (and a transaction's BEGIN rides with the
    first). Routing pays a round trip per statement otherwise, and on a server sharing the
    router's cores each is a chance to wait for the scheduler (docs/routing-benchmarks.md).
    A statement that fails fails the ones after it, as it would have in the transaction."""
    driver = c.connection.driver_connection
    if not pipelines(c):
        return [
            (statement.rows if statement.returns_rows else statement.rowcount)(c, params) for statement, params in runs
        ]
    cursors: list[Any] = []
    with driver_errors(c, "; ".join(statement.sql for statement, _ in runs), [params for _, params in runs]):
        try:
            with driver.pipeline():  # type: ignore[union-attr]
                for statement, params in runs:
                    cursors.append(driver.cursor())  # type: ignore[union-attr]
                    cursors[-1].execute(statement.sql, statement.values(params))
            return [
                cursor.fetchall() if statement.returns_rows else cursor.rowcount
                for cursor, (statement, _) in zip(cursors, runs)
            ]
        finally:
            for cursor in cursors if not c.invalidated else ():
                cursor.close()


def pipelines(c: Connection) -> bool:
    """Does `run_together` send statements on this connection in one round trip?"""
    return _pipelines(type(c.connection.driver_connection))  # type: ignore[arg-type]


@functools.cache
def _pipelines(driver_type: type) -> bool:
    """Can this driver's connections pipeline statements (psycopg 3 over libpq 14 or later)?"""
    pipeline = getattr(sys.modules.get("psycopg"), "Pipeline", None)
    return pipeline is not None and hasattr(driver_type, "pipeline") and bool(pipeline.is_supported())


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
