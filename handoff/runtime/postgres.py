"""A throwaway PostgreSQL cluster from Debian's `postgresql` package: `initdb` and `pg_ctl` in a
temp directory, on a free port, trusting local connections.

One implementation serves the tests (the `postgres` fixture: a new database per test) and the
local production stack (`handoff up --postgres`: one database for Prefect's server, one for
handoff). In production both are URLs to a real server; nothing here is used then.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


class PostgresNotInstalled(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb, or None."""
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
    return bindir if bindir is not None and (bindir / "initdb").exists() else None


class PostgresCluster:
    """initdb + pg_ctl in a temp directory, on a free port. As root it runs as the `postgres`
    user (initdb refuses root). Durability is traded for speed (fsync off): it is thrown away."""

    def __init__(self, bindir: Path | None = None, max_connections: int = 200) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PostgresNotInstalled("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = found
        self.max_connections = max_connections
        self.dir = Path(tempfile.mkdtemp(prefix="handoff-postgres-"))
        self.data = self.dir / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.running = False

    def _run(self, *args: str | Path) -> None:
        done = subprocess.run([*self.as_postgres, *map(str, args)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> PostgresCluster:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(
            self.bindir / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.dir / "server.log",
            "-w",
            "start",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c max_connections={self.max_connections}",
        )
        self.running = True
        return self

    def stop(self) -> None:
        try:
            if self.running:
                self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            self.running = False
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, database: str, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of a database: `psycopg` for handoff, `asyncpg` for Prefect's server."""
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._as_admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `new_database`, closing whatever still holds it (tests)."""
        self._as_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def _as_admin(self, statement: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that) as postgres."""
        import psycopg

        # psycopg's own context closes the connection (an engine's pool left one for the GC)
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as connection:
            connection.autocommit = True
            connection.execute(statement.encode())

    def new_database(self) -> str:
        """A new, empty database with a unique name (one per test)."""
        return self.create_database(f"handoff_{uuid.uuid4().hex[:12]}")
