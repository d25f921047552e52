"""Terminal text: escapes that cannot be mistaken, and widths in terminal columns."""

from __future__ import annotations

import pytest

from siemgen.terminal import padded, printable, printable_lines, shortened, width


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("new\nline", "new\\nline"),
        ("esc\x1b[2J", "esc\\x1b[2J"),
        ("bidi\u202eoverride", "bidi\\u202eoverride"),
        ("back\\slash", "back\\\\slash"),
        ("é 中文", "é 中文"),
    ],
)
def test_printable_escapes(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_escape_and_literal_differ() -> None:
    assert printable("a\x00b") != printable("a\\x00b")


def test_width_counts_wide_and_combining() -> None:
    assert width("abc") == 3
    assert width("中文") == 4
    assert width("e\u0301") == 1


def test_shortened_keeps_short_text() -> None:
    assert shortened("abc", 3) == "abc"


def test_shortened_cuts_to_limit() -> None:
    assert shortened("abcdef", 4) == "abc…"
    assert shortened("中文中文", 5) == "中文…"
    assert width(shortened("中文中文", 5)) <= 5


def test_padded_fills_columns() -> None:
    assert padded("中", 4) == "中  "
    assert padded("abcd", 2) == "abcd"


def test_printable_lines_keeps_line_breaks() -> None:
    assert printable_lines("one\x1b[2J\ntwo\tthree") == "one\\x1b[2J\ntwo\\tthree"
