"""`python -m handoff.runtime.prefect_server_main server start …`: the embedded Prefect server, with its
SQLite write transactions taking the write lock when they begin
(handoff.runtime.prefect_patches.sqlite_writes_begin_immediate says why).
"""

from __future__ import annotations

from handoff.runtime.prefect_patches import sqlite_writes_begin_immediate


def main() -> None:
    import logging

    from prefect.cli import app

    logging.basicConfig(level=logging.WARNING)
    sqlite_writes_begin_immediate()
    app()


if __name__ == "__main__":
    main()
