"""Untrusted text shown on a terminal, so that it can neither control it nor pass for other text.

Log records, file names and rule files are untrusted input. An escape sequence in a value
could retitle or redraw the terminal, a newline could print what looks like another warning,
and a bidirectional override could reorder what the analyst reads.
"""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """Return ``text`` with control and format characters written as Python escapes.

    Backslashes are doubled, so an escape in the result always stands for one character and
    never for text that was already written that way.
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    return char.encode("unicode_escape").decode("ascii")


def printable_lines(text: str) -> str:
    """Return ``text`` with each line escaped by ``printable``, keeping the line breaks."""
    return "\n".join(printable(line) for line in text.split("\n"))


def width(text: str) -> int:
    """Return the number of terminal columns ``text`` takes, wide East Asian characters two."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def shortened(text: str, limit: int) -> str:
    """Return ``text`` cut to at most ``limit`` columns, ending in an ellipsis when cut."""
    if width(text) <= limit:
        return text
    kept = []
    used = 1  # the ellipsis
    for char in text:
        used += _char_width(char)
        if used > limit:
            break
        kept.append(char)
    return "".join(kept) + "…"


def padded(text: str, columns: int) -> str:
    """Return ``text`` followed by spaces up to ``columns`` terminal columns."""
    return text + " " * max(columns - width(text), 0)
