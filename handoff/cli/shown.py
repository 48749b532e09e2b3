"""Printing what people and other systems wrote on a Rich console without it doing anything:
`[/red]` in a customer id or a worker's name is text, not markup (Rich raised MarkupError on it,
so one such id broke `handoff report` for everyone), and a terminal escape is shown, not obeyed."""

from __future__ import annotations

from rich.markup import escape

from handoff.core.intake.text import printable


def shown(value: object, keep_lines: bool = False) -> str:
    """A value made safe for a Rich console: control characters as escapes, markup escaped."""
    return escape(printable(str(value), keep_lines=keep_lines))
