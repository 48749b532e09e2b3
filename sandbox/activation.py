"""Activation stand-in: switch a provisioned resource on, then check that it works.

    POST /activation/activations                        {order_id, resource_id} → 201 activation
                                                        (404 if provisioning does not know the
                                                        resource, 422 if it is not provisioned yet)
    POST /activation/activations/{activation_id}/verify  {} → 200 {"verified": true | false, ...}
    GET  /activation/activations/{activation_id}

About `verify_failure_share` (default 10 %) of resources fail their FIRST verification (a
stable choice by resource id, `sandbox.reference.bucket`), with a reason asking for the
customer's confirmation; a later verification succeeds. One activation per resource.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import Field

from sandbox.core import Body
from sandbox.core import Outcome
from sandbox.core import Sandbox
from sandbox.core import not_found
from sandbox.core import rejected
from sandbox.core import system_router
from sandbox.core import utcnow
from sandbox.reference import bucket

SYSTEM = "activation"
VERIFY_FAILURE_REASON = "no signal from the customer's site: ask the customer to confirm the equipment is connected"


class ActivationRequest(Body):
    order_id: str = Field(min_length=1)
    resource_id: str = Field(min_length=1)


class VerifyRequest(Body):
    pass


def router(sb: Sandbox) -> APIRouter:
    api = system_router(sb, SYSTEM)

    @api.post("/activations", status_code=201)
    async def activate(body: ActivationRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            job = sb.first("provisioning", "provisioning-jobs", lambda j: j["resource_id"] == body.resource_id)
            if job is None:
                raise not_found("resource", body.resource_id)
            if job["status"] != "provisioned":
                raise rejected("not_provisioned", f"resource {body.resource_id} is {job['status']}")
            sb.refuse_duplicate(
                SYSTEM,
                "activations",
                "already_activated",
                "resource {resource_id} already has activation {id}",
                resource_id=body.resource_id,
            )
            return sb.created(
                SYSTEM,
                "activations",
                "ACT",
                body,
                status="pending",
                verified=None,
                verifications=0,
                reason=None,
                activated_at=utcnow().isoformat(),
                verified_at=None,
            )

        return await sb.side_effect(request, SYSTEM, "activate", body, effect)

    @api.post("/activations/{activation_id}/verify", status_code=200)
    async def verify(activation_id: str, request: Request, body: VerifyRequest | None = None) -> JSONResponse:
        def effect() -> Outcome:
            current = sb.found(SYSTEM, "activations", activation_id)
            attempt = current["verifications"] + 1
            fails = attempt == 1 and bucket("verify", current["resource_id"]) < sb.verify_failure_share * 100
            return Outcome(
                "activations",
                {
                    **current,
                    "status": "failed" if fails else "active",
                    "verified": not fails,
                    "verifications": attempt,
                    "reason": VERIFY_FAILURE_REASON if fails else None,
                    "verified_at": utcnow().isoformat(),
                },
                status_code=200,
            )

        return await sb.side_effect(request, SYSTEM, "verify", body or VerifyRequest(), effect)

    @api.get("/activations/{activation_id}")
    async def get_activation(activation_id: str) -> dict[str, Any]:
        return sb.found(SYSTEM, "activations", activation_id)

    return api
