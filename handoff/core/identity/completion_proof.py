"""The proof a completion carries, and the completion that checks it.

handoff signs every completion it sends for a signed-in person (the worklist, `handoff
complete`) — that item, that attempt, that person, that answer — with the server secret
(secret.py), and the waiting flow closes the item only for the person a valid proof names
(`complete_verified`); an answer that came around handoff is refused. `outcome_of`: how the
step came out, in the answer's words.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature
from sqlalchemy.orm import Session

from handoff.core import audit
from handoff.core.identity.secret import signer
from handoff.core.models import WorkItem
from handoff.core.models import utcnow
from handoff.core.routing import router

PROOF_FIELD = "completion_proof"  # the form field that carries the signed proof
PROOF_MAX_LENGTH = 2000  # what that field takes (checklists/forms.py): Prefect refuses more at resume


class ProofTooLong(ValueError):
    """An override reason too long to sign with its answer. Refused before anything is sent:
    past the form's limit Prefect refused the answer at every try, and the supervisor was told
    to wait and send it again, for ever."""


class CompletionRefused(router.NotAllowed):
    """A completion without a valid proof of who sent it. `actor` is who the audit names."""

    def __init__(self, message: str, actor: str = "unverified", **details: Any) -> None:
        super().__init__(message)
        self.actor = actor
        self.details = details


def canonical_answer(answer: dict[str, Any]) -> str:
    """The answer as the proof covers it: every field but the proof, in one spelling."""
    rest = {k: v for k, v in answer.items() if k != PROOF_FIELD}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def answer_digest(answer: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_answer(answer).encode()).hexdigest()


def sign_completion(
    item_id: int,
    attempt_key: str,
    person: str,
    answer: dict[str, Any],
    override: str | None = None,
    via: str = "handoff",
) -> str:
    """The proof handoff attaches to an answer it sends for a signed-in person. ProofTooLong
    when the override reason makes it longer than a form takes (the reason is signed verbatim,
    so how much fits depends on its script: about 1,500 characters of Latin text, a few hundred
    of Chinese); the refusal says how much of it would fit."""
    at = utcnow().isoformat(timespec="seconds")

    def signed(reason: str | None) -> str:
        return signer("handoff.completion", timed=False).dumps(
            {
                "item": item_id,
                "key": attempt_key,
                "by": person,
                "answer": answer_digest(answer),
                "override": reason,
                "via": via,
                "at": at,
            }
        )

    proof = signed(override)
    if len(proof) <= PROOF_MAX_LENGTH:
        return proof
    fits, longest = 0, len(override or "")  # the longest start of the reason that would fit
    while fits < longest:
        middle = (fits + longest + 1) // 2
        fits, longest = (
            (middle, longest) if len(signed((override or "")[:middle])) <= PROOF_MAX_LENGTH else (fits, middle - 1)
        )
    raise ProofTooLong(
        f"the override reason is too long to sign with the answer: {fits:,} of its "
        f"{len(override or ''):,} characters fit; shorten it"
    )


@dataclass(frozen=True)
class Proof:
    person: str
    attempt_key: str
    override: str | None
    via: str
    digest: str


def verify_completion(s: Session, item_id: int, answer: dict[str, Any]) -> Proof:
    """Who sent this answer, proved; CompletionRefused (with the reason) otherwise."""
    claimed = str(answer.get("completed_by") or "?")
    token = answer.get(PROOF_FIELD)
    if not token:
        raise CompletionRefused(
            "the answer carries no proof of who sent it (it came around handoff: the Prefect UI's "
            "Resume dialog or Prefect's API); complete it in the worklist or with `handoff complete`",
            claimed_by=claimed,
        )
    try:
        data = signer("handoff.completion", timed=False).loads(str(token))
    except BadSignature:
        raise CompletionRefused("the proof of who sent the answer is forged or damaged", claimed_by=claimed) from None
    item = s.get(WorkItem, item_id)
    if item is None or data.get("item") != item_id:
        raise CompletionRefused(
            f"the proof was made for work item {data.get('item')}, not {item_id}", claimed_by=claimed
        )
    if data.get("key") != item.input_key:
        raise CompletionRefused(
            f"the proof was made for an earlier attempt ({data.get('key')}), not the one waiting now "
            f"({item.input_key}): a replay",
            claimed_by=claimed,
            signed_by=data.get("by"),
        )
    if data.get("answer") != answer_digest(answer):
        raise CompletionRefused(
            "the answer was altered after it was signed", claimed_by=claimed, signed_by=data.get("by")
        )
    if data.get("by") != answer.get("completed_by"):
        raise CompletionRefused(
            f"the form names {claimed} but was signed for {data.get('by')}",
            claimed_by=claimed,
            signed_by=data.get("by"),
        )
    return Proof(
        str(data["by"]), str(data["key"]), data.get("override"), str(data.get("via", "handoff")), str(data["answer"])
    )


# The field of each form that says how the step came out (checklists/forms.py), and the words
# for the yes/no ones: what the item's outcome, the demo's tally and a late completer are shown.
OUTCOME_FIELDS = ("decision", "resolution", "customer_answer", "outcome")
YES_NO_FIELDS = {
    "confirmed": ("confirmed", "not confirmed"),
    "signed": ("signed", "not signed"),
    "visit_done": ("visit done", "visit not done"),
}


def outcome_of(answer: dict[str, Any]) -> str:
    for field in OUTCOME_FIELDS:
        if answer.get(field):
            return str(answer[field])
    for field, (yes, no) in YES_NO_FIELDS.items():
        if isinstance(answer.get(field), bool):
            return yes if answer[field] else no
    return "done"


def complete_verified(s: Session, item_id: int, answer: dict[str, Any]) -> WorkItem:
    """Close the item for the person the proof names — never for the name typed in the form.
    Refusals are router.NotAllowed (CompletionRefused for a missing or bad proof)."""
    proof = verify_completion(s, item_id, answer)
    try:
        item = router.complete_item(s, item_id, by=proof.person, outcome=outcome_of(answer), note=answer.get("note"))
    except router.NotAllowed as refused:
        raise CompletionRefused(str(refused), actor=proof.person) from refused
    item.answer = {k: v for k, v in answer.items() if k != PROOF_FIELD}
    audit.record(
        s,
        proof.person,
        "work_item",
        item_id,
        "completion-verified",
        attempt=proof.attempt_key,
        answer_sha256=proof.digest,
        via=proof.via,
    )
    if proof.override is not None:
        audit.record(s, proof.person, "work_item", item_id, "override", reason=proof.override)
    return item


__all__ = [
    "PROOF_FIELD",
    "CompletionRefused",
    "complete_verified",
    "sign_completion",
    "verify_completion",
]
