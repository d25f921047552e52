"""Property tests: hostile values and field names stay inside their literals in every target.

For each target format, a rule built in memory compares ``eventName`` (or a JSON key under
``requestParameters``) with a generated value. The query must parse with that language's
parser, the literal read back from the parse must mean the value the rule means, and the rest
of the query must equal the query built for a harmless value. Where an engine runs here
(DuckDB for Athena SQL, the ``eql`` Python engine for EQL), the query must match a record that
carries the value and agree with a Python oracle on a record that differs in one character.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import eql
import pytest
import sqlglot
from hypothesis import assume, example, given
from hypothesis import strategies as st
from luqum import tree as lucene_tree
from luqum.parser import parser as lucene_parser
from sigma.rule import SigmaRule
from sqlglot import exp

from siemgen.convert import Converter
from siemgen.engines.duckdb import create_cloudtrail_table, load_records, matching_event_ids
from siemgen.errors import ConversionError
from siemgen.fields import key_name
from siemgen.lexers import TokenKind, esql, skeleton, spl
from siemgen.rules import RuleFile

from strategies import (
    MODIFIERS,
    Pattern,
    RegexCase,
    Wild,
    canonical,
    field_keys,
    fuzz_settings,
    instance,
    literal_text,
    near_miss,
    patterns,
    regexes,
    rule_data,
    sigma_text,
    to_regex,
    with_modifier,
)

TARGET_FORMATS = [
    ("splunk", "spl"),
    ("elastic", "lucene"),
    ("elastic", "esql"),
    ("elastic", "eql"),
    ("athena", "sql"),
]
HARMLESS = "zq"
# Python's regex engine, which both the eql engine and the oracle use, backtracks on ``*``
# around long text (seconds per example), so longer values are checked by parsing only.
ENGINE_MAX_LENGTH = 200
FIELD_VALUE = "fuzzvalue"
ELASTIC_REQUEST_PARAMETERS = "aws.cloudtrail.flattened.request_parameters"

# Characters EQL's ``:`` and ``like~`` operators cannot match literally, so the Elastic
# backend writes values containing them as a case-insensitive regular expression.
EQL_REGEX_CHARACTERS = frozenset("*?\\")
# Characters that make a backend write a value in another form (EQL regex~, a Lucene phrase or
# regex), so the harmless reference value keeps them to get a query of the same structure.
FORM_CHARACTERS = {"eql": EQL_REGEX_CHARACTERS, "lucene": frozenset("\n")}

Atom = tuple[str, str]


@dataclass(frozen=True)
class Value:
    """A literal read back from a query: a wildcard pattern or a regular expression."""

    kind: str
    pattern: Pattern = ()
    atoms: tuple[Atom, ...] = ()


@dataclass(frozen=True)
class Reading:
    """What a parse of one query yields: its structure without literals, and its literals."""

    skeleton: Any
    values: tuple[Value, ...]


# Regular expression dialects: which unescaped characters are operators.
PCRE_OPERATORS = frozenset(".^$|?*+()[]{}")
# Lucene's RegExp, as Elasticsearch enables it (all optional operators on): no anchors.
LUCENE_OPERATORS = frozenset('.?+*|{}[]()"#@&<>~')


def regex_atoms(text: str, operators: frozenset[str]) -> tuple[Atom, ...]:
    """Split a regular expression into literal characters and operators.

    A backslash before a non-alphanumeric character makes it literal in every dialect used
    here, so ``\\#`` and ``#`` are the same literal where ``#`` is not an operator.
    """
    atoms: list[Atom] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            escaped = text[index + 1]
            atoms.append(("class", escaped) if escaped.isalnum() else ("literal", escaped))
            index += 2
            continue
        atoms.append(("operator" if char in operators else "literal", char))
        index += 1
    return tuple(atoms)


_ANY_RUN: tuple[Atom, Atom] = (("operator", "."), ("operator", "*"))


def unanchored(atoms: tuple[Atom, ...]) -> tuple[Atom, ...]:
    """Drop ``.*`` runs at both ends of a regex.

    Sigma, Splunk and Athena search for a regex anywhere in the value, while Lucene's RegExp
    must match the whole value, so the Elastic backends wrap the pattern in ``.*``. The two
    forms mean the same once the outer ``.*`` runs are dropped.
    """
    start = 0
    end = len(atoms)
    while atoms[start : start + 2] == _ANY_RUN:
        start += 2
    while end - 2 >= start and atoms[end - 2 : end] == _ANY_RUN:
        end -= 2
    return atoms[start:end]


def atoms_pattern(atoms: tuple[Atom, ...]) -> Pattern | None:
    """Read regex atoms made only of literals, ``.`` and ``.*`` as a wildcard pattern."""
    parts: list[str | Wild] = []
    index = 0
    while index < len(atoms):
        kind, char = atoms[index]
        if kind == "literal":
            parts.append(char)
        elif (kind, char) == ("operator", "."):
            if atoms[index + 1 : index + 2] == (("operator", "*"),):
                parts.append(Wild.MULTI)
                index += 1
            else:
                parts.append(Wild.SINGLE)
        else:
            return None
        index += 1
    return canonical(parts)


def wildcard_pattern(text: str, multi: str, single: str | None, escape: str | None) -> Pattern:
    """Decode a target's wildcard pattern into the pattern model."""
    parts: list[str | Wild] = []
    index = 0
    while index < len(text):
        char = text[index]
        if escape is not None and char == escape and index + 1 < len(text):
            parts.append(text[index + 1])
            index += 2
            continue
        if char == multi:
            parts.append(Wild.MULTI)
        elif single is not None and char == single:
            parts.append(Wild.SINGLE)
        else:
            parts.append(char)
        index += 1
    return canonical(parts)


def pattern_value(text: str, multi: str, single: str | None, escape: str | None) -> Value:
    return Value("pattern", pattern=wildcard_pattern(text, multi, single, escape))


def literal_value(text: str) -> Value:
    return Value("pattern", pattern=canonical([text]))


# Readers, one per target format.


def read_spl(query: str) -> Reading:
    """Read SPL: ``*`` is the only wildcard and a backslash cannot escape it."""
    tokens = spl.tokenize(query)
    values = []
    command = "search"
    for index, token in enumerate(tokens):
        if token.kind is TokenKind.PIPE and index + 1 < len(tokens):
            command = tokens[index + 1].text.lower()
        if token.kind is not TokenKind.STRING:
            continue
        is_field_name = index + 1 < len(tokens) and tokens[index + 1].text in ("=", "!=")
        if is_field_name:
            continue
        if command == "regex":
            values.append(Value("regex", atoms=regex_atoms(token.value, PCRE_OPERATORS)))
        else:
            values.append(pattern_value(token.value, "*", None, None))
    return Reading(skeleton(tokens), tuple(values))


def read_esql(query: str) -> Reading:
    """Read ES|QL: ``like`` patterns use ``*``, ``?`` and ``\\``, ``rlike`` Lucene regex."""
    tokens = esql.tokenize(query)
    values = []
    for index, token in enumerate(tokens):
        if token.kind is not TokenKind.STRING:
            continue
        before = tokens[index - 1].text.lower() if index else ""
        function = tokens[index - 4].text.lower() if index >= 4 else ""
        if before == "like":
            values.append(pattern_value(token.value, "*", "?", "\\"))
        elif before == "rlike":
            values.append(Value("regex", atoms=regex_atoms(token.value, LUCENE_OPERATORS)))
        elif before == "," and function == "starts_with":
            values.append(Value("pattern", pattern=canonical([token.value, Wild.MULTI])))
        elif before == "," and function == "ends_with":
            values.append(Value("pattern", pattern=canonical([Wild.MULTI, token.value])))
        else:
            values.append(literal_value(token.value))
    return Reading(skeleton(tokens), tuple(values))


def _unescape_lucene(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def read_lucene(query: str) -> Reading:
    """Read Lucene with luqum: terms use ``*``, ``?`` and ``\\``, phrases only ``\\``."""
    tree = lucene_parser.parse(query)
    shape: list[tuple[str, str]] = []
    values: list[Value] = []
    for node in _lucene_nodes(tree):
        if isinstance(node, lucene_tree.Word):
            shape.append(("term", ""))
            values.append(pattern_value(node.value, "*", "?", "\\"))
        elif isinstance(node, lucene_tree.Phrase):
            shape.append(("term", ""))
            values.append(literal_value(_unescape_lucene(node.value[1:-1])))
        elif isinstance(node, lucene_tree.Regex):
            shape.append(("regex", ""))
            atoms = regex_atoms(node.value[1:-1], LUCENE_OPERATORS)
            values.append(Value("regex", atoms=atoms))
        elif isinstance(node, lucene_tree.SearchField):
            shape.append(("field", _unescape_lucene(node.name)))
        else:
            shape.append((type(node).__name__, ""))
    return Reading(shape, tuple(values))


def _lucene_nodes(node: lucene_tree.Item) -> Iterator[lucene_tree.Item]:
    yield node
    for child in node.children:
        yield from _lucene_nodes(child)


def parse_eql(query: str) -> Any:
    """Parse EQL with Elasticsearch syntax, as the ``eql`` package does for Elastic rules."""
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        return eql.parse_query(query)


def read_eql(query: str) -> Reading:
    """Read EQL: ``:`` and ``like~`` use ``*`` and ``?``, ``regex~`` Lucene regex."""
    tree = parse_eql(query)
    shape: list[tuple[str, str]] = []
    values: list[Value] = []
    for node in _eql_nodes(tree):
        if isinstance(node, eql.ast.FunctionCall):
            shape.append(("function", node.name))
            for argument in node.arguments[1:]:
                if not isinstance(argument, eql.ast.String):
                    continue
                if node.name == "wildcard":
                    assert "\\" not in argument.value, f"backslash in EQL wildcard {query!r}"
                    values.append(pattern_value(argument.value, "*", "?", None))
                elif node.name == "match":
                    atoms = regex_atoms(argument.value, LUCENE_OPERATORS)
                    values.append(Value("regex", atoms=atoms))
        elif isinstance(node, eql.ast.Comparison):
            shape.append(("comparison", node.comparator))
            if isinstance(node.right, eql.ast.String):
                values.append(literal_value(node.right.value))
        elif isinstance(node, eql.ast.InSet):
            shape.append(("in", ""))
            values.extend(literal_value(item.value) for item in node.container)
        elif isinstance(node, eql.ast.Field):
            shape.append(("field", ".".join([node.base, *map(str, node.path)])))
        elif not isinstance(node, eql.ast.String):
            shape.append((type(node).__name__, ""))
    return Reading(shape, tuple(values))


def _eql_nodes(node: Any) -> Iterator[Any]:
    # eql's own BaseNode.children() recurses into one-character strings without end.
    yield node
    for _, value in node.iter_slots():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, eql.ast.BaseNode):
                yield from _eql_nodes(item)


def read_athena(query: str) -> Reading:
    """Read Athena SQL with sqlglot: LIKE uses ``%``, ``_`` and its ESCAPE character."""
    tree = sqlglot.parse_one(query, read="athena")
    values: list[Value] = []
    handled: set[int] = set()
    for node in tree.walk():
        if isinstance(node, exp.Escape) and isinstance(node.this, exp.Like):
            pattern = node.this.expression
            escape = node.expression
            assert isinstance(pattern, exp.Literal)
            assert isinstance(escape, exp.Literal)
            values.append(pattern_value(str(pattern.this), "%", "_", str(escape.this)))
            handled.update((id(pattern), id(escape)))
        elif isinstance(node, exp.Like) and id(node.expression) not in handled:
            pattern = node.expression
            assert isinstance(pattern, exp.Literal)
            values.append(pattern_value(str(pattern.this), "%", "_", None))
            handled.add(id(pattern))
        elif isinstance(node, exp.RegexpLike):
            regex = node.expression
            assert isinstance(regex, exp.Literal)
            values.append(Value("regex", atoms=regex_atoms(str(regex.this), PCRE_OPERATORS)))
            handled.add(id(regex))
        elif isinstance(node, exp.Literal) and node.is_string and id(node) not in handled:
            values.append(literal_value(str(node.this)))
    masked = tree.transform(
        lambda node: (
            exp.Literal.string("S") if isinstance(node, exp.Literal) and node.is_string else node
        )
    )
    return Reading(masked.sql(dialect="athena"), tuple(values))


READERS = {
    "spl": read_spl,
    "lucene": read_lucene,
    "esql": read_esql,
    "eql": read_eql,
    "sql": read_athena,
}


# What each target promises.


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def rejects_pattern(format_name: str, pattern: Pattern) -> bool:
    """Tell whether siemgen rejects this value for the format instead of converting it."""
    if format_name == "spl":
        text = literal_text(pattern)
        return "*" in text or _has_control(text)
    return False


def rejects_regex(format_name: str, regex: str) -> bool:
    """Tell whether siemgen rejects this regular expression for the format."""
    return format_name == "spl" and _has_control(regex)


def target_pattern(format_name: str, pattern: Pattern) -> Pattern:
    """Return the pattern a target matches for a rule's pattern.

    Splunk has no single-character wildcard, so ``?`` becomes ``*`` there: the search matches
    more strings than the rule, never fewer.
    """
    if format_name == "spl":
        return canonical(Wild.MULTI if part is Wild.SINGLE else part for part in pattern)
    return pattern


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def reference_pattern(format_name: str, pattern: Pattern) -> Pattern:
    """Return the harmless pattern whose query must have the same structure as ``pattern``'s.

    Each piece of text becomes a harmless word, which keeps any character that makes the
    backend choose another form for the value, because that changes the query's structure.
    """
    if format_name == "eql" and len(pattern) == 1 and _is_ip_address(str(pattern[0])):
        # pySigma's EQL backend compares IP addresses with ``==`` instead of ``:``.
        return pattern
    form_characters = FORM_CHARACTERS.get(format_name, frozenset())
    parts: list[str | Wild] = []
    for part in pattern:
        if isinstance(part, Wild):
            parts.append(part)
            continue
        form_text = "".join(sorted(set(part) & form_characters))
        parts.append(HARMLESS + form_text)
    return tuple(parts)


# Converting rules built in memory.

_CONVERTER = Converter()


def rule_file(detection: dict[str, Any]) -> RuleFile:
    data = rule_data(detection)
    return RuleFile(
        path=Path("fuzz.yml"), stem="fuzz", text="", data=data, rule=SigmaRule.from_dict(data)
    )


def convert(target: str, format_name: str, detection: dict[str, Any]) -> str:
    return _CONVERTER.convert(rule_file(detection), target, format_name)


def value_detection(modifier: str, value: str) -> dict[str, Any]:
    key = "eventName" if modifier == "plain" else f"eventName|{modifier}"
    return {
        "selection": {"eventSource": "iam.amazonaws.com", key: value},
        "condition": "selection",
    }


def same_value(found: Value, expected: Pattern) -> bool:
    """Tell whether a literal read back means the expected pattern."""
    if found.kind == "pattern":
        return found.pattern == expected
    return atoms_pattern(found.atoms) == expected


def check_literals(reading: Reading, reference: Reading, expected: Pattern, ref: Pattern) -> None:
    """Assert the literals differ from the reference's only where the value is, as expected."""
    assert len(reading.values) == len(reference.values)
    positions = [index for index, value in enumerate(reference.values) if same_value(value, ref)]
    assert positions, f"the harmless value {ref!r} was not found in {reference.values!r}"
    for index, (found, harmless_value) in enumerate(
        zip(reading.values, reference.values, strict=True)
    ):
        if index in positions:
            assert same_value(found, expected), f"literal {found!r} does not mean {expected!r}"
        else:
            assert found == harmless_value


# Engines.


@pytest.fixture(scope="module")
def athena_db() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    create_cloudtrail_table(connection)
    yield connection
    connection.close()


def cloudtrail_record(event_id: str, event_name: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventTime": "2026-01-01T00:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }


def athena_matches(
    connection: duckdb.DuckDBPyConnection, query: str, names: dict[str, str]
) -> set[str]:
    connection.execute("DELETE FROM cloudtrail_logs")
    load_records(connection, [cloudtrail_record(key, name) for key, name in names.items()])
    return matching_event_ids(connection, query)


def eql_matches(query: str, names: dict[str, str]) -> set[str]:
    matched: set[str] = set()
    engine = eql.PythonEngine()
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        engine.add_query(eql.parse_query(query))
    engine.add_output_hook(
        lambda output: matched.update(event.data["event"]["id"] for event in output.events)
    )
    events = [
        eql.Event.from_data(
            {
                "event": {
                    "id": key,
                    "dataset": "aws.cloudtrail",
                    "provider": "iam.amazonaws.com",
                    "action": name,
                }
            }
        )
        for key, name in names.items()
    ]
    engine.stream_events(events)
    return matched


def check_engine(
    format_name: str,
    query: str,
    expected: Pattern,
    position: int,
    athena_db: duckdb.DuckDBPyConnection,
) -> None:
    """Run the query on a record with the value and one differing in one character."""
    exact = instance(expected)
    if len(exact) > ENGINE_MAX_LENGTH:
        return
    changed = near_miss(exact, position)
    names = {"exact": exact, "changed": changed}
    if format_name == "sql":
        oracle = to_regex(expected)
        found = athena_matches(athena_db, query, names)
    elif format_name == "eql":
        # The eql package implements EQL's legacy wildcard(): only ``*`` is a wildcard and a
        # backslash is literal, so only values that reach it unchanged are compared.
        text = literal_text(expected)
        if Wild.SINGLE in expected or set(text) & EQL_REGEX_CHARACTERS:
            return
        if not (exact.isascii() and changed.isascii()):
            return
        oracle = to_regex(expected, ignore_case=True)
        found = eql_matches(query, names)
    else:
        return
    expected_ids = {key for key, name in names.items() if oracle.fullmatch(name)}
    assert "exact" in expected_ids
    assert found == expected_ids, f"matched {sorted(found)}, expected {sorted(expected_ids)}"


# The properties.


@pytest.mark.parametrize("modifier", MODIFIERS)
@pytest.mark.parametrize(("target", "format_name"), TARGET_FORMATS)
@fuzz_settings()
@given(pattern=patterns(), position=st.integers(min_value=0, max_value=10**6))
def test_value_stays_literal(
    target: str,
    format_name: str,
    modifier: str,
    pattern: Pattern,
    position: int,
    athena_db: duckdb.DuckDBPyConnection,
) -> None:
    expected = with_modifier(pattern, modifier)
    try:
        query = convert(target, format_name, value_detection(modifier, sigma_text(pattern)))
    except ConversionError as error:
        assert rejects_pattern(format_name, pattern), f"rejected: {error}"
        assert "value" in error.message
        return
    assert not rejects_pattern(format_name, pattern), f"accepted: {query!r}"

    reference_value = reference_pattern(format_name, pattern)
    reference_query = convert(
        target, format_name, value_detection(modifier, sigma_text(reference_value))
    )
    reading = READERS[format_name](query)
    reference = READERS[format_name](reference_query)
    assert reading.skeleton == reference.skeleton
    check_literals(
        reading,
        reference,
        target_pattern(format_name, expected),
        target_pattern(format_name, with_modifier(reference_value, modifier)),
    )
    check_engine(format_name, query, expected, position, athena_db)


@pytest.mark.parametrize(("target", "format_name"), TARGET_FORMATS)
@fuzz_settings()
@given(case=regexes(), position=st.integers(min_value=0, max_value=10**6))
def test_regex_stays_literal(
    target: str,
    format_name: str,
    case: RegexCase,
    position: int,
    athena_db: duckdb.DuckDBPyConnection,
) -> None:
    detection = value_detection("re", case.regex)
    try:
        query = convert(target, format_name, detection)
    except ConversionError as error:
        assert rejects_regex(format_name, case.regex), f"rejected: {error}"
        assert "regular expression" in error.message
        return
    assert not rejects_regex(format_name, case.regex), f"accepted: {query!r}"

    reference_query = convert(target, format_name, value_detection("re", HARMLESS))
    reading = READERS[format_name](query)
    reference = READERS[format_name](reference_query)
    assert reading.skeleton == reference.skeleton
    expected = unanchored(regex_atoms(case.regex, PCRE_OPERATORS))
    regex_positions = [i for i, value in enumerate(reference.values) if value.kind == "regex"]
    assert len(regex_positions) == 1
    for index, (found, harmless_value) in enumerate(
        zip(reading.values, reference.values, strict=True)
    ):
        if index in regex_positions:
            found_atoms = unanchored(found.atoms)
            assert found_atoms == expected, f"regex {found!r} does not mean {case.regex!r}"
        else:
            assert found == harmless_value

    if format_name == "sql" and case.literal is not None:
        changed = near_miss(case.literal, position)
        names = {"exact": case.literal, "changed": changed}
        expected_ids = {key for key, name in names.items() if re.search(case.regex, name)}
        assert athena_matches(athena_db, query, names) == expected_ids


def value_detection_for_field(field: str) -> dict[str, Any]:
    return {
        "selection": {"eventSource": "iam.amazonaws.com", field: FIELD_VALUE},
        "condition": "selection",
    }


def read_field_name(format_name: str, query: str) -> str | tuple[str | int, ...]:
    """Return the field that the query compares with FIELD_VALUE, as the parser reads it."""
    if format_name == "spl":
        tokens = spl.tokenize(query)
        index = next(i for i, t in enumerate(tokens) if t.value == FIELD_VALUE)
        assert tokens[index - 1].text == "="
        return tokens[index - 2].value
    if format_name == "esql":
        tokens = esql.tokenize(query)
        index = next(i for i, t in enumerate(tokens) if t.value == FIELD_VALUE)
        assert tokens[index - 1].text == "=="
        end = index - 1
        start = end
        while start > 0 and tokens[start - 1].kind in (TokenKind.WORD, TokenKind.IDENTIFIER):
            if tokens[start - 1].end != tokens[start].start and start != end:
                break
            start -= 1
        return "".join(token.value for token in tokens[start:end])
    if format_name == "lucene":
        tree = lucene_parser.parse(query)
        for node in _lucene_nodes(tree):
            if (
                isinstance(node, lucene_tree.SearchField)
                and isinstance(node.expr, lucene_tree.Word | lucene_tree.Phrase)
                and node.expr.value.strip('"') == FIELD_VALUE
            ):
                return _unescape_lucene(node.name)
        raise AssertionError(f"no field compared with {FIELD_VALUE!r} in {query!r}")
    if format_name == "eql":
        for node in _eql_nodes(parse_eql(query)):
            arguments = getattr(node, "arguments", None) or [
                getattr(node, "left", None),
                getattr(node, "right", None),
            ]
            strings = [a.value for a in arguments if isinstance(a, eql.ast.String)]
            fields = [a for a in arguments if isinstance(a, eql.ast.Field)]
            if FIELD_VALUE in strings and fields:
                return ".".join([fields[0].base, *map(str, fields[0].path)])
        raise AssertionError(f"no field compared with {FIELD_VALUE!r} in {query!r}")
    # The one JSON field of the query may be split over nested any_match() lambdas, so the
    # path is every JSON path step of the query in order.
    tree = sqlglot.parse_one(query, read="athena")
    steps: list[str | int] = []
    for node in tree.walk(bfs=False):
        if isinstance(node, exp.JSONPathKey):
            steps.append(str(node.this))
        elif isinstance(node, exp.JSONPathSubscript):
            steps.append(int(node.this))
    return tuple(steps)


def expected_field_name(format_name: str, key: str) -> str | tuple[str | int, ...]:
    """Return the field a target should compare.

    A ``[]`` after a key marks an array: Athena reads ``name[]`` as every element of
    ``name`` and a number as an array index, Splunk writes ``name{}``, and Elastic's flattened
    field names the members by the array's own path.
    """
    parts = key.split(".")
    if format_name == "spl":
        names = [part.removesuffix("[]") + "{}" if part.endswith("[]") else part for part in parts]
        return ".".join(("requestParameters", *names))
    if format_name == "sql":
        return tuple(
            int(part) if re.fullmatch("[0-9]+", part) else part.removesuffix("[]") for part in parts
        )
    return ".".join((ELASTIC_REQUEST_PARAMETERS, *(key_name(part) for part in parts)))


@pytest.mark.parametrize(("target", "format_name"), TARGET_FORMATS)
@fuzz_settings()
@given(key=field_keys())
# A bare [] has no key name before it, so every target rejects it.
@example(key="[]")
@example(key="a.[].b")
@example(key="a[]")
@example(key="a[].b")
@example(key="m[][]")
def test_field_name_quoted_or_rejected(target: str, format_name: str, key: str) -> None:
    # A pipe in a detection key starts Sigma's modifier list, so it never reaches a target.
    assume("|" not in key)
    field = f"requestParameters.{key}"
    try:
        query = convert(target, format_name, value_detection_for_field(field))
    except ConversionError as error:
        assert "field" in error.message
        # A backend's error may name the field as its target spells it.
        spelled = expected_field_name(format_name, key)
        named = (error.field or "").endswith(key) or error.field == spelled
        named = named or repr(field) in error.message or repr(key) in error.message
        assert named, f"the error does not name {field!r}"
        return
    empty_keys = [part for part in key.split(".") if not key_name(part)]
    assert empty_keys == [], f"{field!r} has an empty JSON key but was converted"
    reference = convert(target, format_name, value_detection_for_field("requestParameters.k"))
    assert read_field_name(format_name, query) == expected_field_name(format_name, key)
    reading = READERS[format_name](query)
    harmless = READERS[format_name](reference)
    assert reading.values == harmless.values
