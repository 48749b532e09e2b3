"""Fixtures for the routing tests: a fresh SQLite database per test, a fixed "now" inside
business hours, and small factories for workers and work items."""

from __future__ import annotations

import itertools
from datetime import datetime
from datetime import timedelta

import pytest

# Wednesday 25 November 2026, 10:00 UTC: a business day, inside 09:00-17:00.
NOW = datetime(2026, 11, 25, 10, 0)
_keys = itertools.count(1)


@pytest.fixture
def routing_db(db, tmp_path, monkeypatch):
    """The test's fresh database (`db`: SQLite, or PostgreSQL where parametrized), also in the
    environment for router processes, and the default SLA configuration."""
    monkeypatch.setenv("HANDOFF_HOME", str(tmp_path))
    monkeypatch.setenv("HANDOFF_DATABASE_URL", db)
    monkeypatch.delenv("HANDOFF_SLA_CONFIG", raising=False)
    from handoff.core import sla
    from handoff.core.db import engine

    sla.reload_config()
    yield db
    engine().dispose()
    sla.reload_config()


@pytest.fixture
def s(routing_db):
    """A session on the test database, committed at the end of the test."""
    from handoff.core.db import session

    with session() as s:
        yield s


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_worker(s):
    """make_worker(name, {skill: level}, capacity=3, role="rep", **Worker fields) -> Worker"""
    from handoff.core.models import Worker
    from handoff.core.models import WorkerSkill

    def make(name: str, skills: dict[str, int], capacity: int = 3, role: str = "rep", **fields):
        w = Worker(
            name=name,
            role=role,
            capacity=capacity,
            skills=[WorkerSkill(skill=k, level=v) for k, v in skills.items()],
            **fields,
        )
        s.add(w)
        s.flush()
        return w

    return make


@pytest.fixture
def make_item(s):
    """make_item({skill: level}, created=NOW, due_in=8h, effort=900, priority=1, value=0) -> WorkItem"""
    from handoff.core.models import WorkItem

    def make(
        skills: dict[str, int] | None = None,
        *,
        work_type: str = "order-approval",
        created: datetime = NOW,
        due_in: timedelta = timedelta(hours=8),
        effort: float = 900.0,
        priority: float = 1.0,
        value: float = 0.0,
        title: str | None = None,
        **fields,
    ):
        key = next(_keys)
        item = WorkItem(
            work_type=work_type,
            step_key=f"test-step-{key}",
            title=title or f"{work_type} #{key}",
            required_skills=skills if skills is not None else {work_type: 1},
            created_at=created,
            due_at=created + due_in,
            effort_seconds=effort,
            priority=priority,
            value=value,
            **fields,
        )
        s.add(item)
        s.flush()
        return item

    return make
