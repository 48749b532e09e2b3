"""The SQLite library every connection to a handoff database goes through.

Why not Python's own `sqlite3`: it links the SQLite the interpreter was built against (3.40.1 on
Debian 12), and SQLite 3.7.0 to 3.51.2 has the WAL-reset bug (sqlite.org/wal.html#walresetbug):
a checkpoint that races a commit restarting the write-ahead log can leave that commit's pages
out of the database file for good. A soak run (bench/soak.py) met it: order 10268 was stored,
answered 201 and announced, then its row and its audit event were gone while its two order
lines stayed and `PRAGMA integrity_check` found an index short of entries. handoff's many
processes each checkpoint twice a second (wal_checkpoints.py), which makes the race far likelier
than in SQLite's usual use. pysqlite3's wheels bundle a current SQLite (3.53.4 in 0.6.1).

One library per process: two copies of SQLite in one process release each other's POSIX locks
on a file (sqlite.org/howtocorrupt.html, 2.2.1), so the checkpoint thread uses this one too.
Other files (the Northwind sample, Prefect's own database) are not handoff's and may use any.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy
from sqlalchemy import URL
from sqlalchemy import Engine

try:  # the wheel bundles SQLite; where none is built for the platform, Python's own is used
    dbapi: ModuleType = importlib.import_module("pysqlite3.dbapi2")
except ImportError:  # pragma: no cover - every platform CI runs on has a wheel
    dbapi = importlib.import_module("sqlite3.dbapi2")

# The first releases without the WAL-reset bug, per line: 3.51.3, and the 3.44.6 and 3.50.7 backports.
FIXED_IN = ((3, 44, 6), (3, 50, 7), (3, 51, 3))


def new_engine(url: str | URL, **options: Any) -> Engine:
    """`sqlalchemy.create_engine`, with this module's SQLite for a SQLite URL. Every engine on a
    handoff database is made here (the process's own, Alembic's, the tests'): one made with
    Python's `sqlite3` beside them deleted the -wal and -shm files under them when it closed."""
    if sqlalchemy.make_url(url).get_backend_name() == "sqlite":
        options.setdefault("module", dbapi)
    return sqlalchemy.create_engine(url, **options)


def has_wal_reset_fix(version: tuple[int, int, int] | None = None) -> bool:
    """Is this SQLite (the driver's, by default) free of the WAL-reset bug?"""
    version = version or dbapi.sqlite_version_info
    if version >= FIXED_IN[-1]:
        return True
    return any(version[:2] == fixed[:2] and version >= fixed for fixed in FIXED_IN[:-1])


def damage(url: str | URL, limit: int = 20) -> list[str]:
    """What SQLite's full check finds wrong with the database file at `url`, at most `limit`
    problems: [] when it is intact, or when there is nothing to check (not SQLite, no file yet).

    The full check (`PRAGMA integrity_check`), not `quick_check`: the damage the WAL-reset bug
    left (an index short of its table's rows) shows only when indexes are compared with their
    tables. About 0.7 s for a 38 MB database of 100,000 work items on this machine. A file
    that is not a database at all is damage too, said in SQLite's words."""
    parsed = sqlalchemy.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return []
    if not Path(parsed.database).exists():
        return []
    try:
        connection = dbapi.connect(parsed.database, timeout=30)
    except dbapi.Error as e:
        return [str(e)]
    try:
        found = [row[0] for row in connection.execute(f"PRAGMA integrity_check({int(limit)})")]
    except dbapi.Error as e:
        return [str(e)]
    finally:
        connection.close()
    return [] if found == ["ok"] else found
