"""The decision forms: a "no" that goes back to someone must say why, in the form's own words."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field
from pydantic import ValidationError

from checklists.forms import CreditReview
from checklists.forms import Decision
from checklists.forms import DiscountApproval
from checklists.forms import InvoiceApproval
from checklists.forms import OrderApproval
from handoff.runtime.worklist.fields import errors_by_field

# form, the choice that needs a reason, what the person is told without one
DECISIONS = [
    (OrderApproval, "reject", "a rejection needs a reason"),
    (CreditReview, "reject", "a rejection needs a reason"),
    (DiscountApproval, "decline", "declining needs a reason"),
    (InvoiceApproval, "hold", "holding an invoice needs a reason"),
]


@pytest.mark.parametrize(("form", "refusal", "told"), DECISIONS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("note", ["", "   ", "\n\t"])
def test_a_refusal_without_a_reason_is_refused_next_to_the_note(form, refusal, told, note):
    with pytest.raises(ValidationError) as refused:
        form(completed_by="ann", decision=refusal, note=note)
    # The worklist shows the message beside the note field, in the form's own words.
    assert errors_by_field(form, refused.value) == {"note": told}


@pytest.mark.parametrize(("form", "refusal", "told"), DECISIONS, ids=lambda v: getattr(v, "__name__", v))
def test_a_refusal_with_a_reason_and_an_approval_without_one_are_taken(form, refusal, told):
    assert form(completed_by="ann", decision=refusal, note="price too low").decision == refusal
    assert form(completed_by="ann", decision="approve", note="").decision == "approve"


@pytest.mark.parametrize(("form", "refusal", "told"), DECISIONS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("decision", ["", "APPROVE", "maybe", "reject ", None, 1])
def test_a_decision_that_is_not_one_of_the_forms_choices_is_refused(form, refusal, told, decision):
    with pytest.raises(ValidationError):
        form(completed_by="ann", decision=decision, note="x")


def test_each_decision_asks_for_a_reason_only_for_its_own_refusal():
    """A discount is declined, an invoice held: 'reject' is not a choice of either."""
    for form in (DiscountApproval, InvoiceApproval):
        with pytest.raises(ValidationError, match="decision"):
            form(completed_by="ann", decision="reject", note="")


def test_a_decision_whose_refusal_is_not_one_of_its_choices_cannot_be_declared():
    with pytest.raises(TypeError, match="refusal"):

        class Mistyped(Decision):
            refusal = "rejected"
            no_reason = "a rejection needs a reason"
            decision: Literal["approve", "reject"] = Field(description="d")
            note: str = Field(max_length=2000, description="n")

    with pytest.raises(TypeError, match="no_reason"):

        class Unexplained(Decision):
            refusal = "reject"
            decision: Literal["approve", "reject"] = Field(description="d")
            note: str = Field(max_length=2000, description="n")


def test_the_forms_fields_stay_what_prefect_and_the_worklist_render():
    for form, _, _ in DECISIONS:
        assert list(form.model_fields) == ["completed_by", "completion_proof", "decision", "note"]
        assert "refusal" not in form.model_json_schema()["properties"]
