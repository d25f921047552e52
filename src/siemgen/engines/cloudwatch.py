"""Evaluate CloudWatch Logs JSON filter patterns on CloudTrail records.

A CIS monitoring control is a metric filter on the CloudTrail log group, so siemgen runs each
rule's ``cloudwatch.filter_pattern`` over the rule's test events the same way it runs the SIEM
queries. This module covers the JSON form of the filter pattern syntax, as the CloudWatch Logs
User Guide describes it ("Filter and pattern syntax", JSON log events):

- a pattern is ``{ EXPRESSION }``;
- a selector is ``$`` followed by ``.name`` and ``[index]`` steps (``$.a.b``, ``$.users[0].id``);
- a string comparison is ``SELECTOR = VALUE`` or ``SELECTOR != VALUE``. The value is quoted
  or unquoted, ``*`` at its start or end is a wildcard, and ``*`` alone matches any value;
- a numeric comparison is ``SELECTOR OPERATOR NUMBER`` with ``<``, ``>``, ``<=``, ``>=``,
  ``=`` or ``!=``;
- a check is ``SELECTOR IS NULL``, ``IS TRUE``, ``IS FALSE`` or ``NOT EXISTS``;
- ``&&`` binds tighter than ``||``, and parentheses group.

Comparisons are case sensitive. A selector that points at an object or an array matches
neither ``=`` nor ``!=``. Text patterns, space-delimited patterns and ``%regex%`` values are
not supported and raise FilterPatternError.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from siemgen.errors import SiemgenError

logger = logging.getLogger(__name__)

# CloudWatch Logs limits a filter pattern to 1024 characters.
MAX_PATTERN_LENGTH = 1024


class FilterPatternError(SiemgenError):
    """A CloudWatch Logs filter pattern is invalid or uses syntax siemgen cannot evaluate."""


@dataclass(frozen=True)
class Selector:
    """A JSON property selector such as ``$.userIdentity.type``: names and array indexes."""

    steps: tuple[str | int, ...]
    text: str


@dataclass(frozen=True)
class Comparison:
    """``SELECTOR OPERATOR VALUE``, with ``number`` set when the value is a numeric literal."""

    selector: Selector
    operator: str
    value: str
    quoted: bool
    number: float | None


@dataclass(frozen=True)
class Check:
    """``SELECTOR IS NULL``, ``IS TRUE``, ``IS FALSE`` or ``NOT EXISTS``."""

    selector: Selector
    kind: str


@dataclass(frozen=True)
class And:
    """All of the terms match."""

    terms: tuple[Expression, ...]


@dataclass(frozen=True)
class Or:
    """Any of the terms matches."""

    terms: tuple[Expression, ...]


Expression = Comparison | Check | And | Or


@dataclass(frozen=True)
class FilterPattern:
    """A parsed JSON filter pattern and the text it came from."""

    text: str
    expression: Expression


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_INDEX = re.compile(r"\[(\d+)\]")
_ORDERING = ("<", ">", "<=", ">=")
_MISSING = object()


class _Lexer:
    """Split a pattern into tokens: punctuation, operators, keywords, selectors and values."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def error(self, message: str) -> FilterPatternError:
        return FilterPatternError(
            f"invalid filter pattern {self.text!r}: {message} at character {self.position + 1}",
            hint="see the JSON filter pattern syntax in the CloudWatch Logs User Guide",
        )

    def skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position].isspace():
            self.position += 1

    def peek(self, *tokens: str) -> str | None:
        self.skip_space()
        for token in tokens:
            if self.text.startswith(token, self.position):
                return token
        return None

    def expect(self, token: str) -> None:
        if self.peek(token) is None:
            raise self.error(f"expected {token!r}")
        self.position += len(token)

    def keyword(self, word: str) -> bool:
        self.skip_space()
        end = self.position + len(word)
        if self.text.startswith(word, self.position) and (
            end == len(self.text) or not (self.text[end].isalnum() or self.text[end] == "_")
        ):
            self.position = end
            return True
        return False

    def selector(self) -> Selector:
        self.skip_space()
        start = self.position
        if not self.text.startswith("$", start):
            raise self.error("expected a selector starting with '$'")
        self.position += 1
        steps: list[str | int] = []
        while self.position < len(self.text) and self.text[self.position] in ".[":
            if self.text[self.position] == ".":
                self.position += 1
                match = _NAME.match(self.text, self.position)
                if match is None:
                    raise self.error("expected a property name after '.'")
                steps.append(match.group())
                self.position = match.end()
            else:
                match = _INDEX.match(self.text, self.position)
                if match is None or not steps:
                    raise self.error("expected '[NUMBER]' after a property name")
                steps.append(int(match.group(1)))
                self.position = match.end()
        if not steps:
            raise self.error("a selector needs at least one property after '$'")
        return Selector(tuple(steps), self.text[start : self.position])

    def value(self) -> tuple[str, bool]:
        self.skip_space()
        if self.text.startswith('"', self.position):
            return self._quoted(), True
        start = self.position
        while self.position < len(self.text):
            char = self.text[self.position]
            if (
                char.isspace()
                or char in '(){}"'
                or self.text.startswith(("&&", "||"), self.position)
            ):
                break
            self.position += 1
        if self.position == start:
            raise self.error("expected a value")
        return self.text[start : self.position], False

    def _quoted(self) -> str:
        # NOTE: a backslash escapes the next character, as in JSON strings. The user guide
        # defines no escapes inside quoted values, so this is siemgen's assumption.
        self.position += 1
        chars: list[str] = []
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "\\" and self.position + 1 < len(self.text):
                chars.append(self.text[self.position + 1])
                self.position += 2
                continue
            if char == '"':
                self.position += 1
                return "".join(chars)
            chars.append(char)
            self.position += 1
        raise self.error("unterminated quoted string")


class _Parser:
    def __init__(self, text: str) -> None:
        self.lexer = _Lexer(text)

    def parse(self) -> Expression:
        self.lexer.expect("{")
        expression = self.disjunction()
        self.lexer.expect("}")
        self.lexer.skip_space()
        if self.lexer.position != len(self.lexer.text):
            raise self.lexer.error("unexpected text after the closing '}'")
        return expression

    def disjunction(self) -> Expression:
        terms = [self.conjunction()]
        while self.lexer.peek("||"):
            self.lexer.position += 2
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def conjunction(self) -> Expression:
        terms = [self.term()]
        while self.lexer.peek("&&"):
            self.lexer.position += 2
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def term(self) -> Expression:
        if self.lexer.peek("("):
            self.lexer.position += 1
            expression = self.disjunction()
            self.lexer.expect(")")
            return expression
        return self.condition()

    def condition(self) -> Expression:
        selector = self.lexer.selector()
        if self.lexer.keyword("IS"):
            for kind in ("NULL", "TRUE", "FALSE"):
                if self.lexer.keyword(kind):
                    return Check(selector, kind)
            raise self.lexer.error("expected NULL, TRUE or FALSE after IS")
        if self.lexer.keyword("NOT"):
            if self.lexer.keyword("EXISTS"):
                return Check(selector, "NOT EXISTS")
            raise self.lexer.error("expected EXISTS after NOT")
        operator = self.lexer.peek("!=", "<=", ">=", "=", "<", ">")
        if operator is None:
            raise self.lexer.error(f"expected an operator after {selector.text}")
        self.lexer.position += len(operator)
        value, quoted = self.lexer.value()
        if not quoted and value.startswith("%"):
            raise self.lexer.error("regular expression values (%...%) are not supported")
        number = None
        if not quoted and _NUMBER.fullmatch(value):
            number = float(value)
        if operator in _ORDERING and number is None:
            raise self.lexer.error(f"operator {operator!r} needs a number, not {value!r}")
        return Comparison(selector, operator, value, quoted, number)


def parse(pattern: str) -> FilterPattern:
    """Parse a JSON filter pattern, raising FilterPatternError on invalid or unsupported text."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise FilterPatternError(
            f"filter pattern is {len(pattern)} characters, more than CloudWatch Logs' "
            f"limit of {MAX_PATTERN_LENGTH}",
            hint="split the control into several metric filters",
        )
    if not pattern.strip().startswith("{"):
        raise FilterPatternError(
            f"filter pattern {pattern!r} is not a JSON filter pattern",
            hint="siemgen evaluates JSON patterns only: write it as { $.field = value }",
        )
    try:
        expression = _Parser(pattern).parse()
    except RecursionError as error:
        raise FilterPatternError(
            f"filter pattern {pattern[:60]!r}... nests parentheses too deeply to parse"
        ) from error
    return FilterPattern(pattern, expression)


def _resolve(record: Any, selector: Selector) -> Any:
    node = record
    for step in selector.steps:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return _MISSING
            node = node[step]
        else:
            if not isinstance(node, Mapping) or step not in node:
                return _MISSING
            node = node[step]
    return node


def _wildcard_match(text: str, value: str) -> bool:
    # A '*' is a wildcard only at the start or the end of the value. The user guide gives
    # "Ev*ent" as an example that matches only the literal string Ev*ent.
    if value == "*":
        return True
    starts = value.startswith("*")
    ends = value.endswith("*") and len(value) > 1
    core = value
    if starts:
        core = core[1:]
    if ends:
        core = core[:-1]
    if starts and ends:
        return core in text
    if starts:
        return text.endswith(core)
    if ends:
        return text.startswith(core)
    return text == value


def _scalar_text(node: Any) -> str:
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, float) and node.is_integer():
        return str(int(node))
    return str(node)


def _compare(node: Any, comparison: Comparison) -> bool:
    # NOTE: a comparison on a missing property does not match, for != as for =. The user
    # guide states this for selectors that point at objects or arrays, and siemgen assumes
    # the same for missing properties. NOT EXISTS is the test for an absent property.
    if node is _MISSING or node is None or isinstance(node, Mapping | list):
        return False
    if (
        comparison.number is not None
        and isinstance(node, int | float)
        and not isinstance(node, bool)
    ):
        left, right = float(node), comparison.number
        if math.isnan(left):
            return False
        return {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }[comparison.operator]
    if comparison.operator in _ORDERING:
        return False
    equal = _wildcard_match(_scalar_text(node), comparison.value)
    return equal if comparison.operator == "=" else not equal


def _evaluate(expression: Expression, record: Mapping[str, Any]) -> bool:
    if isinstance(expression, Or):
        return any(_evaluate(term, record) for term in expression.terms)
    if isinstance(expression, And):
        return all(_evaluate(term, record) for term in expression.terms)
    node = _resolve(record, expression.selector)
    if isinstance(expression, Check):
        if expression.kind == "NOT EXISTS":
            return node is _MISSING
        if expression.kind == "NULL":
            return node is None
        return node is (expression.kind == "TRUE")
    return _compare(node, expression)


def matches(pattern: str | FilterPattern, record: Mapping[str, Any]) -> bool:
    """Tell whether a CloudTrail record (one entry of ``Records``) matches a filter pattern."""
    parsed = parse(pattern) if isinstance(pattern, str) else pattern
    return _evaluate(parsed.expression, record)
