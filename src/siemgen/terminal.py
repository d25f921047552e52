"""Untrusted text shown on a terminal, so that it can neither control it nor pass for other text.

Log records, file names and rule files are untrusted input. An escape sequence in a value
could retitle or redraw the terminal, a newline could print what looks like another warning,
and a bidirectional override could reorder what the analyst reads.
"""

from __future__ import annotations

import unicodedata


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """Return ``number`` and ``noun``, in the plural unless the number is one."""
    if number == 1:
        return f"1 {noun}"
    return f"{number} {plural or noun + 's'}"


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


def printable_json(json_text: str) -> str:
    """Return JSON text with each character that is not printable written as a ``\\u`` escape.

    A JSON parser reads the escape as the same character, so every value stays exact. Outside
    strings, JSON text has no such characters other than the line breaks of indentation.
    """
    if json_text.isascii() and "\x7f" not in json_text:
        return json_text
    return "".join(_json_escaped(char) for char in json_text)


def _json_escaped(char: str) -> str:
    if char == "\n" or char.isprintable():
        return char
    # Characters above U+FFFF take two escapes, a UTF-16 surrogate pair, as JSON spells them.
    encoded = char.encode("utf-16-be", "surrogatepass")
    units = [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]
    return "".join(f"\\u{unit:04x}" for unit in units)


def printable_xml(xml_text: str) -> str:
    """Return XML text with each character that is not printable written as a reference.

    An XML parser reads a reference such as ``&#x202e;`` as the same character, so every value
    stays exact. The caller must first replace the characters that XML 1.0 forbids even as
    references: the C0 controls other than tab, line feed and carriage return, surrogates,
    U+FFFE and U+FFFF. Line breaks stay as they are.
    """
    return "".join(
        char if char == "\n" or char.isprintable() else f"&#x{ord(char):x};" for char in xml_text
    )


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
