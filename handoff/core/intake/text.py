"""Showing what a sender wrote without letting it do harm: in a reason, a terminal or a column.

A value in a reason is quoted by a short prefix (a 50 MB name is not echoed back in full), and
text that came from outside is made printable before it is stored or shown: control
characters (terminal escapes, NUL, which PostgreSQL refuses), bidirectional overrides and
unpaired surrogates (which no database encodes) are written as escapes like ``\\x1b``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

SHOWN_CHARS = 60  # how much of a bad value a reason quotes
TEXT_NAME_CHARS = 80  # how much of a field name (a sender's key) a reason shows

# C0 and C1 controls, DEL, bidirectional embeddings/overrides/isolates, unpaired surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# The same, but keeping line breaks and tabs (for multi-line text such as a file shown whole).
_UNPRINTABLE_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep_lines: bool = False) -> str:
    """`text` with every unprintable character written as an escape (\\x1b, \\u202e)."""
    pattern = _UNPRINTABLE_IN_TEXT if keep_lines else _UNPRINTABLE
    return pattern.sub(_escape, text)


def unprintable_characters(text: str) -> list[str]:
    """The unprintable characters in `text`, as U+XXXX, first few only."""
    found = sorted({f"U+{ord(c):04X}" for c in _UNPRINTABLE.findall(text)})
    return found[:5]


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """At most `limit` characters of `text`, made printable, with "…" when cut."""
    return printable(text[:limit]) + ("…" if len(text) > limit else "")


def quote(value: Any) -> str:
    """A short, safe rendering of a value as the sender wrote it, for a reason."""
    if isinstance(value, str):
        shown = json.dumps(value[:SHOWN_CHARS], ensure_ascii=False)
        # json.dumps escapes controls already; surrogates and bidi overrides still need it
        shown = printable(shown)
        if len(value) > SHOWN_CHARS:
            shown = f'{shown[:-1]}…" ({len(value):,} characters)'
        return shown
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() > 200:  # str() of a huge int is slow, and refused over 4,300 digits
            return f"an integer of about {int(value.bit_length() * math.log10(2)):,} digits"
        return clip(str(value))
    if isinstance(value, float):
        return clip(repr(value))
    if isinstance(value, dict):
        return f"an object with {len(value):,} keys"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value):,} items"
    return clip(str(value))


def field_name(parts: tuple[Any, ...] | list[Any]) -> str:
    """A field's path as `lines.0.quantity`, made safe to show."""
    return clip(".".join(str(p) for p in parts), TEXT_NAME_CHARS) or "order"
