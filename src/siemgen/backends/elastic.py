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

Beyond escaping, the subclasses keep the meaning of the Sigma rule where pySigma's backends
change it:

- Regular expressions are translated by ``siemgen.backends.elastic_regex``, because a Lucene
  pattern must match the whole value and has no anchors or inline flags. EQL writes ``regex``
  for Sigma's case-sensitive ``re`` and ``regex~`` for ``re|i``; Lucene and ES|QL have no
  case-insensitive regex operator, so ``re|i`` is written into the pattern as ``[aA]``.
- ES|QL's ``not`` of a missing field's comparison is null, and ``where`` drops the row, so
  every negation is written as ``not coalesce(<condition>, false)``: a missing field counts as
  not matching, as in Sigma and the Athena SQL.
- ``|cased`` matches keyword fields as they are on Lucene and ES|QL, which compare keywords
  case-sensitively, and uses EQL's case-sensitive ``==``, ``like`` and ``regex``.
- EQL writes ``==`` for booleans and numbers (``field:false`` is invalid EQL) and ``?field !=
  null`` for ``|exists``.
- Constructs a language cannot express (keywords in EQL and ES|QL, field references in Lucene
  and EQL, timestamp parts) raise UnsupportedFeatureError naming the field and modifier.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any, ClassVar, NoReturn

from sigma.backends.elasticsearch.elasticsearch_eql import EqlBackend as PySigmaEqlBackend
from sigma.backends.elasticsearch.elasticsearch_esql import ESQLBackend as PySigmaESQLBackend
from sigma.backends.elasticsearch.elasticsearch_lucene import (
    LuceneBackend as PySigmaLuceneBackend,
)
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.state import ConversionState
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaNull,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from siemgen.backends import elastic_regex
from siemgen.backends.unsupported import (
    ExplainUnsupported,
    unsupported_for_field,
    unsupported_keyword,
)
from siemgen.errors import UnsupportedFeatureError
from siemgen.lexers import esql

TARGET = "elastic"

# Characters that Lucene's RegExp reads as operators but PCRE reads as plain characters.
LUCENE_REGEX_ONLY_OPERATORS = frozenset('"#@&<>~')
LUCENE_REGEX_RESERVED = elastic_regex.LUCENE_REGEX_RESERVED
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
# Words that ES|QL's grammar reads as operators or clause keywords, in any case. A field path
# with one of them as a part is quoted; quoting a name that needs none is always valid.
ESQL_KEYWORDS = frozenset(
    {
        "and", "as", "asc", "by", "desc", "false", "first", "in", "is", "last", "like",
        "match", "metadata", "not", "null", "nulls", "on", "or", "rlike", "true", "with",
    }
)  # fmt: skip
_EQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words the eql grammar reserves, which cannot be a bare part of a field path.
EQL_KEYWORDS = frozenset(
    {
        "and", "any", "by", "false", "in", "join", "like", "maxspan", "not", "null", "of",
        "or", "regex", "runs", "sequence", "true", "until", "where", "with",
    }
)  # fmt: skip


def _characters(text: str, category: str) -> list[str]:
    """Return the characters of ``text`` in one Unicode general category, such as ``Cc``."""
    return [char for char in text if unicodedata.category(char) == category]


def reject_field_controls(field_name: str, language: str) -> None:
    """Raise UnsupportedFeatureError when a field name contains a control character.

    Invisible format characters (a zero-width space, a bidirectional override) are rejected
    too: the query would still name the rule's field, but a reviewer would read another one.
    """
    invisible = _characters(field_name, "Cf")
    if invisible:
        raise UnsupportedFeatureError(
            f"field {field_name!r} contains the invisible character {invisible[0]!r}, which "
            "would make the query show another field name than it searches",
            field=field_name,
            target=TARGET,
            hint="rename the key in the rule",
        )
    controls = _characters(field_name, "Cc")
    if controls:
        article = "an" if language[0] in "AEIOU" else "a"
        raise UnsupportedFeatureError(
            f"field {field_name!r} contains the control character {controls[0]!r}, which "
            f"{article} {language} field name cannot carry",
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


def translate_regex(
    cond: ConditionFieldEqualsValueExpression, language: str, fold_case: bool, also_escape: str = ""
) -> elastic_regex.LuceneRegex:
    """Translate the regular expression of a ``re`` condition into Lucene RegExp."""
    value = cond.value
    if not isinstance(value, SigmaRegularExpression):
        raise TypeError(f"expected a regular expression, got {type(value).__name__}")
    return elastic_regex.translate(
        str(value.regexp),
        value.flags,
        language=language,
        fold_case=fold_case,
        also_escape=also_escape,
        field=cond.field,
    )


def reject_field_reference(cond: ConditionFieldEqualsValueExpression, language: str) -> NoReturn:
    """Raise UnsupportedFeatureError for ``|fieldref``, which ``language`` cannot express."""
    raise unsupported_for_field(
        cond.field,
        cond.value,
        language,
        TARGET,
        f"{language} compares a field only with literal values",
        "compare the two fields in the Athena or Splunk query, or drop the condition",
    )


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


class LuceneBackend(ExplainUnsupported, PySigmaLuceneBackend):
    """Lucene query_string backend that escapes every reserved character and whitespace."""

    target: ClassVar[str] = TARGET
    language: ClassVar[str] = "Lucene"
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

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Any:
        """Convert ``NOT x``, grouping an ``x`` that starts with NOT itself.

        Lucene's classic query parser, whose grammar query_string uses, takes at most one
        modifier (``+``, ``-`` or ``NOT``) before a clause, so ``NOT NOT _exists_:f`` (from
        ``not`` around ``|exists: false``) is written ``NOT (NOT _exists_:f)``.
        """
        result = super().convert_condition_not(cond, state)
        if isinstance(result, str) and result.startswith("NOT NOT "):
            return f"NOT ({result[len('NOT ') :]})"
        return result

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field|cased = value`` like any value: keyword terms are case-sensitive."""
        return self.convert_condition_field_eq_val_str(cond, state)

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field|re = regex`` to a ``/regex/`` term that matches anywhere.

        query_string has no case-insensitive regex, so ``re|i`` is folded into the pattern.
        """
        regex = translate_regex(cond, self.language, fold_case=True, also_escape="/")
        return f"{self.escape_and_quote_field(cond.field)}:/{regex.pattern}/"

    # pySigma annotates ``cond`` as SigmaFieldReference but passes the whole condition.
    def convert_condition_field_eq_field(  # type: ignore[override]
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Raise UnsupportedFeatureError: query_string cannot compare two fields."""
        reject_field_reference(cond, self.language)

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        """Escape a regular expression for the ``{regex}`` placeholder of pySigma's templates.

        ``re`` conditions do not come here: convert_condition_field_eq_val_re translates them.
        """
        return lucene_regex(str(r.regexp), also_escape="/")

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


class ESQLBackend(ExplainUnsupported, PySigmaESQLBackend):
    """ES|QL backend that writes every string through one ES|QL string-literal encoder."""

    target: ClassVar[str] = TARGET
    language: ClassVar[str] = "ES|QL"
    explicit_not_exists_expression: ClassVar[bool] = True

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Any:
        """Convert ``not x`` so that a null ``x`` (a missing field) counts as not matching."""
        inner = self.convert_condition(cond.args[0], state)
        return f"not coalesce({inner}, false)"

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field|cased = value`` like any value: ``==`` and ``like`` keep case."""
        return self.convert_condition_field_eq_val_str(cond, state)

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field|re = regex`` to ``rlike``, which must match the whole value.

        RLIKE has no case-insensitive form, so ``re|i`` is folded into the pattern.
        """
        regex = translate_regex(cond, self.language, fold_case=True)
        field = self.escape_and_quote_field(cond.field)
        return f"{field} rlike {esql.quote_string(regex.pattern)}"

    def convert_condition_val(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        """Raise UnsupportedFeatureError: a WHERE condition needs a field to compare."""
        raise unsupported_keyword(cond.value, self.language, TARGET)

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """Convert a value to an ES|QL string: a ``like`` pattern when it has wildcards."""
        # A LIKE pattern escapes its own * ? and \ with a backslash, and the string literal
        # then escapes that backslash again. Other comparisons take the text as it is.
        escape = "*?\\" if s.contains_special() else ""
        return esql.quote_string(wildcard_text(s, escape))

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        """Escape a regular expression for the ``{regex}`` placeholder of pySigma's templates.

        ``re`` conditions do not come here: convert_condition_field_eq_val_re translates them.
        """
        return esql.quote_string(lucene_regex(str(r.regexp)))[1:-1]

    def escape_and_quote_field(self, field_name: str) -> str:
        """Quote a field name with backticks unless ES|QL reads it bare, doubling backticks."""
        reject_field_controls(field_name, "ES|QL")
        keyword = any(part.lower() in ESQL_KEYWORDS for part in field_name.split("."))
        if _ESQL_UNQUOTED_FIELD.fullmatch(field_name) and not keyword:
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


def _eql_match(field: str, value: SigmaString, case_sensitive: bool) -> str:
    """Write an EQL comparison of ``field`` with a Sigma string, with or without case."""
    if _needs_eql_regex(value):
        operator = "regex" if case_sensitive else "regex~"
        return f"{field} {operator} {_eql_string(wildcard_regex(value))}"
    if not case_sensitive:
        return f"{field}:{_eql_string(wildcard_text(value))}"
    # ``==`` compares the text exactly, so a pattern with wildcards needs ``like``.
    operator = "like" if value.contains_special() else "=="
    return f"{field} {operator} {_eql_string(wildcard_text(value))}"


class EqlBackend(ExplainUnsupported, PySigmaEqlBackend):
    """EQL backend with complete string escaping and regex~ for literal wildcard characters."""

    target: ClassVar[str] = TARGET
    language: ClassVar[str] = "EQL"
    field_exists_expression: ClassVar[str] = "?{field} != null"
    field_not_exists_expression: ClassVar[str] = "?{field} == null"
    explicit_not_exists_expression: ClassVar[bool] = True

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """Convert a value to an EQL string for ``:``, ``like~`` or ``==``."""
        return _eql_string(wildcard_text(s))

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field = value``, as ``regex~`` when the value has literal ``*?\\``."""
        value = cond.value
        if isinstance(value, SigmaString) and _needs_eql_regex(value):
            return _eql_match(self.escape_and_quote_field(cond.field), value, False)
        return super().convert_condition_field_eq_val_str(cond, state)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field|cased = value`` with ``==``, ``like`` or ``regex`` by its form."""
        value = cond.value
        if not isinstance(value, SigmaString):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return _eql_match(self.escape_and_quote_field(cond.field), value, True)

    def decide_convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> bool:
        """Keep values that need ``regex~``, and cased values, out of ``like~ (...)`` lists."""
        if any(
            isinstance(arg, ConditionFieldEqualsValueExpression)
            and (_needs_eql_regex(arg.value) or isinstance(arg.value, SigmaCasedString))
            for arg in cond.args
        ):
            return False
        result: bool = super().decide_convert_condition_as_in_expression(cond, state)
        return result

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field|re = regex`` to ``regex`` (case-sensitive, as Sigma) or ``regex~``.

        Sigma's ``re`` is case-sensitive, and ``re|i`` or a leading ``(?i)`` makes it
        case-insensitive. pySigma writes ``regex~`` for both, which matches too much.
        """
        regex = translate_regex(cond, self.language, fold_case=False)
        operator = "regex~" if regex.ignore_case else "regex"
        return f"{self.escape_and_quote_field(cond.field)} {operator} {_eql_string(regex.pattern)}"

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field = true|false`` with ``==``, because EQL's ``:`` takes strings only."""
        value = cond.value
        if not isinstance(value, SigmaBool):
            raise TypeError(f"expected a boolean, got {type(value).__name__}")
        return f"{self.escape_and_quote_field(cond.field)} == {self.bool_values[value.boolean]}"

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field = number`` with ``==``, because EQL's ``:`` takes strings only."""
        return f"{self.escape_and_quote_field(cond.field)} == {cond.value}"

    # pySigma annotates ``cond`` as SigmaFieldReference but passes the whole condition.
    def convert_condition_field_eq_field(  # type: ignore[override]
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Raise UnsupportedFeatureError: EQL cannot compare two fields."""
        reject_field_reference(cond, self.language)

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Any:
        """Convert ``not x``, writing ``not (field == null)`` as a quoted ``?field != null``."""
        inner = cond.args[0]
        if isinstance(inner, ConditionFieldEqualsValueExpression) and isinstance(
            inner.value, SigmaNull
        ):
            return f"?{self.escape_and_quote_field(inner.field)} != null"
        return super().convert_condition_not(cond, state)

    def convert_condition_val(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        """Raise UnsupportedFeatureError: an EQL condition needs a field to compare."""
        raise unsupported_keyword(cond.value, self.language, TARGET)

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        """Escape a regular expression for the ``{regex}`` placeholder of pySigma's templates.

        ``re`` conditions do not come here: convert_condition_field_eq_val_re translates them.
        """
        return _eql_string(lucene_regex(str(r.regexp)))[1:-1]

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
