"""Athena field references: how a mapped Sigma field reads from an Athena table.

The Athena pipelines replace each Sigma field name with the text form of an ``AthenaField``,
and the Athena backend parses it back to build the SQL. The text forms are:

``useridentity.arn``
    a column or a struct member path.
``useridentity.sessioncontext.attributes.creationdate::timestamp``
    a column whose SQL type is not VARCHAR (``boolean`` or ``timestamp``).
``json(requestparameters).policyArn``
    a key inside a column that contains JSON text. ``[]`` after a key marks an array whose
    elements are searched (``json(requestparameters).containerDefinitions[].command[]``), and
    a number is an array index (``json(requestparameters).items.0.cidrIp``).
``resources[].arn``
    a member of the structs in an array column; any element may match.
``outcome(errorcode)``
    Sigma's ``status`` (``success`` or ``failure``) derived as Elastic's AWS integration sets
    ``event.outcome``: for ``ConsoleLogin``, ``responseElements.ConsoleLogin``; otherwise
    ``failure`` when the named column or ``errormessage`` is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from siemgen.errors import UnsupportedFeatureError

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_JSON_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"[0-9]+")
_JSON_FORM = re.compile(r"json\(([a-z0-9_.]+)\)\.(.+)")
_OUTCOME_FORM = re.compile(r"outcome\(([a-z0-9_.]+)\)")


class FieldKind(StrEnum):
    """The ways an Athena table stores a CloudTrail value."""

    COLUMN = "column"
    JSON = "json"
    ARRAY = "array"
    OUTCOME = "outcome"


class SqlType(StrEnum):
    """The SQL type of a column, where it is not VARCHAR."""

    VARCHAR = "varchar"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class JsonStep:
    """One step of a path inside JSON text: an object key or an array index."""

    key: str | None = None
    index: int | None = None
    each: bool = False
    """True when the value at this step is an array whose elements are all searched."""

    def text(self) -> str:
        """Return the step as written in the field's text form."""
        base = self.key if self.key is not None else str(self.index)
        return base + ("[]" if self.each else "")

    def json_path(self) -> str:
        """Return the step in JSONPath notation (``.key`` or ``[0]``)."""
        return f".{self.key}" if self.key is not None else f"[{self.index}]"


@dataclass(frozen=True)
class AthenaField:
    """A value's place in an Athena table, as the Athena pipelines map a Sigma field."""

    kind: FieldKind
    column: str
    """Column or struct path holding the value, the JSON text or the array."""
    member: str = ""
    """For ``ARRAY``: the struct member path inside each element."""
    steps: tuple[JsonStep, ...] = ()
    """For ``JSON``: the path inside the JSON text."""
    sql_type: SqlType = SqlType.VARCHAR

    def text(self) -> str:
        """Return the text form that the pipelines put in place of the Sigma field name."""
        if self.kind is FieldKind.JSON:
            return f"json({self.column})." + ".".join(step.text() for step in self.steps)
        if self.kind is FieldKind.ARRAY:
            return f"{self.column}[].{self.member}"
        if self.kind is FieldKind.OUTCOME:
            return f"outcome({self.column})"
        if self.sql_type is not SqlType.VARCHAR:
            return f"{self.column}::{self.sql_type.value}"
        return self.column


def _check_path(path: str, original: str) -> str:
    if not all(_IDENTIFIER.fullmatch(part) for part in path.split(".")):
        raise UnsupportedFeatureError(
            f"Athena column path {path!r} (from field {original!r}) is not a plain "
            "lowercase identifier path",
            field=original,
            hint="use letters, digits and underscores in Athena column names",
        )
    return path


def json_steps(keys: tuple[str, ...], arrays: frozenset[str], field: str) -> tuple[JsonStep, ...]:
    """Turn Sigma path keys into JSON steps, marking the keys whose value is an array.

    ``arrays`` contains dotted key paths inside the JSON object (for example ``layers`` or
    ``containerDefinitions.command``) whose values are arrays. A key named ``items`` is always
    an array, because CloudTrail writes EC2 request lists as ``{"items": [...]}``. A number as
    a key is an array index.
    """
    steps: list[JsonStep] = []
    seen: list[str] = []
    for position, key in enumerate(keys):
        if _INDEX.fullmatch(key):
            steps.append(JsonStep(index=int(key)))
            seen.append(key)
            continue
        each = key.endswith("[]")
        name = key[:-2] if each else key
        if not _JSON_KEY.fullmatch(name):
            raise UnsupportedFeatureError(
                f"JSON key {name!r} in field {field!r} cannot be written as an Athena JSON path",
                field=field,
                hint="JSON keys must start with a letter or underscore and contain only "
                "letters, digits and underscores",
            )
        seen.append(name)
        dotted = ".".join(seen)
        each = each or name == "items" or dotted in arrays
        # An index as the next key picks one element, so the array is not searched.
        if position + 1 < len(keys) and _INDEX.fullmatch(keys[position + 1]):
            each = False
        steps.append(JsonStep(key=name, each=each))
    return tuple(steps)


def parse_field(text: str) -> AthenaField:
    """Parse the text form of an Athena field, as the Athena pipelines write it."""
    match = _JSON_FORM.fullmatch(text)
    if match:
        steps: list[JsonStep] = []
        for part in match.group(2).split("."):
            each = part.endswith("[]")
            name = part[:-2] if each else part
            if _INDEX.fullmatch(name):
                steps.append(JsonStep(index=int(name), each=each))
            elif _JSON_KEY.fullmatch(name):
                steps.append(JsonStep(key=name, each=each))
            else:
                raise UnsupportedFeatureError(
                    f"JSON key {name!r} in Athena field {text!r} is not a plain identifier",
                    field=text,
                )
        return AthenaField(FieldKind.JSON, _check_path(match.group(1), text), steps=tuple(steps))
    match = _OUTCOME_FORM.fullmatch(text)
    if match:
        return AthenaField(FieldKind.OUTCOME, _check_path(match.group(1), text))
    if "[]." in text:
        column, _, member = text.partition("[].")
        return AthenaField(
            FieldKind.ARRAY, _check_path(column, text), member=_check_path(member, text)
        )
    column, _, type_name = text.partition("::")
    try:
        sql_type = SqlType(type_name) if type_name else SqlType.VARCHAR
    except ValueError:
        raise UnsupportedFeatureError(
            f"unknown SQL type {type_name!r} in Athena field {text!r}",
            field=text,
            hint=f"use one of {[t.value for t in SqlType]}",
        ) from None
    return AthenaField(FieldKind.COLUMN, _check_path(column, text), sql_type=sql_type)
