"""`python -m handoff.runtime.prefect_server_main server start …`: the embedded Prefect server, with its
SQLite write transactions taking the write lock when they begin.

Why: on SQLite the Prefect server opens its write transactions DEFERRED. One that has read
(creating a flow run reads its deployment first) and then writes fails at once with "database
is locked" if another write committed in between (SQLite cannot wait for a newer snapshot), and
the server answers 503. The caller, here the automation that turns an `order.received` event into
the order's pipeline run, retries after 2 s (Prefect's client backs off 2**n seconds). Measured on
`handoff up`: 3 of 8 orders waited those 2 s, most of the time between event and first step.
`BEGIN IMMEDIATE` takes the lock first, so a writer waits its turn (SQLite's busy timeout)
instead of failing: the fix Prefect's own comment on its SQLite set-up recommends. Readers are not
affected (WAL), and SQLite has one writer at a time either way. PostgreSQL needs none of this.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator


def write_transactions_begin_immediate() -> None:
    from prefect.server.database import configurations

    sqlite = configurations.AioSqliteConfiguration
    if getattr(sqlite.begin_transaction, "_handoff_immediate", False):
        return
    deferred = sqlite.begin_transaction

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncGenerator[Any, None]:
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction._handoff_immediate = True  # type: ignore[attr-defined]
    sqlite.begin_transaction = begin_transaction  # type: ignore[method-assign]


def main() -> None:
    from prefect.cli import app

    write_transactions_begin_immediate()
    app()


if __name__ == "__main__":
    main()
