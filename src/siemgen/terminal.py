"""Untrusted text shown on a terminal, so that it can neither control it nor pass for other text.

Log records, file names and rule files are untrusted input. An escape sequence in a value
could retitle or redraw the terminal, a newline could print what looks like another warning,
and a bidirectional override could reorder what the analyst reads.
"""

from __future__ import annotations


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
