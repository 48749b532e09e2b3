"""Switchable faults, so tests and demos can watch retries and idempotency do their job.

Set them when the sandbox starts (constructor `Faults(...)` or the environment variables below)
or while it runs (`POST /_faults` with any subset of the fields; `GET /_faults` shows them).

    field (env HANDOFF_SANDBOX_<FIELD>)  meaning
    latency              seconds added to every request
    error_share          share of requests answered 500/502/503, before any side effect
    timeout_share        share of requests that hang past the client's timeout
    timeout_after_share  of those, the share that hang AFTER the side effect was done and
                         recorded (the client sees a timeout, yet the work is done)
    stall_seconds        how long a hanging request hangs at most (it ends as soon as the
                         client hangs up)
    down                 systems answering 503 to everything: comma-separated, or "all"
    seed                 seed of the random draws, for reproducible runs

Every request to a system draws once: error, timeout or nothing. A timeout that hangs before
the side effect ends with 504 and no side effect; one that hangs after it ends with the normal
answer, sent to a client that has gone (its retry with the same Idempotency-Key then gets the
recorded answer back).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

SYSTEMS = ("crm", "provisioning", "activation", "billing", "calendar")
ENV_PREFIX = "HANDOFF_SANDBOX_"


class Fault(StrEnum):
    DOWN = "down"
    ERROR = "error"
    TIMEOUT_BEFORE = "timeout_before"
    TIMEOUT_AFTER = "timeout_after"


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency: float = Field(0.0, ge=0, le=60, description="Seconds added to every request.")
    error_share: float = Field(0.0, ge=0, le=1, description="Share of requests answered 5xx.")
    timeout_share: float = Field(0.0, ge=0, le=1, description="Share of requests that hang.")
    timeout_after_share: float = Field(0.5, ge=0, le=1, description="Share of hangs after the side effect.")
    stall_seconds: float = Field(30.0, ge=0, le=600, description="Longest hang of a hanging request.")
    down: frozenset[str] = Field(frozenset(), description='Systems answering 503, or {"all"}.')
    seed: int = Field(0, description="Seed of the random draws.")

    @field_validator("down", mode="before")
    @classmethod
    def _systems(cls, value: Any) -> frozenset[str]:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        names = frozenset(value or ())
        unknown = names - set(SYSTEMS) - {"all"}
        if unknown:
            raise ValueError(f"unknown systems {sorted(unknown)}; known: {', '.join(SYSTEMS)}, all")
        return names

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Faults:
        """Faults from HANDOFF_SANDBOX_* variables; keyword arguments win over the environment."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                values[name] = raw
        return cls.model_validate({**values, **overrides})

    def updated(self, **changes: Any) -> Faults:
        return Faults.model_validate({**self.model_dump(), **changes})

    def is_down(self, system: str) -> bool:
        return "all" in self.down or system in self.down

    def draw(self, system: str, rng: random.Random) -> Fault | None:
        """The fault (if any) this request to `system` meets."""
        if self.is_down(system):
            return Fault.DOWN
        roll = rng.random()
        if roll < self.error_share:
            return Fault.ERROR
        if roll < self.error_share + self.timeout_share:
            after = rng.random() < self.timeout_after_share
            return Fault.TIMEOUT_AFTER if after else Fault.TIMEOUT_BEFORE
        return None
