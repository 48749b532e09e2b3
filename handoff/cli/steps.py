"""`handoff complete`: a rep fills in a waiting step's form from the terminal, as the person they
signed in as (`handoff login`); the step's flow run then carries on.
"""

from __future__ import annotations

import typer
from rich.console import Console

from handoff.core.settings import settings

console = Console()


def complete(
    item_id: int = typer.Argument(..., help="The work item to complete (see `handoff worklist`)."),
    as_person: str | None = typer.Option(None, "--as", help="Must be who you signed in as (`handoff login`)."),
    values: list[str] = typer.Option([], "--set", help="A form field, as field=value (asked for if missing)."),
    decision: str | None = typer.Option(None, help="Shortcut for --set decision=…"),
    note: str | None = typer.Option(None, help="Shortcut for --set note=…"),
    override_reason: str | None = typer.Option(None, help="A supervisor completing someone else's item: why."),
) -> None:
    """Fill in a waiting step's form as the signed-in person; its flow run then carries on."""
    from rich.markdown import Markdown

    from handoff.cli.identity import signed_in
    from handoff.core.identity.completion_proof import ProofTooLong
    from handoff.core.identity.sessions import NotSignedIn
    from handoff.core.routing.router import NotAllowed
    from handoff.runtime import prefect_server
    from handoff.runtime.steps import StepNotReady
    from handoff.runtime.steps import ValidationError
    from handoff.runtime.steps import complete_step
    from handoff.runtime.steps import step_form

    try:
        person = signed_in().name
    except NotSignedIn as why:
        console.print(f"[red]Refused:[/red] {why}: sign in first with `handoff login`.")
        raise typer.Exit(2) from None
    if as_person is not None and as_person != person:
        console.print(f"[red]Refused:[/red] you are signed in as {person}, not {as_person}.")
        raise typer.Exit(2)
    given = dict(v.split("=", 1) for v in values if "=" in v)
    given.update({k: v for k, v in {"decision": decision, "note": note}.items() if v is not None})
    try:
        with prefect_server.using(settings.prefect_ui_url):
            form, description = step_form(item_id)
            if description:
                console.print(Markdown(description))
            answer = ask_for_fields(form, given)
            recorded = complete_step(
                item_id, answer, by=person, override_reason=override_reason, via="cli", confirm_seconds=30.0
            )
    except NotAllowed as refused:
        console.print(f"[red]Refused:[/red] {refused}")
        raise typer.Exit(2) from None
    except ValidationError as bad:
        for err in bad.errors():
            console.print(f"[red]{'.'.join(map(str, err['loc'])) or 'form'}[/red]: {err['msg']}")
        raise typer.Exit(2) from None
    except StepNotReady as not_ready:
        console.print(f"[red]{not_ready}[/red]")
        raise typer.Exit(2) from None
    except ProofTooLong as too_long:
        console.print(f"[red]--override-reason[/red]: {too_long}")
        raise typer.Exit(2) from None
    if recorded:
        console.print(f"Work item {item_id} completed by {person}; its flow run carries on.")
    else:  # not recorded within the wait: `handoff worklist` shows a refusal if one comes
        console.print(f"Work item {item_id} sent by {person}; its flow run records it shortly.")


def ask_for_fields(form, given: dict[str, str]) -> dict:  # noqa: ANN001
    """Each field of the form: from --set, else asked in the terminal by its type."""
    import typing

    answers: dict = {}
    for name, field in form.model_fields.items():
        if name in ("completed_by", "completion_proof"):  # handoff fills these in: who you are, signed
            continue
        if name in given:
            answers[name] = given[name]
            continue
        label = f"{name} ({field.description})" if field.description else name
        kind = field.annotation
        if typing.get_origin(kind) is typing.Literal:
            answers[name] = choose(label, [str(c) for c in typing.get_args(kind)])
        elif kind is bool:
            answers[name] = typer.confirm(label)
        elif kind is int:
            answers[name] = typer.prompt(label, type=int)
        else:
            answers[name] = typer.prompt(label, default="", show_default=False)
    return answers


def choose(label: str, choices: list[str]) -> str:
    while True:
        value = typer.prompt(f"{label} [{'/'.join(choices)}]").strip()
        if value in choices:
            return value
        console.print(f"[red]choose one of: {', '.join(choices)}[/red]")


def register(app: typer.Typer) -> None:
    """Mount `complete` on the handoff CLI."""
    app.command("complete")(complete)


__all__ = ["ask_for_fields", "complete", "register"]
