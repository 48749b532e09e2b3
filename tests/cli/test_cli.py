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
