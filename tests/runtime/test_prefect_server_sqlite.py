"""The embedded Prefect server's SQLite write transactions (handoff.runtime.prefect_server_main).

A transaction that reads and then writes, while another writer commits in between: Prefect's
DEFERRED transaction fails at once with "database is locked" (the server answers 503 and the
automation that starts an order's pipeline retries 2 s later); begun IMMEDIATE, it holds the
write lock from the start, the other writer waits its turn, and both writes land."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration

from handoff.runtime.prefect_server_main import write_transactions_begin_immediate


async def read_then_write_while_another_commits(url: str) -> int:
    config = AioSqliteConfiguration(connection_url=url)
    engine = await config.engine()
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE flow_run (id INTEGER)"))

    async def another_writer() -> None:
        async with await config.session(engine) as session, config.begin_transaction(session):
            await session.execute(sa.text("INSERT INTO flow_run VALUES (2)"))

    try:
        async with await config.session(engine) as session, config.begin_transaction(session):
            await session.execute(sa.text("SELECT count(*) FROM flow_run"))  # reads first
            other = asyncio.create_task(another_writer())
            await asyncio.sleep(0.3)  # the other writer commits now, or waits for this one
            await session.execute(sa.text("INSERT INTO flow_run VALUES (1)"))
        await other
        async with engine.connect() as connection:
            return (await connection.execute(sa.text("SELECT count(*) FROM flow_run"))).scalar_one()
    finally:
        await engine.dispose()


def test_prefects_deferred_transaction_fails_when_another_write_comes_between(tmp_path):
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        asyncio.run(read_then_write_while_another_commits(f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"))


def test_begun_immediate_both_writes_land(tmp_path, monkeypatch):
    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    write_transactions_begin_immediate()

    assert asyncio.run(read_then_write_while_another_commits(f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}")) == 2
