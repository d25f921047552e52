"""CloudTrail pipeline for Splunk with the Splunk Add-on for AWS (sourcetype aws:cloudtrail).

The add-on extracts the record's JSON at search time and keeps the raw key paths as field
names, with ``{}`` after each key whose value is an array (``resources{}.ARN``,
``requestParameters.containerDefinitions{}.command{}``). The JSON keys that hold arrays are
the ones the Athena pipeline declares in ``DEFAULT_JSON_ARRAYS``, keys named ``items`` and keys
written with ``[]`` in the rule. Splunk compares field values case-insensitively, which is
Sigma's default.

Splunk makes fields of leaf values only, so a condition on a whole object
(``requestParameters|contains: x``) searches the raw event text (``_raw``) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaExpansion, SigmaRegularExpression, SigmaString, SigmaType, SpecialChars

from siemgen import fields
from siemgen.backends.elastic_regex import has_anchor
from siemgen.backends.splunk import SAFE_FIELD, SAFE_FIELD_CHARACTERS
from siemgen.backends.unsupported import unsupported_for_field
from siemgen.errors import UnsupportedFeatureError
from siemgen.pipelines.athena import DEFAULT_JSON_ARRAYS
from siemgen.pipelines.cloudtrail import CLOUDTRAIL_LOGSOURCE, CloudTrailFieldMapping

SOURCETYPE = "aws:cloudtrail"
TARGET = "splunk"
# The field Splunk keeps the whole event text in.
RAW_FIELD = "_raw"
_WHOLE_OBJECTS = frozenset(column.value for column in fields.JsonColumn)


def splunk_field_name(
    field: fields.CloudTrailField | fields.JsonPath, arrays: frozenset[str] = DEFAULT_JSON_ARRAYS
) -> str:
    """Return the Splunk Add-on for AWS field name of a CloudTrail field.

    ``arrays`` lists the Sigma field paths (``requestParameters.layers``) whose value is an
    array. A numeric key, which selects one array member, raises UnsupportedFeatureError.
    """
    if not isinstance(field, fields.JsonPath):
        return field.splunk
    names = [field.column.value]
    path = field.column.value
    for key in field.keys:
        if key.isdigit():
            raise UnsupportedFeatureError(
                f"field {field.raw!r} selects array member {key}, but Splunk names every "
                "member of a JSON array with {} and cannot select one by its index",
                field=field.raw,
                target=TARGET,
                hint="drop the index to match any member of the array",
            )
        name = key.removesuffix("[]")
        path = f"{path}.{name}"
        is_array = key.endswith("[]") or name == "items" or path in arrays
        names.append(name + "{}" if is_array else name)
    splunk_name = ".".join(names)
    # The backend checks the name too, but only here is the rule's own spelling known.
    if not SAFE_FIELD.fullmatch(splunk_name):
        raise UnsupportedFeatureError(
            f"field {field.raw!r} contains characters that an SPL field name cannot carry "
            f"safely (allowed: {SAFE_FIELD_CHARACTERS})",
            field=field.raw,
            target=TARGET,
            hint=f"rename the key in the rule or match the whole {field.column.value} text",
        )
    return splunk_name


def _raw_event_value(field: str, value: SigmaType) -> SigmaType:
    """Check a value compared with a whole object, which Splunk searches as event text."""
    if isinstance(value, SigmaExpansion):
        for member in value.values:
            _raw_event_value(field, member)
        return value
    if isinstance(value, SigmaString):
        if (
            value.startswith(SpecialChars.WILDCARD_MULTI)
            and value.endswith(SpecialChars.WILDCARD_MULTI)
            and str(value).strip("*")
        ):
            return value
        reason = (
            "Splunk makes fields of the object's leaf values only, so siemgen searches the "
            "raw event text, where only a contains match keeps its meaning"
        )
        hint = f"use {field}|contains, or match a key inside it such as {field}.<key>"
    elif isinstance(value, SigmaRegularExpression):
        if not has_anchor(str(value.regexp)):
            return value
        reason = "siemgen searches the raw event text, where ^ and $ anchor to the whole event"
        hint = "remove the anchors, or match a key inside the object"
    else:
        reason = "Splunk makes fields of the object's leaf values only"
        hint = f"match a key inside the object such as {field}.<key>"
    raise unsupported_for_field(field, value, "Splunk SPL", TARGET, reason, hint)


@dataclass
class SplunkFieldMapping(CloudTrailFieldMapping):
    """Map CloudTrail fields to Splunk, searching the raw event for whole-object conditions."""

    def apply_detection_item(
        self, detection_item: SigmaDetectionItem
    ) -> SigmaDetectionItem | SigmaDetection | None:
        """Map one detection item; a whole requestParameters-style object becomes ``_raw``."""
        field = detection_item.field
        if field in _WHOLE_OBJECTS:
            # NOTE: ``_raw`` is the whole event, so a contains match here also matches the
            # text outside the object, such as the same words in responseElements.
            detection_item.value = [_raw_event_value(field, v) for v in detection_item.value]
            detection_item.field = RAW_FIELD
            return detection_item
        result: SigmaDetectionItem | SigmaDetection | None = super().apply_detection_item(
            detection_item
        )
        return result


def splunk_pipeline(
    index: str | None = None, source_clause: bool = True, json_arrays: Sequence[str] = ()
) -> ProcessingPipeline:
    """Build the CloudTrail pipeline for Splunk.

    ``index`` adds an ``index=`` clause; ``source_clause=False`` leaves out the index and
    sourcetype clauses, for searches that start with a macro which selects the data.
    ``json_arrays`` adds Sigma field paths (``requestParameters.x``) whose JSON value is an
    array to ``DEFAULT_JSON_ARRAYS``.
    """
    arrays = DEFAULT_JSON_ARRAYS | frozenset(json_arrays)

    def field_name(field: fields.CloudTrailField | fields.JsonPath) -> str:
        return splunk_field_name(field, arrays)

    selection: dict[str, str | int | list[str]] = {}
    if source_clause:
        if index:
            selection["index"] = index
        selection["sourcetype"] = SOURCETYPE
    items = [
        ProcessingItem(
            identifier="siemgen_splunk_cloudtrail_fields",
            transformation=SplunkFieldMapping("splunk", field_name),
            rule_conditions=[LogsourceCondition(**CLOUDTRAIL_LOGSOURCE)],
        )
    ]
    if selection:
        items.append(
            ProcessingItem(
                identifier="siemgen_splunk_cloudtrail_source",
                transformation=AddConditionTransformation(selection, name="_siemgen_source"),
                rule_conditions=[LogsourceCondition(**CLOUDTRAIL_LOGSOURCE)],
            )
        )
    return ProcessingPipeline(
        name="siemgen CloudTrail for Splunk (Splunk Add-on for AWS)",
        priority=20,
        items=items,
    )
