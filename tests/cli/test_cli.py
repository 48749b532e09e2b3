"""The CLI as a user runs it: submit orders, read quarantine, complete a waiting step."""

import contextvars
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from handoff.cli.main import app
from handoff.core.settings import settings

runner = CliRunner()


def test_orders_submit_names_bad_fields_and_keeps_them(db, tmp_path):
    path = tmp_path / "orders.json"
    path.write_text(
        json.dumps(
            [
                {
                    "order_id": "C-1",
                    "customer_id": "ALFKI",
                    "order_date": "2024-03-01",
                    "due_date": "2024-03-15",
                    "lines": [{"product_id": 1, "quantity": 2, "unit_price": 18.0}],
                },
                {
                    "order_id": "C-2",
                    "order_date": "2024-03-01",
                    "due_date": "yesterday",
                    "lines": [{"product_id": 1, "quantity": -2, "unit_price": "x"}],
                },
            ]
        )
    )
    result = runner.invoke(app, ["orders", "submit", str(path)])
    assert result.exit_code == 1  # something was quarantined
    for text in ["customer_id", "due_date", "lines.0.quantity", "lines.0.unit_price", "accepted 1", "quarantined 1"]:
        assert text in result.output
    listed = runner.invoke(app, ["quarantine", "list"])
    assert "C-2" in listed.output and "lines.0.quantity" in listed.output
    shown = runner.invoke(app, ["quarantine", "show", "1"])
    assert '"yesterday"' in shown.output


def test_complete_answers_the_form_from_the_terminal(prefect_harness, catalogue, reps, sandbox, monkeypatch):
    from flows.order_entry import order_entry
    from handoff.core.db import session
    from handoff.core.intake import submit_orders
    from handoff.core.models import Order
    from handoff.runtime.steps import waiting_steps

    monkeypatch.setattr(settings, "prefect_ui_url", PREFECT_API_URL.value().removesuffix("/api"))
    monkeypatch.setattr(settings, "pause_poll_seconds", 1)
    order = {
        "order_id": "T-1",
        "customer_id": "AROUT",
        "order_date": "2030-03-01",
        "due_date": "2030-03-20",
        "lines": [{"product_id": 1, "quantity": 400, "unit_price": 18.0}],
    }
    submit_orders([(json.dumps(order), order)], source="test", announce=False)
    pool = ThreadPoolExecutor(1)
    try:
        run = pool.submit(contextvars.copy_context().run, order_entry, "T-1", return_state=True)
        deadline = time.monotonic() + 60
        while not (steps := [s for s in waiting_steps() if s.order_id == "T-1"]):
            assert time.monotonic() < deadline, "no step waiting"
            time.sleep(0.2)
        [step] = steps
        answer = ["--set", "decision=approve", "--set", "note=x"]
        # Without signing in, nobody completes anything — whatever name is given.
        anonymous = runner.invoke(app, ["complete", str(step.item_id), "--as", step.assignee, *answer])
        assert anonymous.exit_code == 2 and "handoff login" in anonymous.output
        for name in ("Robert King", step.assignee):
            set_pw = runner.invoke(app, ["workers", "set-password", name, "--password-stdin"], input=f"pw-of-{name}\n")
            assert set_pw.exit_code == 0, set_pw.output
        assert (
            runner.invoke(
                app, ["login", "--name", "Robert King", "--password-stdin"], input="pw-of-Robert King\n"
            ).exit_code
            == 0
        )
        assert (settings.home / "cli-session").stat().st_mode & 0o777 == 0o600
        # Signed in as Robert King: claiming to be the assignee is refused; as himself, not his item.
        claimed = runner.invoke(app, ["complete", str(step.item_id), "--as", step.assignee, *answer])
        assert claimed.exit_code == 2 and "signed in as Robert King" in claimed.output
        refused = runner.invoke(app, ["complete", str(step.item_id), *answer])
        assert refused.exit_code == 2 and "Refused" in refused.output and "only the assignee" in refused.output
        wrong = runner.invoke(app, ["login", "--name", step.assignee, "--password-stdin"], input="not it\n")
        assert wrong.exit_code == 2 and "wrong name or password" in wrong.output
        assert (
            runner.invoke(
                app, ["login", "--name", step.assignee, "--password-stdin"], input=f"pw-of-{step.assignee}\n"
            ).exit_code
            == 0
        )
        done = runner.invoke(app, ["complete", str(step.item_id)], input="approve\nlooks right\n")
        assert done.exit_code == 0, (
            "".join(__import__("traceback").format_exception(*done.exc_info)) if done.exc_info else done.output
        )
        assert "Order T-1" in done.output  # the form's description is shown first
        assert run.result(timeout=60).is_completed()
    finally:
        pool.shutdown(wait=False)
    from handoff.core.models import AuditEvent

    with session() as s:
        assert s.get(Order, "T-1").status == "accepted"
        trail = {
            (e.actor, e.action, e.details.get("via"))
            for e in s.query(AuditEvent).filter_by(entity="work_item", entity_id=str(step.item_id))
        }
    assert {(step.assignee, "completed", None), (step.assignee, "completion-verified", "cli")} <= trail


@pytest.mark.committed
def test_handoff_login_on_a_home_the_rep_signed_in_on_before_is_not_locked_out_by_a_stranger(db):
    """The CLI keeps a device file beside its session (0600, kept by `handoff logout`): with it,
    a rep whose name a stranger has locked still signs in; without it, they wait like a stranger."""
    from handoff.core.db import session
    from handoff.core.identity import sign_in
    from handoff.core.models import Worker

    password = "ann's long password"
    with session() as s:
        s.add(Worker(name="ann"))
        s.flush()
        sign_in.set_password(s, "ann", password, actor="test")

    def login() -> object:
        return runner.invoke(app, ["login", "--name", "ann", "--password-stdin"], input=password + "\n")

    assert login().exit_code == 0
    device = settings.home / "cli-device"
    assert device.stat().st_mode & 0o777 == 0o600
    assert runner.invoke(app, ["logout"]).exit_code == 0 and device.exists()
    for n in range(sign_in.MAX_FAILURES_PER_NAME):
        with pytest.raises(sign_in.LoginRefused), session() as s:
            sign_in.authenticate(s, "ann", f"guess {n}", client="10.6.6.6")
    back = login()
    assert back.exit_code == 0 and "Signed in as ann" in back.output, back.output
    device.unlink()
    stranger = login()
    assert stranger.exit_code == 2 and "too many failed sign-ins for this name" in stranger.output


# --- worker values the checks let through but no column could hold --------------------------

UNHOLDABLE = {
    "a row with a NUL, quarantined": ("import", b"name,timezone\nCarl,Eu\x00rope/Berlin\nDora,UTC\n"),
    "a skill with a NUL": ("import", b"name,skills\nEd,cre\x00dit:3\nDora,credit:2\n"),
    "a skill of 61 characters": ("import", b"name,skills\nEd," + b"s" * 61 + b":3\nDora,credit:2\n"),
    "add: a skill of 61 characters": ("add", ["workers", "add", "Ed", "--skills", "s" * 61 + ":3"]),
    "add: a shift from 0009:00": ("add", ["workers", "add", "Ed", "--shift-start", "0009:00", "--shift-end", "17:00"]),
    "add: a name NFC makes 160 characters": ("add", ["workers", "add", "\u0958" * 80]),
}


@pytest.mark.committed
@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("case", list(UNHOLDABLE))
def test_worker_values_no_column_can_hold_are_words_not_a_traceback(db, tmp_path, case):
    """Each passed the record's checks and then failed PostgreSQL's write with a traceback
    (SQLite stored them, over-long); an import lost its good rows with it. Now each is refused
    (or, for a time, written as HH:MM), and an import keeps its good rows."""
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import Worker

    kind, given = UNHOLDABLE[case]
    if kind == "import":
        path = tmp_path / "team.csv"
        path.write_bytes(given)
        given = ["workers", "import", str(path)]
    result = runner.invoke(app, given, env={"COLUMNS": "300"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    with session() as s:
        workers = {w.name: (w.shift_start, w.shift_end) for w in s.scalars(select(Worker))}
    if kind == "import":
        assert "Dora" in workers and len(workers) == 1, result.output
    elif "0009" in case:
        assert workers == {"Ed": ("09:00", "17:00")}, result.output
    else:
        assert result.exit_code != 0 and workers == {}, result.output


def test_a_damaged_session_file_signs_nobody_in_and_can_be_signed_out_of(db):
    """Bytes that are not UTF-8 in the CLI's session file made every identity command end in
    a traceback, `logout` too: nobody could sign out to mend it."""
    from handoff.cli.identity import session_path

    session_path().parent.mkdir(parents=True, exist_ok=True)
    session_path().write_bytes(b"\xff\xfe garbage")
    whoami = runner.invoke(app, ["whoami"])
    assert whoami.exit_code == 1 and "not signed in" in whoami.output, repr(whoami.exception)
    logout = runner.invoke(app, ["logout"])
    assert logout.exit_code == 0 and "Signed out" in logout.output and not session_path().exists()
