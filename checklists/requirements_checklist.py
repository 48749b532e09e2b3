"""The handoff meeting's requirements checklist: operations may sign only when it passes.

One row per requirement gathered by sales (see the SalesSignOff form).
"""

from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from checklists.common import Checklist
from checklists.common import Finding
from checklists.common import findings

CONTACT = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$|^\+?[\d\s().-]{7,}$", re.IGNORECASE)


class Requirements(Checklist):
    turnaround_days: Series[int] = pa.Field(ge=1, le=60, description="Promised turn-around, business days.")
    scope: Series[str] = pa.Field(isin=["in-state", "nation-wide", "international"])
    customisations: Series[str]
    decision_maker: Series[str] = pa.Field(str_length={"min_value": 2})
    decision_maker_contact: Series[str]
    training_sessions: Series[int] = pa.Field(ge=1, description="At least one training session.")
    changes_since_contract: Series[str]
    open_questions: Series[int] = pa.Field(eq=0, description="Questions still open.")

    @pa.check("decision_maker_contact", name="decision_maker_can_be_reached_by_email_or_phone")
    def decision_maker_can_be_reached_by_email_or_phone(cls, contact: Series[str]) -> Series[bool]:
        return contact.str.strip().str.match(CONTACT)

    @pa.check("customisations", name="customisations_are_stated")
    def customisations_are_stated(cls, text: Series[str]) -> Series[bool]:
        return text.str.strip().str.len() > 0

    @pa.check("changes_since_contract", name="changes_since_the_contract_are_stated")
    def changes_since_the_contract_are_stated(cls, text: Series[str]) -> Series[bool]:
        return text.str.strip().str.len() > 0

    @pa.dataframe_check(name="international_scope_states_its_customisations")
    def international_scope_states_its_customisations(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["scope"] != "international") | (df["customisations"].str.strip().str.lower() != "none")


def check_requirements(requirements: dict) -> list[Finding]:
    return findings(Requirements, pd.DataFrame([requirements]))
