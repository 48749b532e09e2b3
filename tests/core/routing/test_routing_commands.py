"""The routing CLI (workers, presence, worklist) on a tiny typer app, as handoff/cli.py mounts it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import typer
from sqlalchemy import func
from sqlalchemy import select
from typer.testing import CliRunner

from handoff.cli.routing import register
from handoff.core.db import session
from handoff.core.models import Presence
from handoff.core.models import Quarantine
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.settings import settings


@pytest.fixture
def cli(routing_db):
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "300"})

    return run


def worker(name: str) -> Worker:
    with session() as s:
        return s.scalar(select(Worker).where(Worker.name == name))


def test_workers_add_update_and_list(cli):
    r = cli(
        "workers",
        "add",
        "Ana Lima",
        "--skills",
        "order-approval:3;credit-review:2",
        "--capacity",
        "4",
        "--timezone",
        "Europe/Lisbon",
        "--shift-start",
        "09:00",
        "--shift-end",
        "17:00",
        "--work-days",
        "01234",
    )
    assert r.exit_code == 0, r.output
    ana = worker("Ana Lima")
    assert ana.skill_levels == {"order-approval": 3, "credit-review": 2} and ana.capacity == 4
    assert ana.timezone == "Europe/Lisbon" and ana.work_days == "01234"

    r = cli(
        "workers", "update", "Ana Lima", "--skill", "credit-review:4", "--skill", "order-approval:0", "--capacity", "5"
    )
    assert r.exit_code == 0, r.output
    ana = worker("Ana Lima")
    assert ana.skill_levels == {"credit-review": 4} and ana.capacity == 5 and ana.shift_end == "17:00"

    r = cli("workers", "list")
    assert r.exit_code == 0
    assert "Ana Lima" in r.output and "credit-review:4" in r.output and "Mon-Fri" in r.output and "0 / 5" in r.output

    assert cli("workers", "add", "Ana Lima").exit_code == 2  # names are unique
    assert cli("workers", "update", "Nobody", "--capacity", "2").exit_code == 1


def test_a_rep_whose_skill_is_taken_away_hands_back_the_work_that_needs_it(cli, tmp_path):
    """A supervisor took a skill away: the rep kept the not-started items that need it for
    good (no watch round takes work back for skills) while a qualified rep waited. They go
    to the qualified rep at once, by `workers update` as by `workers import`."""
    from handoff.core.models import utcnow
    from handoff.core.routing import router

    assert cli("workers", "add", "Ana", "--skills", "credit-review:3;billing:2", "--capacity", "3").exit_code == 0
    now = utcnow()
    with session() as s:
        items = [
            WorkItem(
                work_type="credit-review",
                step_key=f"skill-{n}",
                title=f"credit review {n}",
                required_skills={"credit-review": 3},
                created_at=now,
                due_at=now + timedelta(hours=8),
                effort_seconds=900,
            )  # fmt: skip
            for n in range(2)
        ]
        s.add_all(items)
        s.flush()
        ids = [item.id for item in items]
        assert [router.route_item(s, item_id).name for item_id in ids] == ["Ana", "Ana"]
    assert cli("workers", "add", "Bob", "--skills", "credit-review:3", "--capacity", "1").exit_code == 0
    r = cli("workers", "update", "Ana", "--skills", "billing:2")
    assert r.exit_code == 0 and "2 item(s) they no longer have the skills for handed back" in r.output, r.output
    with session() as s:
        held = {
            s.get(WorkItem, item_id).assignee.name if s.get(WorkItem, item_id).assignee else None for item_id in ids
        }
        assert held == {"Bob", None}  # Bob has room for one; the other waits for a qualified rep
        assert worker("Ana").open_items == 0 and worker("Bob").open_items == 1
    assert "1 item(s) pushed to them" in cli("workers", "update", "Ana", "--skills", "credit-review:3").output
    team = tmp_path / "team.csv"
    team.write_text("name,skills\nAna,billing:2\n")
    assert cli("workers", "import", str(team)).exit_code == 0
    with session() as s:
        assert {s.get(WorkItem, item_id).state for item_id in ids} == {WorkItemState.ASSIGNED, WorkItemState.OPEN}
        assert worker("Ana").open_items == 0


def test_bad_input_is_reported_field_by_field(cli):
    r = cli(
        "workers", "add", "Bo", "--skills", "order-approval:9", "--timezone", "Mars/Olympus", "--shift-start", "9am"
    )
    assert r.exit_code == 2
    for field in ("skills", "timezone", "shift_start"):
        assert field in r.output
    assert "from 1 (learning) to 5" in r.output and "Mars/Olympus" in r.output
    assert worker("Bo") is None


def test_workers_import_reports_bad_rows_keeps_them_and_imports_the_good(cli, tmp_path):
    csv_file = tmp_path / "team.csv"
    csv_file.write_text(
        "name,role,capacity,timezone,shift_start,shift_end,work_days,skills\n"
        "Ana Lima,rep,3,Europe/Lisbon,09:00,17:00,01234,order-approval:3;credit-review:2\n"
        "Ben Ode,boss,-1,UTC,09:00,17:00,01234,order-approval:3\n"
        "Cy Park,supervisor,,,,,,order-approval:5\n"
        "Di Yu,rep,2,UTC,08:00,16:00,0123,credit-review\n"
        "Ana Lima,rep,3,UTC,09:00,17:00,01234,order-approval:1\n"
    )
    r = cli("workers", "import", str(csv_file))
    assert r.exit_code == 1, r.output
    out = r.output
    assert "role" in out and "'boss' is not a role" in out and "capacity" in out  # Ben: two fields
    assert "credit-review" in out and "name:level" in out  # Di: the skill has no level
    assert "already on line 2" in out  # the second Ana
    assert "2 added, 0 updated, 3 refused" in out
    assert worker("Ana Lima").skill_levels == {"order-approval": 3, "credit-review": 2}
    cy = worker("Cy Park")
    assert cy.role == "supervisor" and cy.capacity == 3 and cy.shift_end == "24:00"  # empty cells: defaults
    assert worker("Ben Ode") is None and worker("Di Yu") is None
    with session() as s:
        kept = s.scalars(select(Quarantine).where(Quarantine.source == "workers-csv:team.csv")).all()
        assert sorted(q.reference for q in kept) == ["Ana Lima", "Ben Ode", "Di Yu"]
        ben = next(q for q in kept if q.reference == "Ben Ode")
        assert ben.raw.startswith("Ben Ode,boss") and {e["field"] for e in ben.reasons} == {"role", "capacity"}

    # Re-importing a fixed file updates in place; --strict imports nothing when a row is bad.
    csv_file.write_text("name,capacity,skills\nAna Lima,6,order-approval:4\nBad,x,\n")
    assert cli("workers", "import", str(csv_file), "--strict").exit_code == 1
    assert worker("Ana Lima").capacity == 3
    csv_file.write_text("name,capacity,skills\nAna Lima,6,order-approval:4\n")
    r = cli("workers", "import", str(csv_file))
    assert r.exit_code == 0 and "0 added, 1 updated" in r.output
    assert worker("Ana Lima").capacity == 6

    csv_file.write_text("who,skills\nx,y:1\n")
    r = cli("workers", "import", str(csv_file))
    assert r.exit_code == 2 and "'name' is missing" in r.output and "unknown column 'who'" in r.output


def test_presence_offline_hands_work_to_a_colleague(cli, now):
    from handoff.core.routing import router

    cli("workers", "add", "ann", "--skills", "order-approval:3", "--capacity", "1")
    with session() as s:
        it = WorkItem(
            work_type="order-approval",
            step_key="cli-1",
            title="approve 10248",
            required_skills={"order-approval": 2},
            due_at=now + timedelta(days=30),
            effort_seconds=600,
        )
        s.add(it)
        s.flush()
        assert router.route_item(s, it.id).name == "ann"
        item_id = it.id
    cli("workers", "add", "bob", "--skills", "order-approval:2")
    r = cli("presence", "ann", "offline")
    assert r.exit_code == 0, r.output
    assert "available -> offline" in r.output and f"work item {item_id} handed back, now with bob" in r.output
    assert worker("ann").presence == Presence.OFFLINE
    r = cli("presence", "ann", "sleeping")
    assert r.exit_code == 2
    assert cli("presence", "zed", "away").exit_code == 1


def test_worklist_shows_my_items_most_urgent_first_with_links(cli):
    from handoff.core.models import utcnow
    from handoff.core.routing import router

    now = utcnow()  # the worklist reads the clock

    cli("workers", "add", "ann", "--skills", "order-approval:3", "--capacity", "3")
    with session() as s:
        later = WorkItem(
            work_type="order-approval",
            step_key="wl-1",
            title="approve 10250",
            order_id=None,
            required_skills={"order-approval": 1},
            due_at=now + timedelta(hours=6),
            effort_seconds=600,
            flow_run_id="11111111-2222-3333-4444-555555555555",
        )
        sooner = WorkItem(
            work_type="order-approval",
            step_key="wl-2",
            title="approve 10249",
            required_skills={"order-approval": 1},
            due_at=now + timedelta(hours=2),
            effort_seconds=600,
            priority=3,
            value=90_000,
            flow_run_id="66666666-7777-8888-9999-000000000000",
        )
        s.add_all([later, sooner])
        s.flush()
        router.route_for_worker(s, worker("ann").id)
        assert {it.state for it in (later, sooner)} == {WorkItemState.ASSIGNED}
    r = cli("worklist", "--me", "ann")
    assert r.exit_code == 0, r.output
    link = f"{settings.prefect_ui_url}/runs/flow-run/66666666-7777-8888-9999-000000000000"
    assert link in r.output and f"{settings.prefect_ui_url}/runs/flow-run/11111111" in r.output
    assert r.output.index("approve 10249") < r.output.index("approve 10250")  # most urgent first
    assert "handoff complete ITEM --as ann" in r.output
    cli("workers", "add", "bob", "--skills", "billing:1")
    assert "nothing assigned to you" in cli("worklist", "--me", "bob").output
    assert cli("worklist", "--me", "nobody").exit_code == 1


def test_presence_is_recorded_as_whoever_changed_it_and_a_rep_sets_only_their_own(routing_db):
    """The audit never says a rep went offline when someone else said so; signed in as one rep,
    another rep's presence or worklist is refused (a supervisor may set or read anyone's)."""
    from handoff.cli import identity as identity_cli
    from handoff.core.models import AuditEvent

    app = typer.Typer()
    register(app)
    identity_cli.register(app)
    runner = CliRunner()

    def cli(*args: str, stdin: str | None = None):
        return runner.invoke(app, list(args), input=stdin, env={"COLUMNS": "300"})

    def changes() -> list[tuple[str, str, str]]:
        with session() as s:
            return [
                (e.actor, e.entity_id, e.to_state)
                for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "presence").order_by(AuditEvent.id))
            ]

    for name, role in (("ann", "rep"), ("bob", "rep"), ("sue", "supervisor")):
        assert cli("workers", "add", name, "--skills", "order-approval:2", "--role", role).exit_code == 0
        assert (
            cli("workers", "set-password", name, "--password-stdin", stdin=f"a long passphrase of {name}\n").exit_code
            == 0
        )
    ann, bob = str(worker("ann").id), str(worker("bob").id)

    # Nobody signed in: the operator's change, not ann's.
    assert cli("presence", "ann", "away").exit_code == 0
    assert changes()[-1] == ("system:cli", ann, "away")

    # Signed in as bob: ann's presence is not his to set; his own is.
    assert cli("login", "--name", "bob", "--password-stdin", stdin="a long passphrase of bob\n").exit_code == 0
    refused = cli("presence", "ann", "offline")
    assert refused.exit_code == 2 and "signed in as bob" in refused.output
    assert worker("ann").presence == Presence.AWAY and len(changes()) == 1
    assert cli("presence", "bob", "away").exit_code == 0
    assert changes()[-1] == ("bob", bob, "away")
    # His worklist by default; ann's is not his to read (as in the web worklist).
    assert "bob: nothing assigned" in cli("worklist").output
    peek = cli("worklist", "--me", "ann")
    assert peek.exit_code == 2 and "only a supervisor reads ann's" in peek.output

    # A supervisor sets anyone's, and the audit names the supervisor.
    assert cli("login", "--name", "sue", "--password-stdin", stdin="a long passphrase of sue\n").exit_code == 0
    assert cli("presence", "ann", "offline").exit_code == 0
    assert changes()[-1] == ("sue", ann, "offline")
    assert worker("ann").presence == Presence.OFFLINE
    assert cli("worklist", "--me", "ann").exit_code == 0

    # Signing out ends the session on the server: a copy of its file signs nobody in.
    kept = (settings.home / "cli-session").read_text()
    assert cli("logout").exit_code == 0
    (settings.home / "cli-session").write_text(kept)
    stale = cli("whoami")
    assert stale.exit_code == 1 and "signed out" in stale.output


def test_a_name_that_looks_like_markup_is_a_name_and_names_nobody_can_tell_apart_are_refused(cli):
    """'[/red]Evil' is printable: it is kept, and every command prints it as text (Rich raised
    MarkupError on it after saving, and `workers list` stayed broken). A name that reads as an
    existing worker's, or holds characters nobody sees, is refused."""
    r = cli("workers", "add", "[/red]Evil", "--skills", "order-entry:2")
    assert r.exit_code == 0, r.output
    for args in (("workers", "list"), ("worklist", "--me", "[/red]Evil"), ("presence", "[/red]Evil", "away")):
        shown = cli(*args)
        assert shown.exit_code == 0 and "[/red]Evil" in shown.output, (args, shown.output)
    assert worker("[/red]Evil").presence == Presence.AWAY
    assert cli("workers", "add", "Ana Lima").exit_code == 0
    for twin in ("ana lima", "ＡＮＡ LIMA", "Ana  Lima", " Ana Lima "):
        r = cli("workers", "add", twin)
        assert r.exit_code == 2 and ("reads as Ana Lima" in r.output or "already exists" in r.output), (twin, r.output)
    for hidden in ("Ana\u200bLima", "Ana Lima\u202e", "Bad\x1b[31mRed", "Line\nBreak"):
        r = cli("workers", "add", hidden)
        assert r.exit_code == 2 and "characters nobody sees" in " ".join(r.output.split()), (hidden, r.output)
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Worker)) == 2


def test_an_import_changes_only_the_columns_it_has(cli, tmp_path):
    """A CSV of names and capacities made a supervisor a rep with no skills and no shift."""
    assert (
        cli(
            "workers",
            "add",
            "Ana Lima",
            "--role",
            "supervisor",
            "--skills",
            "order-entry:3;credit:2",
            "--timezone",
            "Europe/Lisbon",
            "--shift-start",
            "09:00",
            "--shift-end",
            "17:00",
            "--work-days",
            "01234",
        ).exit_code
        == 0
    )
    bump = tmp_path / "bump.csv"
    bump.write_text("name,capacity\nAna Lima,5\nANA LIMA,4\n")
    r = cli("workers", "import", str(bump))
    assert "0 added, 1 updated, 1 refused" in r.output
    twin = tmp_path / "twin.csv"
    twin.write_text("name,capacity\nana lima,4\n")
    assert "0 added, 0 updated, 1 refused" in cli("workers", "import", str(twin)).output
    with session() as s:
        refused = {q.source: q for q in s.scalars(select(Quarantine))}
    assert refused["workers-csv:bump.csv"].reasons[0]["message"] == "'ANA LIMA' is already on line 2 (as 'Ana Lima')"
    assert "reads as 'Ana Lima', who exists" in refused["workers-csv:twin.csv"].reasons[0]["message"]
    ana = worker("Ana Lima")
    assert (ana.capacity, ana.role, ana.timezone, ana.shift_start, ana.work_days) == (
        5,
        "supervisor",
        "Europe/Lisbon",
        "09:00",
        "01234",
    )
    assert ana.skill_levels == {"order-entry": 3, "credit": 2}


def test_an_import_that_cannot_be_read_is_refused_whole_and_a_refused_row_is_kept_as_written(cli, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name,capacity\nJosé,3\n".encode("latin-1"))
    r = cli("workers", "import", str(latin))
    assert r.exit_code == 2 and "not UTF-8" in r.output and "Traceback" not in r.output
    twice = tmp_path / "twice.csv"
    twice.write_text("name,name,capacity\nX1,X2,3\n")
    r = cli("workers", "import", str(twice))
    assert r.exit_code == 2 and "appears twice" in r.output
    odd = tmp_path / "odd.csv"
    odd.write_text('name,capacity\n"Beta\u2028Two",3\n"Gamma\nline",-1\n', encoding="utf-8")
    r = cli("workers", "import", str(odd))
    with session() as s:
        [kept] = s.scalars(select(Quarantine).where(Quarantine.source == "workers-csv:odd.csv")).all()
    assert kept.raw == '"Gamma\nline",-1'  # the whole row, both of its lines, not another row's text


def test_two_imports_or_adds_at_the_same_moment_end_in_words_not_a_traceback(cli, tmp_path, routing_db):
    import subprocess
    import sys

    team = tmp_path / "team.csv"
    team.write_text("name,capacity\n" + "".join(f"Rep {n},2\n" for n in range(60)))
    env = {"HANDOFF_DATABASE_URL": routing_db, "HANDOFF_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "handoff.cli.main", "workers", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for args in (("import", str(team)), ("import", str(team)), ("add", "Race"), ("add", "Race"))
    ]
    outputs = [(p.returncode, out) for p in runs for out, _ in [p.communicate(timeout=120)]]
    assert all("Traceback" not in out for _, out in outputs), outputs
    assert [code for code, _ in outputs[:2]] == [0, 0]
    assert sorted(code for code, _ in outputs[2:]) == [0, 2]
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Worker)) == 61


def test_a_worker_needs_real_shift_hours_digits_and_time_zone(cli):
    for args, problem in (
        (("--shift-start", "09:00", "--shift-end", "09:00"), "has no hours"),
        (("--shift-start", "\u0660\u0669:00"), "not a time of day"),  # Arabic-Indic digits
        (("--timezone", "localtime"), "not a time zone name"),
        (("--timezone", "europe/berlin"), "not a time zone name"),
    ):
        r = cli("workers", "add", "Sam", *args)
        assert r.exit_code == 2 and problem in " ".join(r.output.split()), (args, r.output)
    assert cli("workers", "add", "Sam", "--shift-start", "22:00", "--shift-end", "06:00").exit_code == 0  # overnight


def test_a_look_alike_added_while_an_import_is_read_is_refused_at_the_write(cli, tmp_path, monkeypatch):
    """`ana lima` is added after the import read the workers and before it writes: the import's
    'Ana Lima' would give one person two names. The write checks again, in turn with every add:
    the row is refused and kept, the rest imported."""
    from handoff.cli import workers as workers_cli

    real = workers_cli.names_by_person
    calls = []

    def read_then_someone_adds(s):
        found = real(s)
        if not calls:  # the import's first look, at read time; the add lands right after it
            assert cli("workers", "add", "ana lima").exit_code == 0
        calls.append(found)
        return found

    monkeypatch.setattr(workers_cli, "names_by_person", read_then_someone_adds)
    csv_file = tmp_path / "late.csv"
    csv_file.write_text("name,capacity\nAna Lima,4\nBo Chen,2\n")
    r = cli("workers", "import", str(csv_file))
    assert r.exit_code == 1, r.output
    assert "1 added, 0 updated, 1 refused" in r.output and "reads as 'ana lima', who exists" in r.output
    assert len(calls) == 2  # read, then again at the write
    with session() as s:
        names = set(s.scalars(select(Worker.name)))
        [kept] = s.scalars(select(Quarantine).where(Quarantine.source == "workers-csv:late.csv")).all()
    assert names == {"ana lima", "Bo Chen"}
    assert kept.raw == "Ana Lima,4" and kept.reasons[0]["line"] == 2
