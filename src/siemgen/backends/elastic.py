"""pySigma's Elastic Lucene, ES|QL and EQL backends, with their escaping made complete.

Each subclass fixes a way in which pySigma-backend-elasticsearch 2.1 lets a rule's text change
the meaning of the query it writes. The fuzz tests in ``tests/test_fuzz_escaping.py`` show
each case with a parser of the language.

Lucene (``query_string``):
    whitespace other than a space (newline, tab) was written unescaped and split the term, a
    plain value ``AND``, ``OR`` or ``NOT`` was read as an operator and one starting with ``<``
    or ``>`` as a range. Field names were escaped only for whitespace and ``*``.
ES|QL:
    newline and carriage return were written raw inside strings, which ES|QL rejects. Escaped
    wildcards were written as ``\\*``, an invalid string escape, and a literal backslash in a
    ``like`` pattern lost its second level of escaping. Non-ASCII field names were unquoted.
EQL:
    newline was written as a backslash and a raw line break, and ``"`` inside a regular
    expression was not escaped. EQL's ``:`` and ``like~`` have no escape for ``*`` and ``?``,
    so values with a literal ``*``, ``?`` or ``\\`` are now written as ``regex~``. Field names
    with ``-``, ``:`` or quotes, or a path part that is an EQL keyword, were unquoted.
All three:
    regular expressions are Lucene ``RegExp`` syntax in Elasticsearch, where ``"`` starts a
    quoted string and ``# @ & < > ~`` are operators, so those characters are escaped when a
    Sigma (PCRE) regular expression uses them as plain characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any, ClassVar

from sigma.backends.elasticsearch.elasticsearch_eql import EqlBackend as PySigmaEqlBackend
from sigma.backends.elasticsearch.elasticsearch_esql import ESQLBackend as PySigmaESQLBackend
from sigma.backends.elasticsearch.elasticsearch_lucene import (
    LuceneBackend as PySigmaLuceneBackend,
)
from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionOR
from sigma.conversion.state import ConversionState
from sigma.types import Placeholder, SigmaRegularExpression, SigmaString, SpecialChars

from siemgen.errors import UnsupportedFeatureError
from siemgen.lexers import esql

TARGET = "elastic"

# Characters that Lucene's RegExp reads as operators but PCRE reads as plain characters.
LUCENE_REGEX_ONLY_OPERATORS = frozenset('"#@&<>~')
# Every character Lucene's RegExp reserves (Elasticsearch "Regular expression syntax").
LUCENE_REGEX_RESERVED = frozenset('.?+*|{}[]()"\\#@&<>~')
# Characters to escape in a query_string term: the reserved ones, ``'``, ``<`` and ``>``, and
# every character Python's ``str.isspace`` accepts, because parsers split terms on all of them.
LUCENE_QUERY_RESERVED = (
    "+-=&|!(){}[]^\"~*?:\\/'<> \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
LUCENE_KEYWORDS = frozenset({"AND", "OR", "NOT", "TO"})

_ESQL_UNQUOTED_PART = r"(?:[A-Za-z][A-Za-z0-9_]*|[_@][A-Za-z0-9_]+)"
_ESQL_UNQUOTED_FIELD = re.compile(rf"{_ESQL_UNQUOTED_PART}(?:\.{_ESQL_UNQUOTED_PART})*")
_EQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words the eql grammar reserves, which cannot be a bare part of a field path.
EQL_KEYWORDS = frozenset(
    {
        "and", "any", "by", "false", "in", "join", "like", "maxspan", "not", "null", "of",
        "or", "regex", "runs", "sequence", "true", "until", "where", "with",
    }
)  # fmt: skip


def _control_characters(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) == "Cc"]


def reject_field_controls(field_name: str, language: str) -> None:
    """Raise UnsupportedFeatureError when a field name contains a control character."""
    controls = _control_characters(field_name)
    if controls:
        raise UnsupportedFeatureError(
            f"field {field_name!r} contains the control character {controls[0]!r}, which a "
            f"{language} field name cannot carry",
            field=field_name,
            target=TARGET,
            hint="rename the key in the rule",
        )


def string_parts(value: SigmaString) -> Iterator[str | SpecialChars]:
    """Yield the text and wildcards of a Sigma string, rejecting unexpanded placeholders."""
    for part in value.s:
        if isinstance(part, Placeholder):
            raise UnsupportedFeatureError(
                f"value {str(value)!r} has the placeholder %{part.name}%, which has no value here",
                target=TARGET,
                hint="expand the placeholder in a pipeline or remove the expand modifier",
            )
        yield part


def lucene_regex(regex: str, also_escape: str = "") -> str:
    """Escape the characters of a PCRE regular expression that Lucene's RegExp would misread.

    An already escaped character is copied unchanged. ``also_escape`` names characters the
    surrounding syntax needs escaped, such as ``/`` in a query_string ``/regex/``.
    """
    out: list[str] = []
    index = 0
    while index < len(regex):
        char = regex[index]
        if char == "\\" and index + 1 < len(regex):
            out.append(regex[index : index + 2])
            index += 2
            continue
        if char in LUCENE_REGEX_ONLY_OPERATORS or char in also_escape:
            out.append("\\")
        out.append(char)
        index += 1
    return "".join(out)


def _flag_prefix(backend: Any, r: SigmaRegularExpression) -> str:
    if not (backend.re_flag_prefix and r.flags):
        return ""
    return "(?" + "".join(sorted(r.sigma_to_re_flag[flag] for flag in r.flags)) + ")"


def wildcard_text(value: SigmaString, escape: str = "") -> str:
    """Write a Sigma string with ``*`` and ``?`` wildcards, escaping ``escape`` characters.

    Each character of ``escape`` in the literal text gets a backslash before it.
    """
    out: list[str] = []
    for part in string_parts(value):
        if part is SpecialChars.WILDCARD_MULTI:
            out.append("*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append("?")
        elif isinstance(part, str):
            out.extend("\\" + char if char in escape else char for char in part)
    return "".join(out)


def wildcard_regex(value: SigmaString) -> str:
    """Write a Sigma string as a Lucene regular expression that matches the same strings."""
    out: list[str] = []
    for part in string_parts(value):
        if part is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        elif isinstance(part, str):
            out.extend("\\" + char if char in LUCENE_REGEX_RESERVED else char for char in part)
    return "".join(out)


class LuceneBackend(PySigmaLuceneBackend):
    """Lucene query_string backend that escapes every reserved character and whitespace."""

    add_escaped: ClassVar[str] = LUCENE_QUERY_RESERVED
    field_escape_pattern: ClassVar[re.Pattern[str]] = re.compile(
        r"[\s+\-=&|!(){}\[\]^\"~*?:\\/'<>]"
    )

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """Convert a value, writing a phrase where a bare term would be read as syntax."""
        parts = list(string_parts(s))
        if all(isinstance(part, str) for part in parts):
            text = "".join(str(part) for part in parts)
            if text.upper() in LUCENE_KEYWORDS or text.startswith(("<", ">")) or "\n" in text:
                return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        result: str = super().convert_value_str(s, state)
        return result

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field = value``, as a ``/regex/`` when a wildcard value has a newline.

        A term cannot contain a line break: the query_string grammar accepts a backslash
        before one, but parsers such as luqum do not, so the regex form is used instead.
        """
        value = cond.value
        if (
            isinstance(value, SigmaString)
            and value.contains_special()
            and any(isinstance(part, str) and "\n" in part for part in value.s)
        ):
            regex = wildcard_regex(value).replace("/", "\\/")
            return f"{self.escape_and_quote_field(cond.field)}:/{regex}/"
        return super().convert_condition_field_eq_val_str(cond, state)

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        """Convert a regular expression for a query_string ``/regex/`` term."""
        return _flag_prefix(self, r) + lucene_regex(str(r.regexp), also_escape="/")

    def escape_and_quote_field(self, field_name: str) -> str:
        """Escape a field name, rejecting characters query_string cannot escape."""
        reject_field_controls(field_name, "Lucene")
        if "<" in field_name or ">" in field_name:
            raise UnsupportedFeatureError(
                f"field {field_name!r} contains '<' or '>', which Elasticsearch's "
                "query_string cannot escape",
                field=field_name,
                target=TARGET,
                hint="rename the key in the rule",
            )
        result: str = super().escape_and_quote_field(field_name)
        return result


class ESQLBackend(PySigmaESQLBackend):
    """ES|QL backend that writes every string through one ES|QL string-literal encoder."""

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """Convert a value to an ES|QL string: a ``like`` pattern when it has wildcards."""
        # A LIKE pattern escapes its own * ? and \ with a backslash, and the string literal
        # then escapes that backslash again. Other comparisons take the text as it is.
        escape = "*?\\" if s.contains_special() else ""
        return esql.quote_string(wildcard_text(s, escape))

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        """Convert a regular expression to the inside of an ES|QL ``rlike "..."`` string."""
        regex = _flag_prefix(self, r) + lucene_regex(str(r.regexp))
        return esql.quote_string(regex)[1:-1]

    def escape_and_quote_field(self, field_name: str) -> str:
        """Quote a field name with backticks unless ES|QL reads it bare, doubling backticks."""
        reject_field_controls(field_name, "ES|QL")
        if _ESQL_UNQUOTED_FIELD.fullmatch(field_name):
            return field_name
        return "`" + field_name.replace("`", "``") + "`"


def _eql_string(text: str) -> str:
    """Write text as an EQL double-quoted string literal."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(char, char) for char in text) + '"'


def _needs_eql_regex(value: Any) -> bool:
    """Tell whether a value has a literal ``*``, ``?`` or ``\\`` that EQL wildcards misread."""
    if not isinstance(value, SigmaString):
        return False
    return any(isinstance(part, str) and any(char in "*?\\" for char in part) for part in value.s)


class EqlBackend(PySigmaEqlBackend):
    """EQL backend with complete string escaping and regex~ for literal wildcard characters."""

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """Convert a value to an EQL string for ``:``, ``like~`` or ``==``."""
        return _eql_string(wildcard_text(s))

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field = value``, as ``regex~`` when the value has literal ``*?\\``."""
        value = cond.value
        if isinstance(value, SigmaString) and _needs_eql_regex(value):
            regex = wildcard_regex(value)
            return f"{self.escape_and_quote_field(cond.field)} regex~ {_eql_string(regex)}"
        return super().convert_condition_field_eq_val_str(cond, state)

    def decide_convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> bool:
        """Keep values that need ``regex~`` out of ``like~ (...)`` lists."""
        if any(
            isinstance(arg, ConditionFieldEqualsValueExpression) and _needs_eql_regex(arg.value)
            for arg in cond.args
        ):
            return False
        result: bool = super().decide_convert_condition_as_in_expression(cond, state)
        return result

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        """Convert a regular expression to the inside of an EQL ``regex~ "..."`` string."""
        regex = _flag_prefix(self, r) + lucene_regex(str(r.regexp))
        return _eql_string(regex)[1:-1]

    def escape_and_quote_field(self, field_name: str) -> str:
        """Quote a field name with backticks unless every part is a plain EQL name."""
        reject_field_controls(field_name, "EQL")
        if "`" in field_name:
            raise UnsupportedFeatureError(
                f"field {field_name!r} contains a backtick, which an EQL field name cannot carry",
                field=field_name,
                target=TARGET,
                hint="rename the key in the rule",
            )
        parts = field_name.split(".")
        if all(_EQL_NAME.fullmatch(part) and part not in EQL_KEYWORDS for part in parts):
            return field_name
        return f"`{field_name}`"
