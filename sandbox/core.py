"""The sandbox's state and the rules every stand-in system follows.

State: resources by system and kind (`reservations`, `invoices`, ...), the ledger of side
effects, and the Idempotency-Key index — kept in memory. Pass `state_path` (or set
`HANDOFF_SANDBOX_STATE`) to also append every ledger entry to a JSON-lines file; on start the
sandbox replays that file, so a restart keeps its resources, ledger and idempotency keys.

Rules for a side-effecting request (`Sandbox.side_effect`):
1. faults first (down → 503, error → 5xx, hang-before → 504), none of which does the work;
2. no `Idempotency-Key` header → 400;
3. a key seen before: same method, path and body → the recorded answer again with status 200
   and `Idempotent-Replay: true`; anything else under that key → 409;
4. otherwise do the work; a success is recorded in the ledger (and under the key) before the
   answer is sent; rejections (4xx) are not recorded, so the same key may be used again once
   the data is fixed;
5. hang-after fault: hang now, after the work was recorded.

Ledger entry (`GET /ledger`, `Sandbox.ledger()`):
    {"seq": 1, "at": "2026-01-05T09:30:00.123456+00:00", "system": "provisioning",
     "operation": "reserve", "method": "POST", "path": "/provisioning/reservations",
     "idempotency_key": "reserve:10248:1", "request": {...}, "status_code": 201,
     "resource": "reservations/RSV-000001", "response": {...}}
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from collections import deque
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import ConfigDict

from sandbox.faults import Fault
from sandbox.faults import Faults
from sandbox.reference import MANUAL_CATEGORIES
from sandbox.reference import Customer
from sandbox.reference import Product
from sandbox.reference import Reference
from sandbox.reference import load_reference

STATE_PATH_ENV = "HANDOFF_SANDBOX_STATE"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replay"
REQUEST_LOG_SIZE = 10_000
STALL_POLL_SECONDS = 0.02


def utcnow() -> datetime:
    return datetime.now(UTC)


class ApiError(Exception):
    """An answer other than success: status code, a machine-readable error, a sentence.

    Body: {"error": "<code>", "reason": "<sentence>", **extra}. Status 422 means a business
    rejection; 400 a malformed request; 404 an unknown id; 409 a conflict with what exists.
    """

    def __init__(self, status_code: int, error: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.error = error
        self.reason = reason
        self.extra = extra

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"error": self.error, "reason": self.reason, **self.extra}
        return JSONResponse(body, status_code=self.status_code, headers=headers)


def amounts_agree(stated: float, computed: float, rounded_terms: int = 1) -> bool:
    """Equal to the cent, allowing each of `rounded_terms` rounded amounts to be half a cent off
    (a total of rounded line amounts and a rounded total of exact amounts both pass)."""
    return abs(stated - computed) <= 0.005 * (rounded_terms + 1) + 1e-9


def not_found(kind: str, id_: object) -> ApiError:
    return ApiError(404, "not_found", f"unknown {kind} {id_}")


def rejected(error: str, reason: str, **extra: Any) -> ApiError:
    return ApiError(422, error, reason, **extra)


def conflict(error: str, reason: str, **extra: Any) -> ApiError:
    return ApiError(409, error, reason, **extra)


def conflicts_with(error: str, reason: str, existing: dict[str, Any]) -> ApiError:
    """409: the request conflicts with `existing` (already made, or in the way); its id in the answer."""
    return conflict(error, reason, existing_id=existing["id"])


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error; numeric ids are taken as text."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def fault_dependency(sandbox: Sandbox, system: str) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that makes every request to `system` meet the configured faults."""

    async def meet_faults(request: Request) -> None:
        await sandbox.meet_faults(request, system)

    return meet_faults


def system_router(sandbox: Sandbox, system: str) -> APIRouter:
    """The routes of one stand-in system: under /<system>, every request meeting its faults."""
    return APIRouter(prefix=f"/{system}", tags=[system], dependencies=[Depends(fault_dependency(sandbox, system))])


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a side effect produced: the resource written (kind + data with an "id")."""

    kind: str
    data: dict[str, Any]
    status_code: int = 201


class Sandbox:
    """State and request handling shared by the five stand-in systems."""

    def __init__(
        self,
        *,
        faults: Faults | None = None,
        northwind_path: str | Path | None = None,
        state_path: str | Path | None = None,
        manual_categories: frozenset[str] = MANUAL_CATEGORIES,
        verify_failure_share: float = 0.1,
    ) -> None:
        self.reference: Reference = load_reference(northwind_path, manual_categories)
        self.verify_failure_share = verify_failure_share
        self.lock = threading.RLock()
        self._faults = faults if faults is not None else Faults.from_env()
        self._rng = random.Random(self._faults.seed)
        self._resources: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._ledger: list[dict[str, Any]] = []
        self._by_key: dict[tuple[str, str], dict[str, Any]] = {}
        self._requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        state = state_path or os.environ.get(STATE_PATH_ENV)
        self.state_path = Path(state) if state else None
        if self.state_path and self.state_path.exists():
            self._replay(self.state_path)

    # ---- reading state (tests, admin endpoints) -------------------------------------------

    def ledger(self, system: str | None = None, operation: str | None = None) -> list[dict[str, Any]]:
        """Side effects so far, oldest first (copies), optionally for one system / operation."""
        with self.lock:
            return [
                json.loads(json.dumps(entry))
                for entry in self._ledger
                if (system is None or entry["system"] == system)
                and (operation is None or entry["operation"] == operation)
            ]

    def requests(self, system: str | None = None) -> list[dict[str, Any]]:
        """Requests in arrival order (last REQUEST_LOG_SIZE): method, path, key, status, fault.

        `status_code` stays None until the answer starts (a hanging request shows None)."""
        with self.lock:
            return [dict(r) for r in self._requests if system is None or r["system"] == system]

    def resource(self, system: str, kind: str, id_: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._resources.get(system, {}).get(kind, {}).get(id_)
            return dict(found) if found is not None else None

    def found(self, system: str, kind: str, id_: str) -> dict[str, Any]:
        """A resource the request names (a copy); 404 "unknown <kind in the singular> <id>"."""
        item = self.resource(system, kind, id_)
        if item is None:
            raise not_found(kind.rstrip("s").replace("-", " "), id_)
        return item

    def customer(self, customer_id: str) -> Customer:
        """A customer of the reference data the request names; 404 "unknown customer <id>"."""
        found = self.reference.customers.get(customer_id)
        if found is None:
            raise not_found("customer", customer_id)
        return found

    def product(self, product_id: int) -> Product:
        """A product of the reference data the request names; 404 "unknown product <id>"."""
        found = self.reference.products.get(product_id)
        if found is None:
            raise not_found("product", product_id)
        return found

    def first(self, system: str, kind: str, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The first stored resource of `kind` that `matches`, or None. Hold `lock`."""
        return next((r for r in self.resources(system, kind).values() if matches(r)), None)

    def refuse_duplicate(self, system: str, kind: str, error: str, reason: str, **same: Any) -> None:
        """409 if a resource of `kind` with these `same` field values exists already (one account
        per customer, one invoice per order, ...): the answer names it, `reason` is formatted with
        its fields ("order {order_id} is already invoiced as {id}"). Hold `lock`."""
        existing = self.first(system, kind, lambda r: all(r[field] == value for field, value in same.items()))
        if existing is not None:
            raise conflicts_with(error, reason.format(**existing), existing)

    def created(self, system: str, kind: str, prefix: str, body: BaseModel | None, **fields: Any) -> Outcome:
        """A new resource of `kind` (201): the next id, the request's fields, then `fields`."""
        request = body.model_dump(mode="json") if body is not None else {}
        return Outcome(kind, {"id": self.next_id(system, kind, prefix), **request, **fields})

    def resources(self, system: str, kind: str) -> dict[str, dict[str, Any]]:
        """The live store of one kind of resource. Hold `lock` while using it."""
        return self._resources.setdefault(system, {}).setdefault(kind, {})

    def next_id(self, system: str, kind: str, prefix: str) -> str:
        return f"{prefix}-{len(self.resources(system, kind)) + 1:06d}"

    def reset(self, faults: Faults | None = None) -> None:
        """Forget every resource, ledger entry, key and logged request (and empty the ledger
        file, if any); faults go back to `faults` (default: none), the random draws restart."""
        with self.lock:
            self._resources.clear()
            self._ledger.clear()
            self._by_key.clear()
            self._requests.clear()
            self.set_faults(faults if faults is not None else Faults())
            if self.state_path is not None and self.state_path.exists():
                self.state_path.write_text("", encoding="utf-8")

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults, or change some fields; a new seed restarts the random draws."""
        with self.lock:
            new = faults if faults is not None else self._faults.updated(**changes)
            if faults is not None or "seed" in changes:
                self._rng = random.Random(new.seed)
            self._faults = new
            return new

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._requests.append(entry)

    # ---- request handling ----------------------------------------------------------------

    async def meet_faults(self, request: Request, system: str) -> None:
        """Run before every handler of a system: latency, then the fault this request draws.

        Raises ApiError for down / error / hang-before; a hang-after is left in
        `request.state.fault` for `side_effect` to honour once the work is recorded.
        """
        status = 500
        with self.lock:
            faults = self._faults
            fault = faults.draw(system, self._rng)
            if fault is Fault.ERROR:
                status = self._rng.choice((500, 502, 503))
        request.state.fault = fault.value if fault else None
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if fault is Fault.DOWN:
            raise ApiError(503, "unavailable", f"{system} is down (injected fault)")
        if fault is Fault.ERROR:
            raise ApiError(status, "injected_error", f"{system} failed (injected fault)")
        if fault is Fault.TIMEOUT_BEFORE or (fault is Fault.TIMEOUT_AFTER and request.method == "GET"):
            await self._stall(request, faults.stall_seconds)
            raise ApiError(504, "injected_timeout", f"{system} timed out (injected fault)")

    async def side_effect(
        self,
        request: Request,
        system: str,
        operation: str,
        body: BaseModel | None,
        effect: Callable[[], Outcome],
    ) -> JSONResponse:
        """Do `effect` at most once per Idempotency-Key and record it (see module docstring)."""
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if not key:
            raise ApiError(400, "idempotency_key_missing", f"{IDEMPOTENCY_HEADER} header is required")
        payload = body.model_dump(mode="json") if body is not None else {}
        path = request.url.path
        with self.lock:
            seen = self._by_key.get((system, key))
            if seen is not None:
                if (seen["method"], seen["path"], seen["request"]) != (request.method, path, payload):
                    raise conflict(
                        "idempotency_key_reused",
                        f"{IDEMPOTENCY_HEADER} {key!r} was used for a different request "
                        f"({seen['method']} {seen['path']})",
                        ledger_seq=seen["seq"],
                    )
                response = JSONResponse(seen["response"], status_code=200, headers={REPLAY_HEADER: "true"})
            else:
                outcome = effect()
                entry = {
                    "seq": len(self._ledger) + 1,
                    "at": utcnow().isoformat(),
                    "system": system,
                    "operation": operation,
                    "method": request.method,
                    "path": path,
                    "idempotency_key": key,
                    "request": payload,
                    "status_code": outcome.status_code,
                    "resource": f"{outcome.kind}/{outcome.data['id']}",
                    "response": json.loads(json.dumps(outcome.data, default=str)),
                }
                self._apply(entry)
                self._persist(entry)
                response = JSONResponse(entry["response"], status_code=outcome.status_code)
        if getattr(request.state, "fault", None) == Fault.TIMEOUT_AFTER.value:
            await self._stall(request, self._faults.stall_seconds)
        return response

    async def _stall(self, request: Request, seconds: float) -> None:
        """Hang like a stuck server, but stop as soon as the client has hung up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            if await request.is_disconnected():
                return
            await asyncio.sleep(STALL_POLL_SECONDS)

    # ---- ledger, replay and persistence ---------------------------------------------------

    def _apply(self, entry: dict[str, Any]) -> None:
        kind, id_ = entry["resource"].split("/", 1)
        self.resources(entry["system"], kind)[id_] = entry["response"]
        self._ledger.append(entry)
        self._by_key[(entry["system"], entry["idempotency_key"])] = entry

    def _persist(self, entry: dict[str, Any]) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        with self.state_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def _replay(self, path: Path) -> None:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    self._apply(json.loads(line))
