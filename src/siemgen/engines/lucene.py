"""Parse Elastic Lucene queries offline with luqum and check the field names they search."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

from siemgen.errors import SiemgenError

# Lucene's field existence query names a field as its value.
EXISTS_FIELD = "_exists_"
_ESCAPE = re.compile(r"\\(.)")


class LuceneQueryError(SiemgenError):
    """A Lucene query does not parse."""


def parse(query: str) -> Any:
    """Parse a Lucene query string into a luqum tree, raising LuceneQueryError."""
    try:
        return parser.parse(query)
    except (ParseError, ValueError) as error:
        raise LuceneQueryError(f"Lucene query does not parse: {error}") from error


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text)


def _walk(node: Any, field: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Yield (field in effect, node) for every node below ``node``."""
    yield field, node
    if isinstance(node, tree.SearchField):
        field = _unescape(str(node.name))
    for child in node.children:
        yield from _walk(child, field)


def field_names(query_tree: Any) -> list[str]:
    """Return the field names a parsed query searches, in order of first use."""
    names: list[str] = []
    for field, node in _walk(query_tree):
        if isinstance(node, tree.SearchField):
            name = _unescape(str(node.name))
            if name != EXISTS_FIELD and name not in names:
                names.append(name)
        elif field == EXISTS_FIELD and isinstance(node, tree.Word):
            name = _unescape(str(node.value))
            if name not in names:
                names.append(name)
    return names


def unfielded_terms(query_tree: Any) -> list[str]:
    """Return the terms that name no field, which Elasticsearch searches in default fields."""
    terms: list[str] = []
    for field, node in _walk(query_tree):
        if field is None and isinstance(node, tree.Term):
            terms.append(str(node.value))
    return terms


def check(query: str, allowed: Collection[str], allowed_prefixes: tuple[str, ...]) -> list[str]:
    """Return the problems of a Lucene query: a parse error, unknown fields or unfielded terms."""
    try:
        query_tree = parse(query)
    except LuceneQueryError as error:
        return [error.message]
    problems = [
        f"field {name!r} is not a field of the Elastic CloudTrail data stream"
        for name in field_names(query_tree)
        if name not in allowed and not name.startswith(allowed_prefixes)
    ]
    problems.extend(
        f"term {term!r} names no field, so Elasticsearch searches the default fields"
        for term in unfielded_terms(query_tree)
    )
    return problems


def warnings(query: str) -> list[str]:
    """Return notes on regular expressions whose ``^`` or ``$`` Lucene reads as characters."""
    try:
        query_tree = parse(query)
    except LuceneQueryError:
        return []
    notes = []
    for field, node in _walk(query_tree):
        if isinstance(node, tree.Regex) and re.search(r"(?<!\\)[\^$]", str(node.value)[1:-1]):
            notes.append(
                f"{field}: the regular expression {node.value} contains ^ or $, which Lucene "
                "reads as plain characters because its patterns always match the whole value"
            )
    return notes
