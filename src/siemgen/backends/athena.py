"""pySigma backend that turns Sigma rules into Trino SQL as Athena engine version 3 runs it.

Semantics kept from Sigma:

- Strings match case-insensitively (``lower(column) = 'value'``, the value lowered here)
  unless the rule uses ``cased`` or the pipeline declares the field exact-case because AWS
  always writes it in one spelling. Exact-case fields compare without ``lower()``, so Athena can
  push the predicate down to Parquet or ORC statistics.
- ``NOT`` is NULL-safe: ``NOT coalesce(x, false)``, so a missing field counts as not matching
  its condition, as in Sigma, instead of making the whole negation NULL.
- Wildcards become ``LIKE`` with an explicit ``ESCAPE '\\'``. Literal ``%``, ``_`` and ``\\``
  are escaped and single quotes are doubled, so no value can leave its string literal.
- Regular expressions go to ``regexp_like``, which uses Java regex syntax and finds a match
  anywhere in the value, as Sigma's ``re`` does.
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    TimestampPart,
)

from siemgen.backends.athena_fields import AthenaField, FieldKind, SqlType, parse_field
from siemgen.backends.athena_sql import (
    LIKE_ESCAPE,
    FieldRenderer,
    Leaf,
    explicit_lower_bounds,
    fold_case,
    like_pattern,
    outcome_condition,
    plain_text,
    quote_literal,
)
from siemgen.backends.athena_tables import STATE_KEY, AthenaTable, quote_table
from siemgen.backends.unsupported import cased_status_error
from siemgen.errors import ConfigError, ConversionError, SiemgenError, UnsupportedFeatureError

logger = logging.getLogger(__name__)

# The QueryString of AWS::Athena::NamedQuery is limited to 262144 bytes.
NAMED_QUERY_MAX_BYTES = 262144

_LOOKBACK = re.compile(r"([1-9][0-9]{0,5})\s*([smhd])")
_LOOKBACK_UNITS = {"s": "SECOND", "m": "MINUTE", "h": "HOUR", "d": "DAY"}
_TIMESTAMP_PARTS = {
    TimestampPart.MINUTE: "minute",
    TimestampPart.HOUR: "hour",
    TimestampPart.DAY: "day",
    TimestampPart.WEEK: "week",
    TimestampPart.MONTH: "month",
    TimestampPart.YEAR: "year",
}
_COMPARE_OPERATORS = {
    CompareOperators.LT: "<",
    CompareOperators.LTE: "<=",
    CompareOperators.GT: ">",
    CompareOperators.GTE: ">=",
}


def parse_lookback(lookback: str | None) -> tuple[int, str] | None:
    """Parse a lookback such as ``24h``, ``7d``, ``30m`` or ``none`` into (count, SQL unit)."""
    if lookback is None or lookback.strip().lower() in ("", "none", "off"):
        return None
    match = _LOOKBACK.fullmatch(lookback.strip().lower())
    if match is None:
        raise ConfigError(
            f"invalid lookback {lookback!r}",
            target="athena",
            hint="write a count and a unit s, m, h or d (for example 24h or 7d), or none",
        )
    return int(match.group(1)), _LOOKBACK_UNITS[match.group(2)]


class AthenaBackend(TextQueryBackend):
    """Convert Sigma rules for CloudTrail into Athena (Trino) SQL."""

    name: ClassVar[str] = "siemgen Athena (Trino SQL) backend"
    identifier: ClassVar[str] = "athena"
    formats: ClassVar[dict[str, str]] = {
        "default": "Full SELECT query over the CloudTrail table",
        "condition": "Bare boolean SQL condition for a table or view with the Athena columns",
        "named_query": "Query text ready for the QueryString of AWS::Athena::NamedQuery",
    }
    requires_pipeline: ClassVar[bool] = True

    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT,
        ConditionAND,
        ConditionOR,
    )
    group_expression: ClassVar[str] = "({expr})"
    token_separator: str = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " = "

    def __init__(
        self,
        processing_pipeline: ProcessingPipeline | None = None,
        collect_errors: bool = False,
        lookback: str | None = None,
        order_by: bool | str = True,
        **backend_options: Any,
    ) -> None:
        super().__init__(processing_pipeline, collect_errors, **backend_options)
        self.lookback = parse_lookback(lookback)
        self.order_by = str(order_by).strip().lower() not in ("false", "no", "0", "none")

    # Rule-level entry points.

    def convert_rule(
        self, rule: SigmaRule, output_format: str | None = None, callback: Any = None
    ) -> list[Any]:
        """Convert one rule, adding the rule's title to any siemgen error raised on the way."""
        try:
            return super().convert_rule(rule, output_format, callback)
        except SiemgenError as error:
            if error.rule is None:
                error.rule = str(rule.title)
            if error.target is None:
                error.target = "athena"
            raise

    def _table(self, state: ConversionState) -> AthenaTable:
        table = state.processing_state.get(STATE_KEY)
        if not isinstance(table, AthenaTable):
            raise ConversionError(
                "the Athena backend needs one of the siemgen Athena pipelines",
                target="athena",
                hint="pass processing_pipeline=athena_pipeline() or sigma convert -p "
                "athena-cloudtrail",
            )
        return table

    def _renderer(self, field: str) -> FieldRenderer:
        return FieldRenderer(parse_field(field), self._sigma_name(field))

    def _sigma_name(self, field: str) -> str:
        """Return the rule's own name for a mapped field, for error messages."""
        pipeline = getattr(self, "last_processing_pipeline", None)
        sources = pipeline.field_mappings.target_fields.get(field) if pipeline else None
        names = sorted(str(name) for name in sources or () if name is not None)
        return " or ".join(names) if names else field

    def _folds(self, field: str, state: ConversionState, cased: bool) -> bool:
        """Return True when a comparison on the field must lower-case both sides."""
        return not cased and field not in self._table(state).exact_case

    # Field = value conditions.

    def _string_leaf(self, value: SigmaString, field: str, fold: bool) -> Leaf:
        text = plain_text(value, field)
        if text is not None:
            literal = quote_literal(fold_case(text) if fold else text)
            return lambda expr: f"lower({expr}) = {literal}" if fold else f"{expr} = {literal}"
        pattern = like_pattern(value, field)
        literal = quote_literal(fold_case(pattern) if fold else pattern)
        escape = quote_literal(LIKE_ESCAPE)
        return lambda expr: (
            f"lower({expr}) LIKE {literal} ESCAPE {escape}"
            if fold
            else f"{expr} LIKE {literal} ESCAPE {escape}"
        )

    def _string(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState, cased: bool
    ) -> str:
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaString):
            raise TypeError(f"expected a string value, got {value!r}")
        renderer = self._renderer(field)
        if renderer.field.kind is FieldKind.OUTCOME:
            if cased:
                raise cased_status_error(renderer.original)
            return self._outcome(renderer.field, value, renderer.original)
        leaf = self._string_leaf(value, field, self._folds(field, state, cased))
        return renderer.value(leaf, "string matching")

    def _outcome(self, athena_field: AthenaField, value: SigmaString, field: str) -> str:
        text = plain_text(value, field)
        if text is not None and text.lower() in ("success", "failure"):
            return outcome_condition(athena_field.column, text.lower())
        raise UnsupportedFeatureError(
            f"value {str(value)!r} of field {field!r} is not supported: status matches "
            "only success or failure, which Athena derives from errorcode, errormessage and "
            "a sign-in's responseElements",
            field=field,
            hint="write status: success or status: failure, or test errorCode directly",
        )

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert a case-insensitive string match (plain value or wildcards)."""
        return self._string(cond, state, cased=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert a ``cased`` string match."""
        return self._string(cond, state, cased=True)

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert a number match, comparing with the text of the number (leaves are text)."""
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaNumber):
            raise TypeError(f"expected a number, got {value!r}")
        # NOTE: the number is compared with its decimal text, so 1.0 does not match "1".
        literal = quote_literal(str(value.number))
        return self._renderer(field).value(lambda expr: f"{expr} = {literal}", "number matching")

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert a boolean match against the text ``'true'`` or ``'false'``."""
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaBool):
            raise TypeError(f"expected a boolean, got {value!r}")
        literal = "'true'" if value.boolean else "'false'"
        return self._renderer(field).value(
            lambda expr: f"lower({expr}) = {literal}", "boolean matching"
        )

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert a regular expression match to ``regexp_like``.

        Trino runs Java regular expressions and the DuckDB test engine runs RE2, which has no
        backreferences or lookaround, so rules using them convert but cannot be tested locally.
        Trino documents ``(?i)`` as Unicode-aware.
        """
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaRegularExpression):
            raise TypeError(f"expected a regular expression, got {value!r}")
        flags = "".join(
            letter
            for flag, letter in (
                (SigmaRegularExpressionFlag.IGNORECASE, "i"),
                (SigmaRegularExpressionFlag.MULTILINE, "m"),
                (SigmaRegularExpressionFlag.DOTALL, "s"),
            )
            if flag in value.flags
        )
        pattern = (f"(?{flags})" if flags else "") + explicit_lower_bounds(str(value.regexp))
        literal = quote_literal(pattern)
        return self._renderer(field).value(
            lambda expr: f"regexp_like({expr}, {literal})", "regular expression matching"
        )

    def convert_condition_field_eq_val_cidr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert a CIDR match, where values that are not IP addresses (service names) fail."""
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaCIDRExpression):
            raise TypeError(f"expected a CIDR network, got {value!r}")
        network = quote_literal(str(value.network))
        return self._renderer(field).value(
            lambda expr: f"contains({network}, try_cast({expr} AS IPADDRESS))", "cidr matching"
        )

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert ``lt``, ``lte``, ``gt`` and ``gte``, where text that is not a number fails."""
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaCompareExpression):
            raise TypeError(f"expected a comparison, got {value!r}")
        operator = _COMPARE_OPERATORS[value.op]
        number = value.number.number
        return self._renderer(field).value(
            lambda expr: f"try_cast({expr} AS DOUBLE) {operator} {number}", "numeric comparison"
        )

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert the minute, hour, day, week, month and year modifiers."""
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaTimestampPart):
            raise TypeError(f"expected a timestamp part, got {value!r}")
        function = _TIMESTAMP_PARTS[value.timestamp_part]
        renderer = self._renderer(field)
        athena_field = renderer.field
        if athena_field.kind is FieldKind.COLUMN and athena_field.sql_type is SqlType.TIMESTAMP:
            return f"{function}({athena_field.column}) = {value.number}"
        return renderer.value(
            lambda expr: f"{function}(try(from_iso8601_timestamp({expr}))) = {value.number}",
            f"the {function} modifier",
        )

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert ``fieldref`` (with ``startswith``, ``endswith`` or ``contains``)."""
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaFieldReference):
            raise TypeError(f"expected a field reference, got {value!r}")
        other = self._renderer(value.field)
        single_valued = (
            other.field.kind is FieldKind.COLUMN and other.field.sql_type is not SqlType.TIMESTAMP
        ) or (
            other.field.kind is FieldKind.JSON and not any(step.each for step in other.field.steps)
        )
        if not single_valued:
            raise UnsupportedFeatureError(
                f"fieldref to field {other.original!r} from field {self._sigma_name(field)!r} "
                "is not supported: "
                "the referenced field must hold one value, not an array, a timestamp or status",
                field=self._sigma_name(field),
                hint="reference a top-level, userIdentity or JSON key field outside arrays",
            )
        fold = self._folds(field, state, False) or self._folds(value.field, state, False)
        other_sql = other.value(lambda expr: expr, "fieldref")
        right = f"lower({other_sql})" if fold else other_sql

        def leaf(expr: str) -> str:
            left = f"lower({expr})" if fold else expr
            if value.starts_with and value.ends_with:
                return f"strpos({left}, {right}) > 0"
            if value.starts_with:
                return f"starts_with({left}, {right})"
            if value.ends_with:
                return f"starts_with(reverse({left}), reverse({right}))"
            return f"{left} = {right}"

        return self._renderer(field).value(leaf, "fieldref")

    def convert_condition_field_eq_val_null(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert ``field: null``: the field is absent or JSON null."""
        return self._absent(self._field_name(cond))

    def convert_condition_field_eq_val_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Convert the ``exists`` modifier."""
        field = self._field_name(cond)
        value = cond.value
        if not isinstance(value, SigmaExists):
            raise TypeError(f"expected an exists value, got {value!r}")
        return self._renderer(field).present() if value.exists else self._absent(field)

    def _absent(self, field: str) -> str:
        renderer = self._renderer(field)
        if renderer.field.kind is FieldKind.COLUMN:
            return f"{renderer.field.column} IS NULL"
        return f"NOT coalesce({renderer.present()}, false)"

    def convert_condition_field_eq_query_expr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        """Reject query expressions, which no siemgen Athena pipeline produces."""
        raise UnsupportedFeatureError(
            f"query expression placeholders on field {cond.field!r} are not supported",
            field=cond.field,
            hint="give placeholder values to athena_pipeline(placeholders={...})",
        )

    @staticmethod
    def _field_name(cond: ConditionFieldEqualsValueExpression) -> str:
        return str(cond.field)

    # Lists of plain values on one column become IN lists.

    def decide_convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> bool:
        """Use ``IN`` for an OR of plain, wildcard-free values on one plain column."""
        if not isinstance(cond, ConditionOR) or len(cond.args) < 2:
            return False
        fields: set[str] = set()
        for arg in cond.args:
            if not isinstance(arg, ConditionFieldEqualsValueExpression):
                return False
            value = arg.value
            if type(value) not in (SigmaString, SigmaCasedString) or not isinstance(
                value, SigmaString
            ):
                return False
            if plain_text(value, arg.field) is None:
                return False
            fields.add(f"{arg.field}|{type(value).__name__}")
        if len(fields) != 1:
            return False
        athena_field = parse_field(next(iter(fields)).split("|")[0])
        return athena_field.kind is FieldKind.COLUMN and athena_field.sql_type is SqlType.VARCHAR

    def convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> str:
        """Convert an OR of plain values on one column to ``column IN (...)``."""
        first = cond.args[0]
        if not isinstance(first, ConditionFieldEqualsValueExpression):
            raise TypeError("an IN list needs field conditions")
        field = self._field_name(first)
        fold = self._folds(field, state, isinstance(first.value, SigmaCasedString))
        literals: list[str] = []
        for arg in cond.args:
            if not isinstance(arg, ConditionFieldEqualsValueExpression) or not isinstance(
                arg.value, SigmaString
            ):
                raise TypeError("an IN list needs string values")
            text = plain_text(arg.value, field) or ""
            literal = quote_literal(fold_case(text) if fold else text)
            if literal not in literals:
                literals.append(literal)
        column = parse_field(field).column
        expr = f"lower({column})" if fold else column
        return f"{expr} IN ({', '.join(literals)})"

    # Boolean operators.

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str | None:
        """Convert NOT so that a NULL (missing field) inside counts as not matching."""
        arg = cond.args[0]
        if arg is None:
            return None
        inner = self.convert_condition(arg, state)
        if inner is None:
            return None
        return f"NOT coalesce({inner}, false)"

    # Keyword (full-text) detections.

    def _keyword(self, value: Any, state: ConversionState) -> str:
        table = self._table(state)
        if table.keyword_column is None:
            raise UnsupportedFeatureError(
                f"keyword detection {str(value)!r} is not supported: the Athena {table.profile} "
                "table has no column with the whole record as text",
                hint="name the field to search, or pass keyword_column= to athena_pipeline for "
                "a table that keeps the raw record",
            )
        column = table.keyword_column
        if isinstance(value, SigmaString):
            text = SigmaString("*") + value + SigmaString("*")
            return self._string_leaf(text, column, fold=not isinstance(value, SigmaCasedString))(
                column
            )
        if isinstance(value, SigmaNumber):
            return f"strpos({column}, {quote_literal(str(value.number))}) > 0"
        if isinstance(value, SigmaRegularExpression):
            pattern = explicit_lower_bounds(str(value.regexp))
            return f"regexp_like({column}, {quote_literal(pattern)})"
        raise UnsupportedFeatureError(
            f"keyword value {value!r} of type {type(value).__name__} is not supported",
            hint="use a string, number or regular expression keyword",
        )

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        """Convert a string keyword detection to a search of the raw-record column."""
        return self._keyword(cond.value, state)

    def convert_condition_val_num(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        """Convert a number keyword detection to a search of the raw-record column."""
        return self._keyword(cond.value, state)

    def convert_condition_val_re(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        """Convert a regular expression keyword detection to a search of the raw-record column."""
        return self._keyword(cond.value, state)

    def convert_condition_query_expr(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        """Reject query expressions without a field."""
        return self._keyword(cond.value, state)

    # Output formats.

    def _time_filters(self, table: AthenaTable) -> list[str]:
        if self.lookback is None:
            return []
        count, unit = self.lookback
        since = f"current_timestamp - INTERVAL '{count}' {unit}"
        filters = [f"{table.time_expression} >= {since}"]
        if table.partition_column is not None:
            partition = _quote_partition(table.partition_column)
            pattern = quote_literal(table.partition_format)
            filters.insert(0, f"{partition} >= date_format({since}, {pattern})")
        return filters

    def full_query(self, condition: str, state: ConversionState) -> str:
        """Build the full SELECT around a condition, with the lookback window if one is set."""
        table = self._table(state)
        columns = ",\n".join(
            f"  {expr}" if expr == alias else f"  {expr} AS {alias}" for expr, alias in table.select
        )
        where = [f"({condition})", *self._time_filters(table)]
        lines = [
            "SELECT",
            columns,
            f"FROM {quote_table(table.table)}",
            "WHERE " + "\n  AND ".join(where),
        ]
        if self.order_by:
            lines.append(f"ORDER BY {table.order_by}")
        return "\n".join(lines)

    def finalize_query_default(
        self, rule: SigmaRule, query: str, index: int, state: ConversionState
    ) -> str:
        """Return the full SELECT query."""
        return self.full_query(query, state)

    def finalize_query_condition(
        self, rule: SigmaRule, query: str, index: int, state: ConversionState
    ) -> str:
        """Return the bare boolean condition."""
        return query

    def finalize_query_named_query(
        self, rule: SigmaRule, query: str, index: int, state: ConversionState
    ) -> str:
        """Return the full query headed by a comment naming the rule, for a NamedQuery."""
        title = " ".join(str(rule.title).split())
        header = [f"-- {title}"]
        if rule.id:
            header.append(f"-- Sigma rule id: {rule.id}")
        text = "\n".join([*header, self.full_query(query, state)])
        size = len(text.encode("utf-8"))
        if size > NAMED_QUERY_MAX_BYTES:
            raise UnsupportedFeatureError(
                f"the query is {size} bytes, more than the {NAMED_QUERY_MAX_BYTES} bytes "
                "AWS::Athena::NamedQuery accepts",
                hint="split the rule into smaller rules",
            )
        return text

    def finalize_output_condition(self, queries: list[str]) -> list[str]:
        """Return the conditions as a list."""
        return queries

    def finalize_output_named_query(self, queries: list[str]) -> list[str]:
        """Return the named-query texts as a list."""
        return queries


def _quote_partition(name: str) -> str:
    """Quote a partition column; ``timestamp`` is a reserved word in Athena DDL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ConfigError(
            f"invalid partition column {name!r}",
            target="athena",
            hint="use a lowercase column name of letters, digits and underscores",
        )
    return f'"{name}"'
