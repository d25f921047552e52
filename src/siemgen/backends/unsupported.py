"""Turn pySigma's NotImplementedError for a Sigma construct into an UnsupportedFeatureError.

pySigma's text backends raise a bare NotImplementedError when their query language has no
template for a value type, such as ``|cased`` or ``|minute``. The convert layer reports such an
error as an internal error. ``ExplainUnsupported`` catches it where a condition is converted and
raises an error that names the modifier, the field and the language instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionValueExpression
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
)

from siemgen.errors import UnsupportedFeatureError


def describe_value(value: SigmaType) -> str:
    """Name the Sigma modifier or value type that produced ``value``, for error messages."""
    if isinstance(value, SigmaCasedString):
        return "the cased modifier"
    if isinstance(value, SigmaTimestampPart):
        return f"the {value.timestamp_part.name.lower()} modifier"
    if isinstance(value, SigmaExists):
        return "the exists modifier"
    if isinstance(value, SigmaFieldReference):
        if value.starts_with or value.ends_with:
            return "the fieldref modifier with contains, startswith or endswith"
        return "the fieldref modifier"
    if isinstance(value, SigmaCompareExpression):
        return f"the {value.op.name.lower()} modifier"
    if isinstance(value, SigmaRegularExpression):
        return "the re modifier"
    if isinstance(value, SigmaCIDRExpression):
        return "the cidr modifier"
    if isinstance(value, SigmaExpansion):
        return "an expanding modifier (windash or base64offset)"
    if isinstance(value, SigmaNull):
        return "a null value"
    if isinstance(value, SigmaBool):
        return "a boolean value"
    if isinstance(value, SigmaNumber):
        return "a number"
    if isinstance(value, SigmaString):
        return "a string value"
    return f"a {type(value).__name__} value"


def unsupported_for_field(
    field: str, value: SigmaType, language: str, target: str, reason: str, hint: str
) -> UnsupportedFeatureError:
    """Build the error for a field condition that ``language`` cannot express."""
    return UnsupportedFeatureError(
        f"{describe_value(value)} on field {field!r} is not supported in {language}: {reason}",
        field=field,
        target=target,
        hint=hint,
    )


class ExplainUnsupported(TextQueryBackend):
    """Backend mix-in that reports constructs without a query template as unsupported.

    Put it before the pySigma backend class in the bases. ``target`` and ``language`` name the
    siemgen target and the query language in messages.
    """

    target: ClassVar[str] = ""
    language: ClassVar[str] = ""

    def convert_condition_field_eq_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field = value``, raising UnsupportedFeatureError for missing templates."""
        try:
            return super().convert_condition_field_eq_val(cond, state)
        except NotImplementedError as error:
            raise unsupported_for_field(
                cond.field,
                cond.value,
                self.language,
                self.target,
                str(error),
                "rewrite the condition without it, or leave this target out for the rule",
            ) from error

    def convert_condition_val(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        """Convert a keyword (a value without a field), raising UnsupportedFeatureError."""
        try:
            return super().convert_condition_val(cond, state)
        except NotImplementedError as error:
            raise unsupported_keyword(cond.value, self.language, self.target) from error


def unsupported_keyword(value: SigmaType, language: str, target: str) -> UnsupportedFeatureError:
    """Build the error for a keyword detection that ``language`` cannot search for."""
    text = str(value.regexp) if isinstance(value, SigmaRegularExpression) else str(value)
    return UnsupportedFeatureError(
        f"keyword detection {text!r} ({describe_value(value)} without a field) is not "
        f"supported in {language}, which has no search over the whole event",
        target=target,
        hint="name the CloudTrail field to search in the detection",
    )


def cased_status_error(field: str, target: str | None = None) -> UnsupportedFeatureError:
    """Build the error for ``status|cased``, which no target supports.

    Every target stores status as success or failure in lower case, or compares it without
    case, so a cased value would match on some targets and never on others.
    """
    return UnsupportedFeatureError(
        f"the cased modifier on field {field!r} is not supported: status is success or "
        "failure in lower case on every target",
        field=field,
        target=target,
        hint="drop the cased modifier",
    )
