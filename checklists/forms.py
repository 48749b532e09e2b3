"""The forms people fill in to complete a human step.

Prefect renders each as a form in the UI, the reps' worklist renders it as a web form, and
`handoff complete` asks the same fields in the terminal. Required fields have no default: a
field with a default shows as optional.

Who completed a step is not taken from what is typed: handoff fills `completed_by` with the
signed-in person and adds `completion_proof`, a token it signs for that item, attempt, person and
answer (handoff.core.identity.completion_proof). The flow accepts an answer only with a valid
proof, so a name typed into the Prefect UI's Resume dialog is refused and the step is asked again.

Which work type waits for which form is declared with the work type (handoff.core.work_types);
`FORMS` is read from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from typing import ClassVar
from typing import Literal
from typing import Self
from typing import get_args

from prefect.input import RunInput
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from handoff.core import work_types
from handoff.core.identity.completion_proof import PROOF_MAX_LENGTH
from handoff.core.work_types import WorkType


class StepForm(RunInput):
    """What every human step carries: who completed it, and handoff's proof of it."""

    completed_by: str = Field(
        min_length=1,
        max_length=80,
        description="Filled in by handoff with the signed-in person (worklist or `handoff complete`).",
    )
    completion_proof: str = Field(
        "",
        max_length=PROOF_MAX_LENGTH,
        description="Set by handoff. An answer without it (e.g. sent from this dialog) is refused: "
        "complete steps in the reps' worklist.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """NUL becomes U+FFFD in every text field. PostgreSQL refuses NUL in text: an answer
        holding one was signed and sent, and then the run failed recording it, at every restart
        (it takes the answer marked on its way again). Replaced, not refused: the run reads its
        input through this model too, and a refusal there would fail the run instead."""
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


class Decision(StepForm):
    """A decision whose "no" goes back to someone (sales, billing), so it must say why.

    Each decision declares its choices and its note; `refusal` is the choice that needs a
    reason, and `no_reason` what the person is told when they leave the note empty (the worklist
    shows it next to the note)."""

    refusal: ClassVar[str]
    no_reason: ClassVar[str]

    decision: str
    note: str

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A decision whose refusal is not one of its choices could never ask for the reason."""
        super().__pydantic_init_subclass__(**kwargs)
        choices = get_args(cls.model_fields["decision"].annotation)
        if getattr(cls, "refusal", None) not in choices or not getattr(cls, "no_reason", ""):
            raise TypeError(f"{cls.__name__}: `refusal` must be one of its decisions {choices}, with `no_reason`")

    @model_validator(mode="after")
    def _a_refusal_needs_a_reason(self) -> Self:
        if self.decision == self.refusal and not self.note.strip():
            raise ValueError(f"note: {self.no_reason}")
        return self


class OrderApproval(Decision):
    refusal = "reject"
    no_reason = "a rejection needs a reason"

    decision: Literal["approve", "reject"] = Field(description="Approve the order, or reject it.")
    note: str = Field(max_length=2000, description="Why — required when rejecting; it is sent to sales.")

    @property
    def outcome(self) -> str:
        return self.decision


class CreditReview(OrderApproval):
    """The CRM declined the order's credit: extend it anyway, or reject the order."""


class DiscountApproval(Decision):
    refusal = "decline"
    no_reason = "declining needs a reason"

    decision: Literal["approve", "decline"] = Field(description="Approve the discount, or decline the quote.")
    note: str = Field(max_length=2000, description="Why — required when declining.")


class QuoteFollowUp(StepForm):
    """A rep calls the customer about a quote they have not answered yet."""

    customer_answer: Literal["accepted", "declined", "undecided"] = Field(
        description="What the customer said: they accept the quote, decline it, or have not decided yet."
    )
    note: str = Field(max_length=2000, description="What was said, for sales.")


class TechnicianVisit(StepForm):
    visit_done: bool = Field(description="The technician has finished the job on site.")
    technician: str = Field(min_length=1, max_length=80, description="Who did the visit.")
    notes: str = Field(max_length=2000, description="What was done, or why it could not be.")


class ProvisioningException(StepForm):
    resolution: Literal["drop-line", "cancel-order"] = Field(
        description="The other system refused this line: leave it out of the order, or cancel the order."
    )
    note: str = Field(min_length=1, max_length=2000, description="Why, for the customer and sales.")


class CustomerConfirmation(StepForm):
    confirmed: bool = Field(description="The customer confirms the service works for them.")
    note: str = Field(max_length=2000, description="What the customer said.")


class InvoiceApproval(Decision):
    refusal = "hold"
    no_reason = "holding an invoice needs a reason"

    decision: Literal["approve", "hold"] = Field(description="Issue the invoice, or hold it.")
    note: str = Field(max_length=2000, description="Why — required when holding.")


class ChecklistFix(StepForm):
    resolution: Literal["fixed", "cancel"] = Field(
        description="'fixed': the data is corrected, check again; 'cancel': stop this work."
    )
    note: str = Field(min_length=1, max_length=2000, description="What you changed, or why you cancel.")


class SalesSignOff(StepForm):
    """Sales brings the requirements it gathered; operations will check them before signing."""

    signed: bool = Field(description="Sales is comfortable handing this account to operations.")
    turnaround_days: int = Field(description="Turn-around time the customer was promised, in business days.")
    scope: Literal["in-state", "nation-wide", "international"] = Field(description="Where requests come from.")
    customisations: str = Field(max_length=2000, description="Customisations agreed ('none' if none).")
    decision_maker: str = Field(max_length=120, description="The customer's decision-maker.")
    decision_maker_contact: str = Field(max_length=120, description="Their e-mail address or phone number.")
    training_sessions: int = Field(description="Training sessions planned for the customer's staff.")
    changes_since_contract: str = Field(max_length=2000, description="What changed since signing ('none' if none).")
    open_questions: str = Field(max_length=2000, description="Questions still open, one per line (empty if none).")


class OperationsSignOff(StepForm):
    signed: bool = Field(description="Operations is comfortable owning this customer's success.")
    open_questions: str = Field(
        max_length=2000, description="What must be answered first, one per line (empty if none)."
    )


def forms_by_work_type(declared: Iterable[WorkType]) -> dict[str, type[StepForm]]:
    """The form each work type waits for, as its declaration names it (handoff.core.work_types).

    A name that is not a form class in this module stops the import: a work type cannot be
    registered without its form."""
    forms = {}
    for work_type in declared:
        form = globals().get(work_type.form)
        if not (isinstance(form, type) and issubclass(form, StepForm)):
            raise LookupError(
                f"work type {work_type.name!r} names the form {work_type.form!r}, "
                "which checklists/forms.py does not define"
            )
        forms[work_type.name] = form
    return forms


FORMS: dict[str, type[StepForm]] = forms_by_work_type(work_types.DECLARED)
