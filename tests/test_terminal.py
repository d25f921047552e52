"""Terminal text: escapes that cannot be mistaken, and widths in terminal columns."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from siemgen.terminal import (
    padded,
    printable,
    printable_json,
    printable_lines,
    printable_xml,
    shortened,
    width,
)

# Text a terminal would act on or show out of order: CSI, OSC 52 ended by BEL, a C1 CSI, DEL,
# a right-to-left override, a Unicode tag above U+FFFF, and a surrogate from a file name that
# is not UTF-8.
HOSTILE = "a\x1b[2Jb c\x1b]52;c;cHduZWQ=\x07d \x9b2J \x7f \u202eé \U000e0041 \udcff"


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


def test_printable_json_reads_back_exactly() -> None:
    text = printable_json(json.dumps({"name": HOSTILE}, indent=2, ensure_ascii=False))
    assert all(char == "\n" or char.isprintable() for char in text)
    assert "é" in text
    assert json.loads(text) == {"name": HOSTILE}


def test_printable_json_keeps_printable_text() -> None:
    text = json.dumps({"name": "é 中文"}, indent=2, ensure_ascii=False)
    assert printable_json(text) == text


def test_printable_xml_reads_back_exactly() -> None:
    # XML 1.0 cannot hold C0 controls or surrogates, so the value leaves them out.
    value = HOSTILE.replace("\x1b", "").replace("\x07", "").replace("\udcff", "") + "\t\r"
    element = ElementTree.Element("case", name=value)
    element.text = value
    text = printable_xml(ElementTree.tostring(element, encoding="unicode"))
    assert all(char == "\n" or char.isprintable() for char in text)
    parsed = ElementTree.fromstring(text)
    assert parsed.get("name") == value
    assert parsed.text == value
