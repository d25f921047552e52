"""SQL text helpers for the Athena backend: literals, LIKE patterns and field access."""

from __future__ import annotations

import re
from collections.abc import Callable

from sigma.types import Placeholder, SigmaString, SpecialChars

from siemgen.backends.athena_fields import AthenaField, FieldKind, JsonStep, SqlType
from siemgen.errors import UnsupportedFeatureError

LIKE_ESCAPE = "\\"

Leaf = Callable[[str], str]
"""Builds a predicate from a SQL expression that yields the value as VARCHAR."""


# The one code point whose full lowercase mapping has two code points (i and a combining dot).
_DOTTED_CAPITAL_I = "\u0130"


def fold_case(text: str) -> str:
    """Lower-case text one code point at a time, as Trino's and DuckDB's lower() do.

    Python's str.lower() applies Unicode's full mappings, which differ in two ways: İ (U+0130)
    becomes i plus U+0307, and a capital sigma at the end of a word becomes ς. A literal folded
    that way would never equal the column that lower() folds in the engine.
    """
    # NOTE: lower() in both engines also maps İ to i, so a rule for İ matches a plain i too.
    if text.isascii():
        return text.lower()
    return "".join("i" if char == _DOTTED_CAPITAL_I else char.lower() for char in text)


def outcome_condition(error_column: str, outcome: str) -> str:
    """Return SQL that is TRUE on CloudTrail records whose outcome is ``outcome``.

    The outcome is the one Elastic's AWS integration writes to ``event.outcome``. For a
    ``ConsoleLogin`` with a ``responseElements.ConsoleLogin`` value, it is that value in lower
    case. Otherwise it is ``failure`` when ``error_column`` or ``errormessage`` is set, and
    ``success`` when neither is. A failed sign-in has no error code, only that value and an
    error message.
    """
    sign_in = "json_extract_scalar(responseelements, '$.ConsoleLogin')"
    failed = f"({error_column} IS NOT NULL OR errormessage IS NOT NULL)"
    otherwise = failed if outcome == "failure" else f"NOT {failed}"
    return (
        f"CASE WHEN eventname = 'ConsoleLogin' AND {sign_in} IS NOT NULL "
        f"THEN lower({sign_in}) = {quote_literal(outcome)} ELSE {otherwise} END"
    )


_OPEN_UPPER_BOUND = re.compile(r"\{,(\d+)\}")


def explicit_lower_bounds(pattern: str) -> str:
    """Return a regular expression with each ``{,n}`` quantifier written ``{0,n}``.

    Python, with which pySigma checks a rule's pattern, and the Elastic translation read
    ``{,n}`` as ``{0,n}``, but RE2, which DuckDB runs, reads it as literal text. ``{0,n}``
    means the same in every engine. Escaped braces and braces in a class are left alone.
    """
    parts: list[str] = []
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            parts.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # A ] right after [ or [^ is a member of the class, not its end.
            start = index + 2 if pattern[index + 1 : index + 2] == "^" else index + 1
            if pattern[start : start + 1] == "]":
                parts.append(pattern[index : start + 1])
                index = start + 1
                continue
        elif char == "{" and parts:
            bound = _OPEN_UPPER_BOUND.match(pattern, index)
            if bound is not None:
                parts.append(f"{{0,{bound[1]}}}")
                index = bound.end()
                continue
        parts.append(char)
        index += 1
    return "".join(parts)


def quote_literal(text: str) -> str:
    """Quote text as a SQL string literal; doubling quotes is the only escape Trino needs."""
    return "'" + text.replace("'", "''") + "'"


def _check_placeholders(value: SigmaString, field: str | None) -> None:
    for part in value.s:
        if isinstance(part, Placeholder):
            raise UnsupportedFeatureError(
                f"placeholder %{part.name}% (expand modifier) has no value",
                field=field,
                hint="pass its values to athena_pipeline(placeholders={...}) or remove the "
                "expand modifier",
            )


def plain_text(value: SigmaString, field: str | None) -> str | None:
    """Return the value as plain text, or None when it contains a wildcard."""
    _check_placeholders(value, field)
    if value.contains_special():
        return None
    return "".join(part for part in value.s if isinstance(part, str))


def like_pattern(value: SigmaString, field: str | None) -> str:
    """Turn a Sigma string with wildcards into a LIKE pattern escaped with ``\\``."""
    _check_placeholders(value, field)
    pattern: list[str] = []
    for part in value.s:
        if part is SpecialChars.WILDCARD_MULTI:
            pattern.append("%")
        elif part is SpecialChars.WILDCARD_SINGLE:
            pattern.append("_")
        elif isinstance(part, str):
            for char in part:
                if char in "%_\\":
                    pattern.append(LIKE_ESCAPE)
                pattern.append(char)
    return "".join(pattern)


def column_sql(path: str) -> str:
    """Return a column or struct member path as SQL (the parts are checked identifiers)."""
    return path


def json_path(steps: tuple[JsonStep, ...]) -> str:
    """Return JSON steps as a JSONPath string for ``json_extract``, starting at ``$``."""
    return "$" + "".join(step.json_path() for step in steps)


class FieldRenderer:
    """Builds predicates on one ``AthenaField``, hiding how the table stores it."""

    def __init__(self, athena_field: AthenaField, original: str) -> None:
        self.field = athena_field
        self.original = original

    def value(self, leaf: Leaf, construct: str) -> str:
        """Apply ``leaf`` to the field's value as VARCHAR, searching arrays where needed."""
        athena_field = self.field
        if athena_field.kind is FieldKind.COLUMN:
            if athena_field.sql_type is SqlType.TIMESTAMP:
                raise UnsupportedFeatureError(
                    f"{construct} on field {self.original!r} is not supported because its "
                    "Athena column is a timestamp",
                    field=self.original,
                    hint="compare it with the minute, hour, day, week, month or year modifier",
                )
            if athena_field.sql_type is SqlType.BOOLEAN:
                return leaf(f"CAST({column_sql(athena_field.column)} AS VARCHAR)")
            return leaf(column_sql(athena_field.column))
        if athena_field.kind is FieldKind.ARRAY:
            return f"any_match({athena_field.column}, r -> {leaf('r.' + athena_field.member)})"
        if athena_field.kind is FieldKind.JSON:
            return self._json(
                athena_field.column,
                athena_field.steps,
                lambda node, path: leaf(f"json_extract_scalar({node}, {quote_literal(path)})"),
                1,
            )
        raise UnsupportedFeatureError(
            f"{construct} on field {self.original!r} is not supported: it is the derived "
            "status field, which matches only the plain values success and failure",
            field=self.original,
            hint="write status: success or status: failure",
        )

    def present(self) -> str:
        """Return a predicate that is true where the field has a non-null value."""
        athena_field = self.field
        if athena_field.kind is FieldKind.COLUMN:
            return f"{column_sql(athena_field.column)} IS NOT NULL"
        if athena_field.kind is FieldKind.ARRAY:
            return f"any_match({athena_field.column}, r -> r.{athena_field.member} IS NOT NULL)"
        if athena_field.kind is FieldKind.JSON:
            return self._json(
                athena_field.column,
                athena_field.steps,
                lambda node, path: (
                    f"json_format({node}) <> 'null'"
                    if path == "$"
                    else f"json_format(json_extract({node}, {quote_literal(path)})) <> 'null'"
                ),
                1,
            )
        raise UnsupportedFeatureError(
            f"exists and null on field {self.original!r} are not supported: it is the derived "
            "status field, which always has a value",
            field=self.original,
            hint="write status: success or status: failure",
        )

    def _json(
        self, node: str, steps: tuple[JsonStep, ...], leaf: Callable[[str, str], str], depth: int
    ) -> str:
        """Walk the JSON steps, opening ``any_match`` over each array marked for searching."""
        for position, step in enumerate(steps):
            if step.each:
                array = f"json_extract({node}, {quote_literal(json_path(steps[: position + 1]))})"
                variable = f"e{depth}"
                inner = self._json(variable, steps[position + 1 :], leaf, depth + 1)
                return f"any_match(try_cast({array} AS ARRAY(JSON)), {variable} -> {inner})"
        return leaf(node, json_path(steps))
