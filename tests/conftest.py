"""Shared fixtures: one Prefect test server for the whole session, and a fresh handoff
database for each test (a new SQLite file, brought to head by the same Alembic migrations
users get)."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest

from handoff.settings import settings


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (~10-15 s to start); never nest a second."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A fresh, migrated handoff database for this test."""
    monkeypatch.setattr(settings, "database_url", f"sqlite:///{tmp_path / 'handoff.db'}")
    monkeypatch.setattr(settings, "home", tmp_path)
    from handoff.db import engine

    engine()
    yield settings.database_url


@pytest.fixture
def catalogue(db):
    """Northwind's customers and products, the catalogue real orders are checked against."""
    from handoff.northwind import load_catalogue

    return load_catalogue()


@pytest.fixture
def reps(db):
    from handoff.standins import ensure_standin_reps

    ensure_standin_reps()
