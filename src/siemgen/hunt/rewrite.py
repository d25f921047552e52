"""Rewrite DuckDB conditions so that DuckDB evaluates less of them on each row.

The hunt runs many rules over every record. DuckDB evaluates a CASE branch only on the rows
that reach it, so AND and OR become CASE wherever that keeps which rows are TRUE. A rule's
screen, derived here too, lets the scan skip most records before it evaluates any rule.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from siemgen.errors import ConversionError
from siemgen.hunt.screen import Screen


def _truth(node: exp.Expr) -> exp.Expr:
    """Rewrite AND and OR as CASE so DuckDB skips the right side when the left decides it.

    DuckDB evaluates both sides of AND and OR on every row when the result is a column, but
    a CASE branch only on the rows that reach it. The rewrite keeps which rows are TRUE, not
    the NULLs, so it applies only where the result is read as a truth value: the top of a
    condition and the first argument of ``COALESCE(x, FALSE)``.
    """
    if isinstance(node, exp.Paren):
        return _truth(node.this)
    if isinstance(node, exp.And):
        return exp.Case(
            ifs=[exp.If(this=_truth(node.this), true=_truth(node.expression))],
            default=exp.false(),
        )
    if isinstance(node, exp.Or):
        return exp.Case(
            ifs=[exp.If(this=_truth(node.this), true=exp.true())],
            default=_truth(node.expression),
        )
    if isinstance(node, exp.Not):
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        if _is_false_coalesce(inner):
            return exp.Not(this=_coalesce_truth(inner))
        return node
    if _is_false_coalesce(node):
        return _coalesce_truth(node)
    return node


def _is_false_coalesce(node: exp.Expr) -> bool:
    if not isinstance(node, exp.Coalesce):
        return False
    rest = node.expressions
    return len(rest) == 1 and isinstance(rest[0], exp.Boolean) and not rest[0].this


def _coalesce_truth(node: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=_truth(node.this), expressions=[exp.false()])


def _parse(condition: str) -> exp.Expr:
    """Parse a DuckDB condition, raising ConversionError when it does not parse."""
    try:
        return sqlglot.parse_one(condition, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise ConversionError(f"the DuckDB condition does not parse: {error}") from error


def short_circuit(condition: str) -> str:
    """Return a DuckDB condition that is TRUE on exactly the rows where ``condition`` is."""
    return str(_truth(_parse(condition)).sql(dialect="duckdb"))


# When a screen keeps one test of an AND, a test on a column listed here wins, in this order.
# An event source is one AWS service with many event names, so a test of the event name
# usually lets fewer records through.
_SCREEN_COLUMNS = ("eventname", "eventsource")
_COLUMN_TESTS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.In,
    exp.Like,
    exp.ILike,
    exp.Escape,
    exp.Is,
    exp.Not,
)
_TEST_PARTS = (*_COLUMN_TESTS, exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Paren)
_TEST_FUNCTIONS = (exp.Lower, exp.Upper)


def _tested_column(node: exp.Expr) -> str | None:
    """Return the column that ``node`` compares with literals, or None if it is no such test.

    A test may apply LOWER or UPPER to its column and nothing else, because a macro, a cast
    or a second column makes the node too costly, or too uncertain, to screen with.
    """
    if not isinstance(node, _COLUMN_TESTS):
        return None
    columns = set()
    for part in node.walk():
        if isinstance(part, exp.Column):
            columns.add(part.sql(dialect="duckdb").lower())
        elif not isinstance(part, (*_TEST_PARTS, *_TEST_FUNCTIONS)):
            return None
    return columns.pop() if len(columns) == 1 else None


def _test_rank(node: exp.Expr) -> int:
    column = _tested_column(node)
    return _SCREEN_COLUMNS.index(column) if column in _SCREEN_COLUMNS else len(_SCREEN_COLUMNS)


def _screen_tests(node: exp.Expr) -> list[exp.Expr] | None:
    """Return column tests such that one is TRUE wherever ``node`` is TRUE, or None."""
    if isinstance(node, exp.Paren):
        return _screen_tests(node.this)
    if isinstance(node, exp.And):
        sides = [_screen_tests(node.this), _screen_tests(node.expression)]
        found = [tests for tests in sides if tests is not None]
        # Tests on the columns ranked first win, since screens merge their values into one
        # list. Then fewer tests win, since each other test costs a pass over its column.
        return min(found, key=lambda tests: (max(map(_test_rank, tests)), len(tests)), default=None)
    if isinstance(node, exp.Or):
        left, right = _screen_tests(node.this), _screen_tests(node.expression)
        return None if left is None or right is None else left + right
    if _is_false_coalesce(node):
        return _screen_tests(node.this)
    return [node] if _tested_column(node) is not None else None


def _string_values(node: exp.Expr) -> tuple[str, tuple[str, ...]] | None:
    """Return the column and strings of ``column = 'x'`` or ``column IN ('x', ...)``."""
    if isinstance(node, exp.EQ):
        column, literals = node.this, [node.expression]
    elif isinstance(node, exp.In) and not node.args.get("query"):
        column, literals = node.this, node.expressions
    else:
        return None
    if not isinstance(column, exp.Column) or not all(
        isinstance(literal, exp.Literal) and literal.is_string for literal in literals
    ):
        return None
    return column.sql(dialect="duckdb"), tuple(literal.this for literal in literals)


def screen(condition: str) -> Screen | None:
    """Return the screen of a DuckDB condition, or None when it has none.

    Each AND keeps the tests of one side, and each OR needs tests on both sides. So a
    condition that only calls a macro, for example, has no screen.
    """
    tests = _screen_tests(_parse(condition))
    if tests is None:
        return None
    values: dict[str, list[str]] = {}
    others = []
    for test in tests:
        strings = _string_values(test)
        if strings is None:
            others.append(str(test.sql(dialect="duckdb")))
        else:
            values.setdefault(strings[0], []).extend(strings[1])
    return Screen(
        values=tuple((column, tuple(found)) for column, found in values.items()),
        tests=tuple(others),
    )
