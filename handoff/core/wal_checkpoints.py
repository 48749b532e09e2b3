"""SQLite's WAL checkpoints, moved off the path of the commits people wait for.

In WAL mode SQLite copies the log back into the database file (a checkpoint) when a commit
finds the log over `wal_autocheckpoint` pages, 1,000 by default: that one commit pays for
writing back and syncing everything since the last checkpoint. In the routing benchmark it was
about one commit in a hundred, and it set the p99 of every routing call
(docs/routing-benchmarks.md). SQLite's own documentation suggests the remedy used here: a thread
of its own runs *passive* checkpoints (they never wait for, or block, readers and writers)
twice a second, and commits checkpoint themselves only when the log is far larger — the safety
net for a process whose thread is not running (one forked after its engine was opened: the
child uses the parent's engine, whose thread stayed in the parent).

One thread per database file per process. It ends when the engine is gone or the file is.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from handoff.core.sqlite_driver import dbapi
from handoff.core.sqlite_driver import has_wal_reset_fix

CHECKPOINT_EVERY = 0.5  # seconds
SAFETY_NET_PAGES = 8000  # a commit checkpoints itself only past ~32 MB of log (4 KiB pages)

_RUNNING: set[tuple[int, str]] = set()
_LOCK = threading.Lock()


def checkpoints_on_a_thread() -> bool:
    """Only where SQLite is free of the WAL-reset bug: a checkpoint twice a second in every
    process is what makes its race likely (sqlite_driver.py)."""
    return has_wal_reset_fix()


def keep_checkpointing(engine: Engine, path: str) -> None:
    """Start this process's checkpointing thread for the SQLite file at `path` (once)."""
    if not checkpoints_on_a_thread():
        return
    path = str(Path(path).resolve())
    key = (os.getpid(), path)  # a forked child inherits this set, not the parent's threads
    with _LOCK:
        if key in _RUNNING:
            return
        _RUNNING.add(key)
    threading.Thread(
        target=_checkpoint_while_open, args=(weakref.ref(engine), key), name=f"wal-checkpoints {path}", daemon=True
    ).start()


def _checkpoint_while_open(engine: weakref.ref[Engine], key: tuple[int, str]) -> None:
    path = key[1]
    connection: Any = None
    try:
        while True:
            time.sleep(CHECKPOINT_EVERY)
            if engine() is None or not Path(path).exists():
                return  # never re-create a database someone removed
            if connection is None:
                connection = dbapi.connect(path, timeout=0, check_same_thread=True)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except dbapi.Error:
                pass  # busy or locked now: the next tick tries again (commits keep the safety net)
    finally:
        if connection is not None:
            connection.close()
        with _LOCK:
            _RUNNING.discard(key)
