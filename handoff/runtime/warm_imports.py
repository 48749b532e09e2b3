"""What a flow run would otherwise load on first use, loaded once by the warm fork server.

Why: a flow run is a fork of the fork server (handoff.runtime.warm_start), so whatever the server
has not imported or built, every run does again — and so does every resume after a human step,
since a resumed run is a new process. A py-spy profile of the flow runs on the worker stack
(`bench/bench_throughput.py --configs "postgres+2 workers"`) found half their CPU in imports
made on first use: the checklist modules (imported inside the steps that run them), pandera's
pandas backend (registered, and half of pandera imported with it, on the first validation),
psycopg (imported by SQLAlchemy on the first connection) and two modules Prefect and anyio load
lazily; and a sixth of it in TLS contexts Prefect's API clients build one per client
(prefect_patches.api_clients_share_tls_contexts: made here once, shared by every run). A later
profile (sqlite + runner, 1 December 2026) found SQLAlchemy's dialect modules (imported by the
first `create_engine`) and rich's highlighting patterns (compiled on the first log line).

The fork server's preload only imports modules, so this module does its work when imported.
Nothing here opens a connection or starts a thread: a fork must not inherit one.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

import checklists
from checklists.common import Checklist
from handoff.core import db
from handoff.runtime import prefect_patches

log = logging.getLogger(__name__)

# Every `checklists/*_checklist.py`, so a new checklist is preloaded without a change here.
CHECKLIST_MODULES = tuple(
    f"checklists.{module.name}"
    for module in pkgutil.iter_modules(checklists.__path__)
    if module.name.endswith("_checklist")
)

# Loaded on first use by the libraries themselves (each import is cheap once, costly per run).
LAZY_MODULES = (
    "psycopg",  # SQLAlchemy's postgresql+psycopg dialect, on the first connection
    "sqlalchemy.dialects.postgresql.psycopg",  # the dialects themselves, on the first create_engine
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlite3",  # the SQLite driver, on the first connection
    "rich._emoji_codes",  # rich's emoji table, on the first line Prefect's console handler prints
    "prefect.utilities.visualization",  # Prefect's Task.__call__, on the first task call
    "anyio._backends._asyncio",  # anyio's event-loop backend, on first use
)


def every_checklist() -> list[type[Checklist]]:
    """Every checklist model, its modules imported."""
    for name in CHECKLIST_MODULES:
        importlib.import_module(name)
    found, todo = [], list(Checklist.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


def warm_console_highlighting() -> None:
    """Compile the patterns Prefect's console handler highlights every log line with. rich
    compiles them on the first line a process logs (through `re`'s cache, which a fork
    inherits); a profile of the flow runs found that in 4 % of their CPU."""
    from prefect.logging.highlighters import PrefectConsoleHighlighter
    from rich.text import Text

    PrefectConsoleHighlighter()(Text("12:00:00.000 | INFO    | Flow run 'warm-start' - Finished in state Completed()"))


def load() -> None:
    """Import what flow runs load lazily, build every checklist's schema, and register pandera's
    pandas backend (done on the first validation of a DataFrame)."""
    for name in LAZY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional driver: the run imports it itself if it ever needs it
            log.info("warm start: %s is not installed", name)
    for model in every_checklist():
        model.to_schema()
    ready = pa.DataFrameSchema({"ready": pa.Column(int, pa.Check.ge(0))})
    ready.validate(pd.DataFrame({"ready": [1]}))
    try:  # and a failing one: the failure report loads more of pandera
        ready.validate(pd.DataFrame({"ready": [-1]}), lazy=True)
    except SchemaErrors:
        pass
    warm_console_highlighting()
    db.migration_head()  # each run then checks its database with one query (db._at_head)
    if prefect_patches.api_clients_share_tls_contexts():
        prefect_patches.verified_tls_context_for_the_api()


load()
