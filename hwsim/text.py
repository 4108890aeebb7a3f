"""Text from users' files as a terminal should show it (no imports beyond the standard library, so
the CLI's error path stays cheap)."""
from __future__ import annotations


def printable(text: object) -> str:
    """Text from a user's file (node, model, config names) as the terminal should show it: control
    and other non-printable characters written as escapes (ESC -> \\x1b, newline -> \\n), so a
    name cannot move the cursor, recolour the terminal or break a table row or a one-line error."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))
