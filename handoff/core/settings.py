"""Settings for handoff, read once from the environment (prefix HANDOFF_) or a .env file.

Defaults give the embedded stack: a SQLite file under the user's data directory and the
local Prefect server. Production points `HANDOFF_DATABASE_URL` at PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

HOME = Path.home() / ".handoff"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANDOFF_", env_file=".env", extra="ignore")

    home: Path = Field(default=HOME, description="Where the embedded stack keeps its files.")
    database_url: str = Field(default="", description="Any SQLAlchemy URL; empty = SQLite in `home`.")
    northwind_path: Path = Field(default=SHARED_DATA / "northwind.sqlite")
    bpic_path: Path = Field(default=SHARED_DATA / "bpic2012.xes.gz")
    sandbox_url: str = Field(default="http://127.0.0.1:8765", description="Base URL of the other systems.")
    prefect_ui_url: str = Field(default="http://127.0.0.1:4200", description="Links in worklists point here.")

    # How many flow runs `handoff up` runs at once (each is a process); more wait, scheduled.
    runner_process_limit: int = Field(default=4, ge=1)
    # How often `handoff up`'s runner looks for runs to start (Prefect's own setting is whole seconds).
    runner_poll_seconds: float = Field(default=0.5, gt=0)
    # Flow runs fork from a process that has already imported the flows (~50 ms to start instead
    # of ~1.7 s); false = a fresh interpreter per run, which re-reads edited flow files.
    warm_start: bool = Field(default=True)

    # The HTTP intake endpoint (`handoff up`)
    intake_host: str = Field(default="127.0.0.1")
    intake_port: int = Field(default=8080)
    intake_token: str = Field(default="", description="Bearer token for POST /orders; empty = made once, kept in home.")
    # Intake's document limit (a file, an HTTP body: 413 over it) and how long a body may take to arrive
    intake_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Largest document intake reads.")
    intake_read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time a request body may take to arrive."
    )

    # The reps' worklist (`handoff up`) and who may sign in (handoff.core.identity)
    worklist_host: str = Field(default="127.0.0.1")
    worklist_port: int = Field(default=8081)
    session_hours: float = Field(default=12.0, gt=0, description="A sign-in lasts this long (web and CLI).")
    secure_cookies: bool = Field(default=False, description="Send the session cookie over HTTPS only (set behind TLS).")
    trusted_proxies: str = Field(
        default="",
        description="Addresses of the reverse proxies (comma-separated) whose X-Forwarded-For names the client; "
        "empty = none: the sign-in limits count the address that connected.",
    )
    server_secret: str = Field(
        default="", description="Signs sessions and completions; empty = made once, kept in home (0600)."
    )
    # The operators' console: Prefect's own basic auth on its server, UI and every client.
    prefect_start_seconds: float = Field(
        default=240.0, gt=0, description="How long `handoff up` waits for the Prefect server to answer."
    )
    check_database: bool = Field(
        default=True,
        description="`handoff up` first checks handoff's SQLite database with SQLite's full integrity check "
        "and refuses a damaged one (false: start anyway).",
    )
    lock_ui: bool = Field(
        default=False, description="Protect the Prefect server and UI with basic auth (`handoff up --lock-ui`)."
    )
    prefect_auth_string: str = Field(
        default="", description="user:password for the locked Prefect UI; empty = made once, kept in home."
    )

    # Order entry: when does an order need a person's approval?
    large_order_value: float = Field(default=5000.0, description="Order total from which a rep must approve.")
    approval_due_hours: float = Field(default=8.0, description="Business hours a rep has to approve an order.")

    # Quotation, billing
    discount_approval_threshold: float = Field(
        default=0.10, description="Overall discount from which a manager approves."
    )
    quote_valid_days: int = Field(default=30, description="Days a quote stays valid.")
    quote_follow_up_days: int = Field(
        default=5, ge=0, description="Days before a quote's validity ends that a rep calls the customer."
    )
    quote_turnaround_hours: float = Field(
        default=16.0, gt=0, description="Business hours from a request for quotation to its quote sent (the SLA)."
    )
    invoice_approval_value: float = Field(default=10000.0, description="Invoice total from which a person approves.")
    currency: str = Field(default="USD")

    # Human steps
    human_step_timeout_seconds: int = Field(default=7 * 24 * 3600, description="How long a step may wait.")
    pause_poll_seconds: int = Field(default=2, description="How often a waiting run looks for its answer.")
    default_effort_seconds: float = Field(default=300.0, description="Effort of a step before history exists.")

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'handoff.db'}"


settings = Settings()
