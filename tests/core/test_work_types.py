"""The work-type registry: each work type declared once, everything else read from it.

The walk over the flows for the work types they ask for is in tests/flows/test_flow_files.py.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from handoff.core import sla
from handoff.core import work_types
from handoff.core.work_types import DECLARED
from handoff.core.work_types import WORK_TYPES
from handoff.core.work_types import UnknownWorkType
from handoff.core.work_types import WorkType

VALID = {
    "name": "site-survey",
    "form": "TechnicianVisit",
    "sla_hours": 16,
    "effort_minutes": 60,
    "skill": "provisioning",
    "level": 2,
    "team": "operations",
    "standin": {"visit_done": True, "technician": "x", "notes": "ok"},
}
FIELDS = [f.name for f in dataclasses.fields(WorkType)]


def test_every_work_type_is_declared_once_with_every_field():
    assert len(WORK_TYPES) == len(DECLARED) >= 10
    for name, kind in WORK_TYPES.items():
        assert kind.name == name
        for field in FIELDS:
            assert getattr(kind, field) not in (None, "", {}), f"{name} lacks {field}"


@pytest.mark.parametrize("field", FIELDS)
def test_a_work_type_without_a_field_is_refused(field):
    with pytest.raises(TypeError, match=field):
        WorkType(**{k: v for k, v in VALID.items() if k != field})


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("name", ""),
        ("name", "Order Approval"),
        ("name", None),
        ("name", "-x"),
        ("form", ""),
        ("form", "checklists.forms.OrderApproval"),
        ("form", "orderApproval"),
        ("sla_hours", 0),
        ("sla_hours", -1),
        ("sla_hours", math.nan),
        ("sla_hours", math.inf),
        ("sla_hours", "8"),
        ("sla_hours", True),
        ("effort_minutes", 0),
        ("effort_minutes", None),
        ("skill", ""),
        ("skill", "Order Entry"),
        ("level", 0),
        ("level", 6),
        ("level", 2.5),
        ("level", True),
        ("team", ""),
        ("team", "   "),
        ("team", None),
        ("standin", None),
        ("standin", "approve"),
    ],
)
def test_a_work_type_with_a_bad_field_is_refused_naming_it(field, bad):
    with pytest.raises(ValueError, match=f"{field}:"):
        WorkType(**{**VALID, field: bad})


def test_a_name_declared_twice_is_refused():
    with pytest.raises(ValueError, match="declared twice"):
        work_types.by_name([WorkType(**VALID), WorkType(**{**VALID, "sla_hours": 4})])


def test_a_skill_is_owned_by_one_team():
    """The WIP review files work under a team by its skill: two teams for one skill is a drift."""
    with pytest.raises(ValueError, match="one team per skill"):
        work_types.team_by_skill([WorkType(**VALID), WorkType(**{**VALID, "name": "other", "team": "billing"})])


def test_an_unknown_work_type_names_the_declared_ones():
    with pytest.raises(UnknownWorkType, match="order-approval"):
        work_types.get("order-aproval")


# --- what is derived from it -------------------------------------------------------------------


def test_every_work_type_has_its_form():
    from checklists.forms import FORMS
    from checklists.forms import StepForm

    assert set(FORMS) == set(WORK_TYPES)
    for name, kind in WORK_TYPES.items():
        assert FORMS[name].__name__ == kind.form and issubclass(FORMS[name], StepForm)


@pytest.mark.parametrize("form", ["NoSuchForm", "RunInput", "Field", "Literal"])
def test_a_work_type_naming_no_form_stops_the_forms_module(form):
    """Not a class of checklists/forms.py, or not a form (a pydantic helper, the RunInput base)."""
    from checklists.forms import forms_by_work_type

    with pytest.raises(LookupError, match=form):
        forms_by_work_type([*DECLARED, WorkType(**{**VALID, "form": form})])


@pytest.fixture
def default_sla(monkeypatch, tmp_path):
    from handoff.core.settings import settings

    monkeypatch.delenv(sla.ENV_VAR, raising=False)
    monkeypatch.setattr(settings, "home", tmp_path)
    sla.reload_config()
    yield
    sla.reload_config()


def test_the_sla_defaults_are_the_declared_ones(default_sla):
    assert set(sla.config().work_types) == set(WORK_TYPES)
    for name, kind in WORK_TYPES.items():
        assert sla.sla_seconds(name) == kind.sla_hours * 3600
        assert sla.default_effort_seconds(name) == kind.effort_minutes * 60
    # The drift the registry fixed: a refused line used to fall back to the 8-h default silently.
    assert "provisioning-exception" in sla.config().work_types


def test_an_installation_still_overrides_a_declared_sla(default_sla, monkeypatch):
    monkeypatch.setenv(sla.ENV_VAR, json.dumps({"work_types": {"provisioning-exception": {"sla_hours": 2}}}))
    sla.reload_config()
    assert sla.sla_seconds("provisioning-exception") == 2 * 3600
    assert (
        sla.default_effort_seconds("provisioning-exception") == WORK_TYPES["provisioning-exception"].effort_minutes * 60
    )


def test_the_wip_review_files_every_work_type_under_its_team():
    from handoff.analytics import reports

    for kind in WORK_TYPES.values():
        assert reports.team_for(kind.required_skills) == kind.team != reports.OTHER_TEAM
    # The drift the registry fixed: the sign-offs require sales / operations, not "handoff".
    assert reports.team_for(WORK_TYPES["handoff-signoff-sales"].required_skills) == "account management"
    assert reports.team_for(WORK_TYPES["handoff-signoff-operations"].required_skills) == "account management"


# --- the stand-in reps of the demo -------------------------------------------------------------


def test_stand_in_reps_can_do_every_work_type():
    """Otherwise the demo's steps of that type wait for ever with nobody eligible."""
    from handoff.runtime.standins import STANDIN_REPS

    for kind in WORK_TYPES.values():
        able = [name for name, _, _, skills in STANDIN_REPS if skills.get(kind.skill, 0) >= kind.level]
        assert able, f"no stand-in rep holds {kind.skill} {kind.level} for {kind.name}"


@pytest.mark.parametrize("checklist_errors", [[], [{"text": "due before it was ordered"}]])
def test_every_stand_in_answer_is_a_valid_form(db, checklist_errors):
    from datetime import date
    from datetime import datetime

    from checklists.forms import FORMS
    from handoff.core.db import session
    from handoff.core.models import Customer
    from handoff.core.models import Order
    from handoff.core.models import OrderCheck
    from handoff.core.models import Worker
    from handoff.core.models import WorkItem
    from handoff.runtime.standins import STANDIN_ANSWERS
    from handoff.runtime.standins import ensure_standin_reps
    from handoff.runtime.standins import standin_answer

    assert set(STANDIN_ANSWERS) == set(WORK_TYPES)
    ensure_standin_reps()
    with session() as s:
        rep = s.query(Worker).filter_by(name="Margaret Peacock").one()
        s.add(Customer(id="ALFKI", name="Alfreds"))
        s.add(
            Order(id="O-1", customer_id="ALFKI", order_date=date(2030, 3, 1), due_date=date(2030, 3, 9), source="test")
        )
        s.flush()
        s.add(OrderCheck(order_id="O-1", errors=checklist_errors, warnings=[]))
        items = {}
        for name, kind in WORK_TYPES.items():
            item = WorkItem(
                work_type=name,
                title=name,
                step_key=f"k-{name}",
                order_id="O-1",
                required_skills=kind.required_skills,
                due_at=datetime(2030, 3, 9),
                effort_seconds=60,
                assignee=rep,
                state="assigned",
            )
            s.add(item)
            s.flush()
            items[name] = item.id
    for name, item_id in items.items():
        answer = standin_answer(item_id)
        assert answer["completed_by"] == "Margaret Peacock"
        FORMS[name].model_validate(answer)  # raises if a field is missing or out of bounds
    decision = standin_answer(items["order-approval"])["decision"]
    assert decision == ("reject" if checklist_errors else "approve")
