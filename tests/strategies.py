"""Hypothesis strategies for hostile rule values, and the model of what a value means.

A Sigma string value is modelled as a pattern: a tuple of literal text and wildcards. The fuzz
tests read the same model back out of each generated query, so they can compare the pattern
a query matches with the pattern the rule meant.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


class Wild(Enum):
    """A Sigma wildcard: ``*`` matches any run of characters, ``?`` exactly one."""

    MULTI = "*"
    SINGLE = "?"


Part = str | Wild
Pattern = tuple[Part, ...]

MODIFIERS = ("plain", "contains", "startswith", "endswith")

# Characters and sequences that mean something in at least one target language or in the
# page templates, plus text that tends to break parsers and case folding.
HOSTILE_PIECES = (
    "'", '"', "\\", "*", "?", "\\*", "\\?", "\\\\", "+", "-", "=", "&&", "||", "!", "(", ")",
    "{", "}", "[", "]", "^", "~", ":", "/", "<", ">", "<=", ">=", " ", "|", "`", "```", "``",
    "--", "/*", "*/", ";", "%", "_", "$", "#", "@", "&", ",", ".", "\n", "\r", "\t", "\r\n",
    "\x00", "\x01", "\x08", "\x0c", "\x1b", "\x1f", "\x7f", "\u0085", "\u2028", "\u3000",
    "\u200f", "\ufeff", "é", "ß", "İ", "ﬁ", "中文", "😀", "AND", "OR", "NOT", "TO", "and",
    "or", "not", "like", "in", "' OR '1'='1", "'; DROP TABLE cloudtrail_logs; --",
    '" | delete', "| delete", "{{ 7*7 }}", "{% if x %}", "{#", "<script>", "${x}", '"""',
    "\\u{41}", "\\n", "\\t", "\\x", "/\\", "\\/", "`rm`", "[search x]", "```c```",
)  # fmt: skip

_HARMLESS = "zq"


def fuzz_settings(default_examples: int = 30) -> settings:
    """Return the Hypothesis settings for a fuzz test.

    The normal suite runs ``default_examples`` derandomized examples, so every run checks the
    same values. ``SIEMGEN_FUZZ_EXAMPLES`` raises the count and switches to random search,
    which is how ``benchmarks/fuzz.py`` runs the same tests at scale.
    """
    requested = os.environ.get("SIEMGEN_FUZZ_EXAMPLES")
    return settings(
        max_examples=int(requested) if requested else default_examples,
        derandomize=not requested,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=bool(requested),
    )


def hostile_text(max_pieces: int = 8) -> st.SearchStrategy[str]:
    """Generate text made of hostile pieces, arbitrary characters and, sometimes, a long run."""
    short = st.lists(
        st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=4)), max_size=max_pieces
    ).map("".join)
    long_run = st.builds(
        lambda piece, count: piece * count,
        st.sampled_from((*HOSTILE_PIECES, "a", "ab")),
        st.integers(min_value=300, max_value=2500),
    )
    return st.one_of(short, short, short, long_run)


def patterns(allow_wildcards: bool = True) -> st.SearchStrategy[Pattern]:
    """Generate a pattern of hostile literal text with wildcards between the pieces."""
    literal = hostile_text(max_pieces=4)
    part: st.SearchStrategy[Part] = (
        st.one_of(literal, literal, st.sampled_from((Wild.MULTI, Wild.SINGLE)))
        if allow_wildcards
        else literal
    )
    return st.lists(part, max_size=5).map(canonical)


def canonical(parts: Iterable[Part]) -> Pattern:
    """Merge adjacent text, drop empty text and write each run of wildcards in one order.

    In a run of wildcards only the number of ``?`` and whether any ``*`` is present matter,
    so ``*?*`` and ``?*`` are the same pattern.
    """
    result: list[Part] = []
    run: list[Wild] = []

    def flush_run() -> None:
        singles = sum(1 for wild in run if wild is Wild.SINGLE)
        result.extend([Wild.SINGLE] * singles)
        if Wild.MULTI in run:
            result.append(Wild.MULTI)
        run.clear()

    for part in parts:
        if isinstance(part, Wild):
            run.append(part)
            continue
        if not part:
            continue
        flush_run()
        if result and isinstance(result[-1], str):
            result[-1] += part
        else:
            result.append(part)
    flush_run()
    return tuple(result)


def sigma_text(pattern: Sequence[Part]) -> str:
    """Write a pattern as a Sigma string value: literal ``*``, ``?`` and ``\\`` escaped."""
    out = []
    for part in pattern:
        if isinstance(part, Wild):
            out.append(part.value)
        else:
            out.append(re.sub(r"([*?\\])", r"\\\1", part))
    return "".join(out)


def with_modifier(pattern: Pattern, modifier: str) -> Pattern:
    """Return the pattern a value means once a Sigma modifier has added its wildcards."""
    if modifier == "contains":
        return canonical((Wild.MULTI, *pattern, Wild.MULTI))
    if modifier == "startswith":
        return canonical((*pattern, Wild.MULTI))
    if modifier == "endswith":
        return canonical((Wild.MULTI, *pattern))
    return pattern


def harmless(pattern: Pattern) -> Pattern:
    """Return the same pattern with every piece of text replaced by a harmless word."""
    return tuple(_HARMLESS if isinstance(part, str) else part for part in pattern)


def literal_text(pattern: Pattern) -> str:
    """Return all literal text of a pattern joined, for checks on the characters it uses."""
    return "".join(part for part in pattern if isinstance(part, str))


def has_wildcards(pattern: Pattern) -> bool:
    """Tell whether the pattern contains a wildcard."""
    return any(isinstance(part, Wild) for part in pattern)


def to_regex(pattern: Pattern, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile the pattern into a Python regular expression matching whole strings."""
    pieces = []
    for part in pattern:
        if part is Wild.MULTI:
            pieces.append(".*")
        elif part is Wild.SINGLE:
            pieces.append(".")
        else:
            pieces.append(re.escape(str(part)))
    body = "".join(pieces)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(body, flags)


def instance(pattern: Pattern) -> str:
    """Return a short string the pattern matches: ``*`` stands for nothing, ``?`` for Q."""
    pieces = []
    for part in pattern:
        if part is Wild.SINGLE:
            pieces.append("Q")
        elif isinstance(part, str):
            pieces.append(part)
    return "".join(pieces)


def near_miss(text: str, position: int) -> str:
    """Return ``text`` with the character at ``position`` replaced by a different one."""
    if not text:
        return "x"
    index = position % len(text)
    char = text[index]
    replacement = "x" if char != "x" else "y"
    return text[:index] + replacement + text[index + 1 :]


# Regular expressions: hostile literal text escaped for PCRE, joined with a few constructs.
PCRE_META = frozenset(".^$|?*+()[]{}\\")
_REGEX_CONSTRUCTS = (".*", ".+", ".", "[a-z]", "[0-9]+", "(ab|cd)", "x?", "a{2}")


def pcre_escape(text: str) -> str:
    """Escape the PCRE metacharacters of ``text`` so the regex matches exactly that text."""
    return "".join("\\" + char if char in PCRE_META else char for char in text)


@dataclass(frozen=True)
class RegexCase:
    """A generated regular expression and, when it has no constructs, the text it matches."""

    regex: str
    literal: str | None


def regexes() -> st.SearchStrategy[RegexCase]:
    """Generate regular expressions made of escaped hostile text and common constructs."""
    literal_piece = hostile_text(max_pieces=4).map(lambda text: ("text", text or "a"))
    construct = st.sampled_from(_REGEX_CONSTRUCTS).map(lambda text: ("construct", text))
    pieces = st.lists(st.one_of(literal_piece, literal_piece, construct), min_size=1, max_size=5)
    return pieces.map(_regex_case)


def _regex_case(pieces: list[tuple[str, str]]) -> RegexCase:
    regex = "".join(pcre_escape(text) if kind == "text" else text for kind, text in pieces)
    literal = None
    if all(kind == "text" for kind, _ in pieces):
        literal = "".join(text for _, text in pieces)
    return RegexCase(regex, literal)


# Field names: JSON keys under requestParameters, which are passed through to the targets.
FIELD_KEY_PIECES = (
    " ", '"', "'", "`", ".", "[", "]", "{", "}", ":", "\\", "*", "?", "=", "|", "(", ")", "-",
    "<", ">", "/", "#", "@", "$", ",", "\n", "\t", "\x00", "é", "中", "😀", "AND", "a", "B",
    "_", "0", "1", "[]",
)  # fmt: skip


def field_keys() -> st.SearchStrategy[str]:
    """Generate a JSON key path (keys joined with dots) with hostile characters in the keys."""
    key = st.lists(
        st.one_of(st.sampled_from(FIELD_KEY_PIECES), st.text(string.ascii_letters, max_size=3)),
        min_size=1,
        max_size=6,
    ).map("".join)
    return key.filter(lambda text: text.strip(".") != "" and ".." not in text)


def rule_data(detection: dict[str, Any], title: str = "Fuzz rule") -> dict[str, Any]:
    """Return a minimal CloudTrail Sigma rule as data, with ``detection`` as given."""
    return {
        "title": title,
        "id": "5f4d5e1e-8c6b-4b8e-9c8e-1a2b3c4d5e6f",
        "status": "test",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": detection,
        "level": "low",
    }
