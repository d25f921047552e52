"""Run Elastic EQL on CloudTrail records with the semantics Elasticsearch gives the query.

``elastic_document`` turns a raw CloudTrail record into the fields the Elastic AWS integration
indexes (names from ``siemgen.fields``). ``compile_query`` parses EQL with Elastic's ``eql``
package in Elasticsearch syntax, and ``EqlQuery.matching`` streams documents through a
``PythonEngine`` whose operators follow Elasticsearch rather than the package's defaults:

- ``==``, ``!=``, ``in``, ``like`` and ``regex`` compare case-sensitively, and ``:``,
  ``in~``, ``like~`` and ``regex~`` case-insensitively. The package folds case for all of them.
- ``not`` and ``!=`` match a document that lacks the field, because Elasticsearch translates
  them to ``bool.must_not``. The package uses three-valued logic, where they do not.
- ``*`` and ``?`` are wildcards in ``:`` and ``like`` patterns and a backslash is a plain
  character. The package supports only ``*``.
- ``regex`` patterns are Lucene regular expressions: they must match the whole value, and
  ``^`` and ``$`` are plain characters. The package uses Python's ``re.match``.
- A field with several values (an array) matches when any value matches.
- ``cidrMatch`` matches addresses only on an ``ip`` field. On a keyword field it is a terms
  query, which compares the text of the network with the value.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import eql
import eql.ast
import eql.errors
import eql.parser
from eql.events import Event
from lark.exceptions import LarkError

from siemgen import fields
from siemgen.errors import SiemgenError
from siemgen.pipelines.elastic import DATASET

logger = logging.getLogger(__name__)

FLATTENED_PREFIX = "aws.cloudtrail.flattened."
# The ingest pipeline writes the flattened copy of an object only below this length of its
# string form, and the keyword copy is not searchable above its ignore_above.
FLATTENED_MAX_CHARS = 32766
OBJECT_KEYWORD_IGNORE_ABOVE = 8191

_CASE_SENSITIVE_WILDCARD = "siemgen_like"
_CASE_INSENSITIVE_WILDCARD = "siemgen_like_insensitive"
_CASE_SENSITIVE_REGEX = "siemgen_regex"
_CASE_INSENSITIVE_REGEX = "siemgen_regex_insensitive"
_CASE_SENSITIVE_IN = "siemgen_in"
_CASE_INSENSITIVE_IN = "siemgen_in_insensitive"
_EMULATED_FUNCTIONS = frozenset(
    {
        _CASE_SENSITIVE_WILDCARD,
        _CASE_INSENSITIVE_WILDCARD,
        _CASE_SENSITIVE_REGEX,
        _CASE_INSENSITIVE_REGEX,
        _CASE_SENSITIVE_IN,
        _CASE_INSENSITIVE_IN,
        "cidrMatch",
    }
)
_PREDICATE_FUNCTIONS = {
    ":": _CASE_INSENSITIVE_WILDCARD,
    "like~": _CASE_INSENSITIVE_WILDCARD,
    "like": _CASE_SENSITIVE_WILDCARD,
    "regex~": _CASE_INSENSITIVE_REGEX,
    "regex": _CASE_SENSITIVE_REGEX,
}


class EqlQueryError(SiemgenError):
    """An EQL query does not parse, or uses a construct the local engine does not emulate."""


@dataclass
class EqlQuery:
    """A parsed EQL query, ready to run on Elastic documents."""

    text: str
    parsed: Any
    notes: list[str] = field(default_factory=list)

    def matching(self, documents: Sequence[Mapping[str, Any]]) -> list[int]:
        """Return the positions in ``documents`` of the documents the query matches."""
        engine = _ElasticsearchSemantics({"flatten": True})
        matched: list[Any] = []
        engine.add_output_hook(lambda event: matched.append(event.data))
        engine.add_query(self.parsed)
        positions = {id(document): index for index, document in enumerate(documents)}
        engine.stream_events(Event("cloudtrail", 0, document) for document in documents)
        return sorted(positions[id(data)] for data in matched)


# Documents as the Elastic AWS integration indexes them.


def _drop_empty(value: Any) -> Any:
    """Remove null and empty-string values at every depth, as the ingest pipeline's script does."""
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            cleaned = _drop_empty(item)
            if cleaned is not None and cleaned != "":
                result[str(key)] = cleaned
        return result
    if isinstance(value, list):
        return [item for item in (_drop_empty(item) for item in value) if item not in (None, "")]
    return value


def _raw_value(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _keyword(value: Any) -> str | None:
    """Return a JSON scalar as a keyword field indexes it, or None for objects and arrays."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    return None


def _painless_string(value: Any) -> str:
    """Return an object in the ``{key=value, ...}`` form of Painless ``toString()``."""
    # NOTE: Painless prints a Java map in its own key order; this keeps the record's order.
    if isinstance(value, Mapping):
        return (
            "{" + ", ".join(f"{key}={_painless_string(item)}" for key, item in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_painless_string(item) for item in value) + "]"
    text = _keyword(value)
    return text if text is not None else str(value)


def _flattened_leaves(value: Any, path: str) -> Iterable[tuple[str, str]]:
    """Yield (key path, keyword) for every leaf; array members share their parent's path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flattened_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _flattened_leaves(item, path)
    else:
        text = _keyword(value)
        if text is not None and path:
            yield path, text


def _add(document: dict[str, Any], name: str, value: Any) -> None:
    """Add one value to a field, turning the field into an array when it already has one."""
    if value is None:
        return
    current = document.get(name)
    if current is None:
        document[name] = value
    elif isinstance(current, list):
        if value not in current:
            current.append(value)
    elif current != value:
        document[name] = [current, value]


_SPECIAL_FIELDS = frozenset(
    {
        "status",
        "readOnly",
        "sourceIPAddress",
        "userIdentity.userName",
        "resources.ARN",
        "resources.accountId",
        "resources.type",
        *(column.value for column in fields.JsonColumn),
    }
)
_RESOURCE_KEYS = {"ARN": "arn", "accountId": "account_id", "type": "type"}


def _event_outcome(record: Mapping[str, Any]) -> str:
    # NOTE: the caller drops empty values first, so "errorCode": "" counts as success here
    # and as failure in the Athena SQL. The ingest pipeline's own order was not checked.
    console_login = _raw_value(record, "responseElements.ConsoleLogin")
    if record.get("eventName") == "ConsoleLogin" and isinstance(console_login, str):
        return console_login.lower()
    if "errorCode" in record or "errorMessage" in record:
        return "failure"
    return "success"


def elastic_document(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the searchable fields the Elastic AWS integration writes for one CloudTrail record.

    The result maps each Elastic field name to one value, or to a list for a field with several
    values. Only the fields that ``siemgen.fields`` maps, ``event.dataset``, ``event.outcome``,
    ``source.ip`` and the flattened sub-keys are written, because the generated queries use no
    others.
    """
    clean: dict[str, Any] = _drop_empty(record)
    document: dict[str, Any] = {"event.dataset": DATASET}
    for known in fields.FIELDS:
        if known.elastic is None or known.raw in _SPECIAL_FIELDS:
            continue
        value = _raw_value(clean, known.raw)
        if known.elastic_type == "boolean":
            _add(document, known.elastic, _boolean(value))
        elif known.elastic_type == "date":
            _add(document, known.elastic, value if isinstance(value, str) else None)
        else:
            # NOTE: Elasticsearch rejects a record with an object where a field expects a value.
            # Here only that field is left out, and the rest of the record is indexed.
            _add(document, known.elastic, _keyword(value))
    document["event.outcome"] = _event_outcome(clean)
    _add(document, "aws.cloudtrail.read_only", _boolean(clean.get("readOnly")))
    _add_source_address(document, clean.get("sourceIPAddress"))
    user_name = _raw_value(clean, "userIdentity.userName")
    if user_name is None:
        # The pipeline renames sessionIssuer.userName to user.name only when user.name is unset.
        user_name = _raw_value(clean, "userIdentity.sessionContext.sessionIssuer.userName")
    _add(document, "user.name", _keyword(user_name))
    _add_resources(document, clean.get("resources"))
    for column in fields.JsonColumn:
        _add_object(document, column, clean.get(column.value))
    return document


def _add_source_address(document: dict[str, Any], value: Any) -> None:
    text = _keyword(value)
    if text is None:
        return
    document["source.address"] = text
    try:
        document["source.ip"] = str(ipaddress.ip_address(text))
    except ValueError:
        logger.debug("sourceIPAddress %r is not an IP address; source.ip is not set", text)


def _add_resources(document: dict[str, Any], resources: Any) -> None:
    if not isinstance(resources, list):
        return
    for resource in resources:
        if not isinstance(resource, Mapping):
            continue
        for raw_key, elastic_key in _RESOURCE_KEYS.items():
            _add(
                document, f"aws.cloudtrail.resources.{elastic_key}", _keyword(resource.get(raw_key))
            )


def _add_object(document: dict[str, Any], column: fields.JsonColumn, value: Any) -> None:
    if not isinstance(value, Mapping) or not value:
        return
    text = _painless_string(value)
    if len(text) <= OBJECT_KEYWORD_IGNORE_ABOVE:
        document[column.elastic_string] = text
    if len(text) >= FLATTENED_MAX_CHARS:
        return
    for path, leaf in _flattened_leaves(value, ""):
        _add(document, f"{column.elastic_flattened}.{path}", leaf)


def field_type(name: str) -> str:
    """Return the Elasticsearch mapping type of a field the documents carry."""
    if name == "source.ip":
        return "ip"
    if name.startswith(FLATTENED_PREFIX):
        return "keyword"
    for known in fields.FIELDS:
        if known.elastic == name:
            return known.elastic_type
    return "keyword"


# Patterns as Lucene evaluates them.


def wildcard_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    """Compile an EQL ``:``/``like`` pattern: ``*`` is any text, ``?`` one character."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    body = "".join(parts)
    flags = re.DOTALL | (re.IGNORECASE if case_insensitive else 0)
    return re.compile(body, flags)


_LUCENE_CLASS_ESCAPES = frozenset("dDsSwW")


def lucene_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    """Compile a Lucene regular expression (all optional operators on) to a full-match pattern.

    Raises EqlQueryError for the intersection (``&``), complement (``~``) and numeric
    interval (``<n-m>``) operators, which Python's ``re`` cannot express.
    """
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            out.append("\\" + escaped if escaped in _LUCENE_CLASS_ESCAPES else re.escape(escaped))
            index += 2
        elif char == '"':
            end = pattern.find('"', index + 1)
            if end < 0:
                raise EqlQueryError(f"unterminated quoted string in regular expression {pattern!r}")
            out.append("(?:" + re.escape(pattern[index + 1 : end]) + ")")
            index = end + 1
        elif char == "[":
            index = _lucene_class(pattern, index, out)
        elif char == "(":
            out.append("(?:")
            index += 1
        elif char in ".?+*|){}0123456789,":
            out.append(char)
            index += 1
        elif char == "@":
            out.append(".*")
            index += 1
        elif char == "#":
            out.append("(?!)")
            index += 1
        elif char in "&~<":
            raise EqlQueryError(
                f"regular expression {pattern!r} uses the Lucene operator {char!r}, which the "
                "local engine does not emulate",
                hint="use a plain Sigma regular expression without &, ~ or <n-m>",
            )
        else:
            out.append(re.escape(char))
            index += 1
    flags = re.DOTALL | (re.IGNORECASE if case_insensitive else 0)
    try:
        return re.compile("".join(out), flags)
    except re.error as error:
        raise EqlQueryError(f"invalid regular expression {pattern!r}: {error}") from error


def _lucene_class(pattern: str, start: int, out: list[str]) -> int:
    """Translate the character class at ``start`` and return the offset past its ``]``."""
    index = start + 1
    parts = ["["]
    if index < len(pattern) and pattern[index] == "^":
        parts.append("^")
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append("-" if char == "-" else re.escape(char))
        index += 1
    if index >= len(pattern):
        raise EqlQueryError(f"unterminated character class in regular expression {pattern!r}")
    parts.append("]")
    out.append("".join(parts))
    return index + 1


# Parsing: keep the case-sensitivity of each operator, which the eql package drops.


class _CaseAwareWalker(eql.parser.LarkToEQL):  # type: ignore[misc]  # eql ships no type hints
    """Parse like the eql package, but name each string predicate after its case rule."""

    def string_predicate(self, node: Any) -> Any:
        """Replace ``wildcard``/``match`` with a function that records the operator used."""
        info = super().string_predicate(node)
        predicate = str(node["STRING_PREDICATE"])
        info.node = eql.ast.FunctionCall(_PREDICATE_FUNCTIONS[predicate], info.node.arguments)
        return info

    def in_set(self, node: Any) -> Any:
        """Replace ``in``/``in~`` with a function that records the operator used."""
        info = super().in_set(node)
        name = _CASE_INSENSITIVE_IN if node.get("IN") == "in~" else _CASE_SENSITIVE_IN
        info.node = eql.ast.FunctionCall(name, [info.node.expression, *info.node.container])
        return info


def compile_query(text: str) -> EqlQuery:
    """Parse an EQL query for local runs, raising EqlQueryError where Elasticsearch would fail."""
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        walker = _CaseAwareWalker(text)
        try:
            tree = eql.parser.lark_parser.parse(text, start="piped_query")
            parsed = walker.visit(tree)
        except LarkError as error:
            raise EqlQueryError(f"EQL query does not parse: {error}") from error
        except eql.errors.EqlError as error:
            raise EqlQueryError(f"EQL query is invalid: {error}") from error
    parsed = getattr(parsed, "node", parsed)
    if not isinstance(parsed, eql.ast.PipedQuery) or parsed.pipes:
        raise EqlQueryError("only a single event query without pipes can run locally")
    if not isinstance(parsed.first, eql.ast.EventQuery):
        raise EqlQueryError(
            f"{type(parsed.first).__name__} queries cannot run locally; only event queries can"
        )
    for node in parsed.first.query:
        if isinstance(node, eql.ast.FunctionCall) and node.name not in _EMULATED_FUNCTIONS:
            raise EqlQueryError(
                f"EQL function {node.name}() is not emulated by the local engine",
                hint="extend siemgen.engines.eql with the function's Elasticsearch semantics",
            )
    query = EqlQuery(text=text, parsed=parsed)
    query.notes.extend(_review(parsed.first.query))
    return query


def _field_name(node: Any) -> str:
    parts = [node.base, *node.path]
    if not all(isinstance(part, str) for part in parts):
        raise EqlQueryError(f"array index in field {node} is not supported by Elasticsearch EQL")
    return ".".join(parts)


def _review(expression: Any) -> Iterable[str]:
    """Yield warnings about constructs whose Elasticsearch result depends on the cluster."""
    for node in expression:
        if not isinstance(node, eql.ast.FunctionCall) or not node.arguments:
            continue
        target = node.arguments[0]
        if not isinstance(target, eql.ast.Field):
            continue
        name = _field_name(target)
        patterns = [arg.value for arg in node.arguments[1:] if isinstance(arg, eql.ast.String)]
        is_wildcard = node.name in (_CASE_SENSITIVE_WILDCARD, _CASE_INSENSITIVE_WILDCARD) and any(
            "*" in pattern or "?" in pattern for pattern in patterns
        )
        is_regex = node.name in (_CASE_SENSITIVE_REGEX, _CASE_INSENSITIVE_REGEX)
        if name.startswith(FLATTENED_PREFIX) and (is_wildcard or is_regex):
            yield (
                f"{name}: wildcard and regular expression queries on flattened sub-fields fail "
                "or return wrong results on some Elasticsearch versions; the local result "
                "assumes they work"
            )
        if is_regex and any(re.search(r"(?<!\\)[\^$]", pattern) for pattern in patterns):
            yield (
                f"{name}: the regular expression contains ^ or $, which Lucene reads as plain "
                "characters because its patterns always match the whole value"
            )
        if node.name == "cidrMatch" and field_type(name) != "ip":
            yield (
                f"{name}: cidrMatch on a {field_type(name)} field compares the network's text "
                "with the value, so it matches no address"
            )


# Evaluation.


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _literal_keyword(value: Any) -> str | None:
    """Return a query literal as Elasticsearch converts it for a keyword field."""
    return _keyword(value)


def _equals(value: Any, literal: Any, case_insensitive: bool) -> bool:
    if isinstance(value, bool):
        return value == _boolean(literal) if not isinstance(literal, bool) else value == literal
    if not isinstance(value, str):
        return bool(value == literal)
    text = _literal_keyword(literal)
    if text is None:
        return False
    if case_insensitive:
        return value.lower() == text.lower()
    return value == text


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda left, right: bool(left < right),
    "<=": lambda left, right: bool(left <= right),
    ">": lambda left, right: bool(left > right),
    ">=": lambda left, right: bool(left >= right),
}


def _ordered(value: Any, comparator: str, literal: Any) -> bool:
    """Compare like a range query: keywords as text, so numbers in the query become text."""
    if isinstance(value, str):
        text = _literal_keyword(literal)
        return text is not None and _ORDER[comparator](value, text)
    if isinstance(value, bool) or isinstance(literal, bool) or not isinstance(literal, int | float):
        return False
    return isinstance(value, int | float) and _ORDER[comparator](value, literal)


class _ElasticsearchSemantics(eql.PythonEngine):  # type: ignore[misc]  # eql ships no type hints
    """eql's PythonEngine with the operators replaced by their Elasticsearch meaning."""

    def _convert_field(self, node: Any) -> Callable[[Any], Any]:
        name = _field_name(node)

        def lookup(scope: Any) -> Any:
            return scope.event.data.get(name)

        return lookup

    def _convert_not(self, node: Any) -> Callable[[Any], bool]:
        term = self.convert(node.term)

        def negate(scope: Any) -> bool:
            return not term(scope)

        return negate

    def _convert_and(self, node: Any) -> Callable[[Any], bool]:
        terms = [self.convert(term) for term in node.terms]

        def all_terms(scope: Any) -> bool:
            return all(term(scope) for term in terms)

        return all_terms

    def _convert_or(self, node: Any) -> Callable[[Any], bool]:
        terms = [self.convert(term) for term in node.terms]

        def any_term(scope: Any) -> bool:
            return any(term(scope) for term in terms)

        return any_term

    def _convert_is_null(self, node: Any) -> Callable[[Any], bool]:
        value = self.convert(node.expr)
        return lambda scope: not _values(value(scope))

    def _convert_is_not_null(self, node: Any) -> Callable[[Any], bool]:
        value = self.convert(node.expr)
        return lambda scope: bool(_values(value(scope)))

    def _convert_in_set(self, node: Any) -> Callable[[Any], bool]:
        raise EqlQueryError("internal error: an 'in' expression was not rewritten")

    def _convert_comparison(self, node: Any) -> Callable[[Any], bool]:
        left, right, comparator = node.left, node.right, node.comparator
        if isinstance(left, eql.ast.Literal) and isinstance(right, eql.ast.Field):
            left, right = right, left
            comparator = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(comparator, comparator)
        if not isinstance(left, eql.ast.Field) or not isinstance(right, eql.ast.Literal):
            raise EqlQueryError(f"comparison {node} must compare a field with a value")
        get_value = self.convert(left)
        literal = right.value
        if literal is None:
            if comparator not in ("==", "!="):
                raise EqlQueryError(f"comparison {node} orders a field against null")
            wants_missing = bool(comparator == "==")
            return lambda scope: (not _values(get_value(scope))) == wants_missing
        if comparator in ("==", "!="):
            negate = bool(comparator == "!=")

            def equal(scope: Any) -> bool:
                found = any(_equals(v, literal, False) for v in _values(get_value(scope)))
                return found != negate

            return equal

        def ordered(scope: Any) -> bool:
            return any(_ordered(v, comparator, literal) for v in _values(get_value(scope)))

        return ordered

    def _convert_function_call(self, node: Any) -> Callable[[Any], bool]:
        if not node.arguments or not isinstance(node.arguments[0], eql.ast.Field):
            raise EqlQueryError(f"{node.name}() must take a field as its first argument")
        target = node.arguments[0]
        literals = node.arguments[1:]
        if not all(isinstance(arg, eql.ast.Literal) for arg in literals):
            raise EqlQueryError(
                f"{node.name}() compares a field with another field, which "
                "Elasticsearch does not support"
            )
        values = [arg.value for arg in literals]
        get_value = self.convert(target)
        test = self._value_test(node.name, _field_name(target), values)

        def call(scope: Any) -> bool:
            return any(test(value) for value in _values(get_value(scope)))

        return call

    @staticmethod
    def _value_test(name: str, field_name: str, values: list[Any]) -> Callable[[Any], bool]:
        """Return the per-value test of one function, as Elasticsearch evaluates it."""
        if name in (_CASE_SENSITIVE_WILDCARD, _CASE_INSENSITIVE_WILDCARD):
            insensitive = name == _CASE_INSENSITIVE_WILDCARD
            patterns = [wildcard_regex(str(value), insensitive) for value in values]
            return lambda v: isinstance(v, str) and any(p.fullmatch(v) for p in patterns)
        if name in (_CASE_SENSITIVE_REGEX, _CASE_INSENSITIVE_REGEX):
            insensitive = name == _CASE_INSENSITIVE_REGEX
            patterns = [lucene_regex(str(value), insensitive) for value in values]
            return lambda v: isinstance(v, str) and any(p.fullmatch(v) for p in patterns)
        if name in (_CASE_SENSITIVE_IN, _CASE_INSENSITIVE_IN):
            insensitive = name == _CASE_INSENSITIVE_IN
            return lambda v: any(_equals(v, literal, insensitive) for literal in values)
        if name == "cidrMatch":
            return _cidr_test(field_name, values)
        raise EqlQueryError(
            f"EQL function {name}() is not emulated by the local engine",
            hint="extend siemgen.engines.eql with the function's Elasticsearch semantics",
        )


def _cidr_test(field_name: str, networks: list[Any]) -> Callable[[Any], bool]:
    if field_type(field_name) != "ip":
        texts = {str(network) for network in networks}
        return lambda v: v in texts
    try:
        parsed = [ipaddress.ip_network(str(network), strict=False) for network in networks]
    except ValueError as error:
        raise EqlQueryError(f"invalid network in cidrMatch(): {error}") from error

    def contains(value: Any) -> bool:
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            return False
        return any(address in network for network in parsed)

    return contains


def matching_event_ids(query: str, records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Run an EQL query on raw CloudTrail records and return the eventIDs it matches."""
    listed = list(records)
    documents = [elastic_document(record) for record in listed]
    matched = compile_query(query).matching(documents)
    return {str(listed[index].get("eventID")) for index in matched}
