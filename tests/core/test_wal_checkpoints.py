"""SQLite's checkpoints run on a thread of their own, not inside the commits people wait for;
the thread never brings back a database that was removed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from handoff.core import wal_checkpoints
from handoff.core.db import engine_for


def wait_for(condition, seconds: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def checkpointers(path: Path) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"wal-checkpoints {path.resolve()}"]


def test_committed_pages_reach_the_database_file_without_a_commit_checkpointing(tmp_path):
    path = tmp_path / "checkpointed.db"
    engine = engine_for(f"sqlite:///{path}")
    assert len(checkpointers(path)) == 1
    with engine.begin() as c:
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == wal_checkpoints.SAFETY_NET_PAGES
    time.sleep(2 * wal_checkpoints.CHECKPOINT_EVERY)  # the migrations' pages are written back
    before = path.stat().st_size
    with engine.begin() as c:  # ~2 MB: 500 pages, far below the commits' own threshold
        c.execute(text("CREATE TABLE filler (x BLOB)"))
        c.execute(text("INSERT INTO filler VALUES (randomblob(4000))"), [{}] * 500)
    assert path.with_name(path.name + "-wal").stat().st_size > 2_000_000  # the commit left them in the log
    assert wait_for(lambda: path.stat().st_size > before + 2_000_000)  # the thread wrote them back
    engine.dispose()


def test_the_thread_ends_with_its_database_and_never_recreates_it(tmp_path):
    path = tmp_path / "removed.db"
    engine = engine_for(f"sqlite:///{path}")
    assert checkpointers(path)
    engine.dispose()
    for leftover in tmp_path.glob("removed.db*"):
        leftover.unlink()
    assert wait_for(lambda: not checkpointers(path))
    assert not path.exists()


def test_on_a_sqlite_with_the_wal_reset_bug_checkpoints_stay_sqlites_own(tmp_path, monkeypatch):
    """Twice-a-second checkpoints in every process make the bug's race likely: on such a SQLite
    (a platform without pysqlite3's wheel) there is no thread and commits checkpoint at SQLite's
    default, 1,000 pages."""
    monkeypatch.setattr(wal_checkpoints, "has_wal_reset_fix", lambda: False)
    path = tmp_path / "old-sqlite.db"
    engine = engine_for(f"sqlite:///{path}")
    with engine.begin() as c:
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert not checkpointers(path)
    engine.dispose()
