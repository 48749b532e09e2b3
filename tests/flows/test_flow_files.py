"""Flow files are procedures: they ask only for declared work types, import no plumbing, and
leave the cache policy of steps to the one decorator (tasks/steps.py).

The walks read the source with `ast`, so a flow that is never run in a test is checked too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from handoff.core.work_types import WORK_TYPES
from handoff.core.work_types import UnknownWorkType

ROOT = Path(__file__).resolve().parents[2]
FLOW_FILES = sorted((ROOT / "flows").glob("*.py"))
STEP_FILES = sorted((ROOT / "tasks").glob("*.py"))

# What a flow file may not import: the Prefect client and run plumbing, SQL, HTTP, data frames.
PLUMBING = (
    "prefect.client",
    "prefect.deployments",
    "prefect.artifacts",
    "prefect.events",
    "sqlalchemy",
    "httpx",
    "pandas",
    "handoff.core.db",
)
PLUMBING_NAMES = {"get_client"}  # `from prefect import get_client`


def plumbing_imports(source: str) -> list[str]:
    """Every import of PLUMBING in the source, at any depth (inside functions too)."""

    def plumbing(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in PLUMBING)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if plumbing(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if plumbing(node.module):
                found.append(node.module)
            else:  # `from prefect import client`, `from handoff.core import db`, `from prefect import get_client`
                found += [
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if plumbing(f"{node.module}.{a.name}") or a.name in PLUMBING_NAMES
                ]
    return sorted(set(found))


def human_steps(source: str) -> list[tuple[int, str | None]]:
    """(line, work type) of every `HumanStep(...)`; None where the work type is not a literal."""
    steps = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "HumanStep":
            given = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "work_type"), None)
            literal = isinstance(given, ast.Constant) and isinstance(given.value, str)
            steps.append((node.lineno, given.value if literal else None))
    return steps


def cache_policies(source: str) -> list[int]:
    """Lines of every `cache_policy=` argument and every NO_CACHE name."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "cache_policy":
            lines.append(node.value.lineno)
        elif (
            isinstance(node, ast.Name)
            and node.id == "NO_CACHE"
            or isinstance(node, ast.alias)
            and node.name == "NO_CACHE"
        ):
            lines.append(getattr(node, "lineno", 0))
    return lines


# --- the checks themselves catch what they are meant to ----------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import pandas as pd",
        "import httpx",
        "from sqlalchemy.orm import Session",
        "from handoff.core.db import session",
        "from handoff.core import db",
        "def step():\n    from prefect.client.orchestration import get_client\n",
        "import prefect.client.schemas.filters",
        "from prefect import get_client",
        "from prefect import client",
        "from prefect.deployments import run_deployment",
        "from prefect.artifacts import create_markdown_artifact",
        "from prefect.events import emit_event",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas as pd\n",
    ],
)
def test_plumbing_in_a_flow_file_is_found(source):
    assert plumbing_imports(source)


def test_a_procedures_own_imports_are_not_plumbing():
    source = (
        "from prefect import flow, get_run_logger\nfrom prefect.runtime import flow_run\n"
        "from handoff.core.settings import settings\nfrom handoff.core.models import utcnow\n"
        "from tasks.orders import load_order\nimport pandera_like\nimport httpx_free\n"
    )
    assert plumbing_imports(source) == []


def test_human_steps_are_found_with_their_work_type():
    source = (
        'HumanStep(work_type="order-approval", step_key="k", title="t", description="d")\n'
        'steps.HumanStep("credit-review", "k", "t", "d")\n'
        'HumanStep(work_type=kind, step_key="k", title="t", description="d")\n'
    )
    assert human_steps(source) == [(1, "order-approval"), (2, "credit-review"), (3, None)]


# --- the flows and steps as they are ------------------------------------------------------------


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_a_flow_file_imports_no_plumbing(path):
    assert plumbing_imports(path.read_text()) == [], f"{path.name}: move these into tasks/ or handoff/runtime"


def test_every_human_step_asks_for_a_declared_work_type():
    asked = {}
    for path in FLOW_FILES + STEP_FILES:
        for line, work_type in human_steps(path.read_text()):
            where = f"{path.relative_to(ROOT)}:{line}"
            assert work_type is not None, f"{where}: name the work type as a literal, so this check can read it"
            assert work_type in WORK_TYPES, f"{where}: {work_type!r} is not declared in handoff/core/work_types.py"
            asked[where] = work_type
    # The walk saw the steps (not an empty folder); every declared type is asked for somewhere.
    assert set(asked.values()) == set(WORK_TYPES)


def test_steps_leave_the_cache_policy_to_the_one_decorator():
    for path in sorted(ROOT.glob("*/**/*.py")):
        if path.is_relative_to(ROOT / "tests") or ".venv" in path.parts or path == ROOT / "tasks" / "steps.py":
            continue
        lines = cache_policies(path.read_text())
        assert not lines, f"{path.relative_to(ROOT)}:{lines}: use tasks.steps.record_step"


# --- the same, when a flow runs --------------------------------------------------------------------


def test_a_human_step_of_an_undeclared_work_type_fails_when_the_flow_builds_it():
    from tasks.human_step import HumanStep

    with pytest.raises(UnknownWorkType, match="order-aproval"):
        HumanStep(work_type="order-aproval", step_key="k", title="t", description="d")


def test_a_human_step_needs_its_work_types_skill_unless_the_flow_says_otherwise():
    from tasks.human_step import HumanStep

    plain = HumanStep(work_type="discount-approval", step_key="k", title="t", description="d")
    assert plain.required_skills == {"quotation": 3} == WORK_TYPES["discount-approval"].required_skills
    senior = HumanStep(
        work_type="order-approval", step_key="k", title="t", description="d", required_skills={"order-entry": 3}
    )
    assert senior.required_skills == {"order-entry": 3}


def test_a_step_is_answered_with_its_declared_form():
    """`handoff complete` and the stand-ins fill in the declared form; the flow must wait for it."""
    from checklists.forms import DiscountApproval
    from tasks.human_step import HumanStep
    from tasks.human_step import ask_a_person

    step = HumanStep(work_type="order-approval", step_key="k", title="t", description="d")
    with pytest.raises(TypeError, match="OrderApproval, not DiscountApproval"):
        ask_a_person(step, DiscountApproval)
