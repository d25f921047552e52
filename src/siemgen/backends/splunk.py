"""pySigma's Splunk SPL backend, with the values and field names that SPL cannot express rejected.

Inside an SPL double-quoted string a backslash escapes only ``"`` and ``\\``, and pySigma's
backend escapes both. Two things remain that no escaping can fix, so this backend raises
``UnsupportedFeatureError`` for them instead of writing a query that means something else:

- A literal ``*``. SPL's ``search`` treats ``*`` as a wildcard even inside quotes, and "the
  backslash can't be used to escape the asterisk in search strings" (Splunk Search Manual,
  *Backslashes*). pySigma writes ``\\*``, which does not match a literal asterisk.
- Control characters (newline, tab, NUL...). SPL has no escape sequence for them inside a
  string, and a raw line break ends a ``search`` line in ``savedsearches.conf``.

Field names that contain anything but ASCII letters, digits and ``_ . { } : @ -`` are rejected
too, because pySigma quotes them in double quotes without escaping what is inside.

Where pySigma's backend has no template for a Sigma construct, this one adds it or raises
UnsupportedFeatureError naming the construct:

- ``|cased`` becomes ``field=CASE(value)``: search terms compare case-insensitively, and the
  ``CASE()`` directive makes one term case-sensitive (Splunk Search Manual, *Use CASE() and
  TERM() to match phrases*). Cased values stay out of ``IN`` lists.
- A keyword regular expression becomes ``| regex _raw="..."``; pySigma wrote the pattern as a
  plain search term.
- Field references with contains, startswith or endswith, and timestamp parts such as
  ``|minute``, raise UnsupportedFeatureError.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, ClassVar

from sigma.backends.splunk.splunk import SplunkBackend as PySigmaSplunkBackend
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.state import ConversionState
from sigma.types import SigmaCasedString, SigmaRegularExpression, SigmaString

from siemgen.backends.unsupported import ExplainUnsupported, cased_status_error
from siemgen.errors import UnsupportedFeatureError

SAFE_FIELD = re.compile(r"[A-Za-z0-9_.{}:@-]+")
"""A field name that SPL reads the same with or without quotes."""
SAFE_FIELD_CHARACTERS = "ASCII letters, digits and _ . { } : @ -"
# Characters a CASE() term may contain without quotes. Splunk's documentation shows CASE() with
# unquoted terms such as CASE(LOCALHOST) and CASE(%ASA-1*).
_CASE_BARE_TERM = re.compile(r"[A-Za-z0-9_.:/@%*+-]+")
RAW_FIELD = "_raw"


def control_characters(text: str) -> list[str]:
    """Return the control characters (Unicode category Cc) in ``text``, in order."""
    return [char for char in text if unicodedata.category(char) == "Cc"]


class SplunkBackend(ExplainUnsupported, PySigmaSplunkBackend):
    """Splunk SPL backend that rejects literal asterisks, control characters and odd fields."""

    target: ClassVar[str] = "splunk"
    language: ClassVar[str] = "Splunk SPL"

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """Convert a string value, rejecting text that SPL cannot match literally."""
        plain = "".join(part for part in s.s if isinstance(part, str))
        if "*" in plain:
            raise UnsupportedFeatureError(
                f"value {str(s)!r} contains a literal '*', which SPL's search always "
                "reads as a wildcard",
                target=self.target,
                hint="match it with the re modifier (a regular expression) instead",
            )
        controls = control_characters(plain)
        if controls:
            raise UnsupportedFeatureError(
                f"value {str(s)!r} contains the control character {controls[0]!r}, which "
                "SPL strings cannot express",
                target=self.target,
                hint="match it with the re modifier, writing the character as an escape",
            )
        result: str = super().convert_value_str(s, state)
        return result

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """Convert ``field|cased = value`` to ``field=CASE(value)``."""
        value = cond.value
        if not isinstance(value, SigmaString):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        if cond.field == "status":
            raise cased_status_error("status", self.target)
        quoted = self.convert_value_str(value, state)
        term = quoted[1:-1] if _CASE_BARE_TERM.fullmatch(quoted[1:-1]) else quoted
        # NOTE: Splunk documents CASE() with unquoted terms only. The quoted CASE("...") used
        # for values with spaces or other characters has not been run on a Splunk server.
        return f"{self.escape_and_quote_field(cond.field)}=CASE({term})"

    def decide_convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> bool:
        """Keep cased values out of ``IN (...)`` lists, which compare case-insensitively."""
        if any(
            isinstance(arg, ConditionFieldEqualsValueExpression)
            and isinstance(arg.value, SigmaCasedString)
            for arg in cond.args
        ):
            return False
        result: bool = super().decide_convert_condition_as_in_expression(cond, state)
        return result

    def convert_condition_val_re(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        """Convert a keyword regular expression to ``| regex _raw="..."`` on the event text."""
        # NOTE: inside an OR, pySigma's rex and eval name their helper fields after the field,
        # here _rawMatch and _rawCondition. Splunk hides fields whose names start with an
        # underscore, and this form has not been run on a Splunk server.
        on_raw = ConditionFieldEqualsValueExpression(RAW_FIELD, cond.value)
        on_raw.parent = cond.parent
        return self.convert_condition_field_eq_val_re(on_raw, state)

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> Any:
        """Convert a regular expression, rejecting control characters written raw."""
        controls = control_characters(str(r.regexp))
        if controls:
            raise UnsupportedFeatureError(
                f"regular expression {str(r.regexp)!r} contains the control character "
                f"{controls[0]!r}, which SPL strings cannot express",
                target=self.target,
                hint="write the character as a regex escape such as \\n or \\x00",
            )
        return super().convert_value_re(r, state)

    def escape_and_quote_field(self, field_name: str) -> str:
        """Quote a field name, rejecting names whose quoted form SPL would misread."""
        if not SAFE_FIELD.fullmatch(field_name):
            raise UnsupportedFeatureError(
                f"field {field_name!r} contains characters that an SPL field name cannot "
                f"carry safely (allowed: {SAFE_FIELD_CHARACTERS})",
                field=field_name,
                target=self.target,
                hint="rename the key in the rule or match the whole JSON object's text",
            )
        result: str = super().escape_and_quote_field(field_name)
        return result
