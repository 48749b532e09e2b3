"""`python -m handoff.runtime.prefect_server_main server start …`: the embedded Prefect server, with its
SQLite write transactions taking the write lock when they begin
(handoff.runtime.prefect_patches.sqlite_writes_begin_immediate says why), and its database
opened with the SQLite handoff's own databases use (`prefects_database_uses_handoffs_sqlite`).
"""

from __future__ import annotations

import sys

from handoff.core import sqlite_driver


def prefects_database_uses_handoffs_sqlite() -> None:
    """Prefect's server opens its database through `import sqlite3` (aiosqlite, SQLAlchemy):
    give it handoff's SQLite, free of the WAL-reset bug (handoff.core.sqlite_driver). Its
    database holds every run, paused step and event, and takes writes from many connections
    at once, as handoff's does. Done before Prefect is imported, or not at all: a process must
    not hold two SQLite libraries on one file."""
    package = sqlite_driver.dbapi.__name__.rpartition(".")[0]
    if "sqlite3" in sys.modules or package == "sqlite3":  # too late, or no other library installed
        return
    sys.modules["sqlite3"] = sys.modules[package]
    sys.modules["sqlite3.dbapi2"] = sqlite_driver.dbapi


def main() -> None:
    prefects_database_uses_handoffs_sqlite()
    import logging

    from prefect.cli import app

    from handoff.runtime.prefect_patches import sqlite_writes_begin_immediate

    logging.basicConfig(level=logging.WARNING)
    sqlite_writes_begin_immediate()
    app()


if __name__ == "__main__":
    main()
