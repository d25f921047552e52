"""CloudTrail pipeline for Elastic with the Elastic AWS integration (logs-aws.cloudtrail-*).

The integration's ingest pipeline renames the raw keys to ECS and ``aws.cloudtrail.*`` fields
and keeps the four request and response objects as ``flattened`` fields whose sub-keys keep
the raw JSON casing. Keyword fields compare case-sensitively.

Values are given the type of their field: a YAML number or boolean compared with a keyword
field (every field but ``readOnly`` and the dates, and every flattened sub-key) becomes its
text, because ES|QL rejects ``keyword == 123`` and EQL's ``:`` takes strings only. On the
boolean ``aws.cloudtrail.read_only`` the text ``true`` or ``false`` becomes a boolean.
"""

from __future__ import annotations

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, SetStateTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
)

from siemgen import fields
from siemgen.backends.unsupported import cased_status_error, unsupported_for_field
from siemgen.errors import UnsupportedFeatureError
from siemgen.pipelines.cloudtrail import CLOUDTRAIL_LOGSOURCE, CloudTrailFieldMapping

# The integration copies sourceIPAddress to source.ip (type ip) only when the value is an
# address, and CIDR matching works on ip fields alone; source.address is a keyword.
SOURCE_IP = "source.ip"
TARGET = "elastic"
_LANGUAGE = "Elastic"


def elastic_type(field: fields.CloudTrailField | fields.JsonPath) -> str:
    """Return the Elasticsearch mapping type of a CloudTrail field; flattened keys are keyword."""
    if isinstance(field, fields.JsonPath):
        return "keyword"
    return field.elastic_type


def _keyword_value(field: str, value: SigmaType) -> SigmaType:
    """Return a value as a keyword field compares it: numbers and booleans as their text."""
    if isinstance(value, SigmaBool):
        return SigmaString("true" if value.boolean else "false")
    if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
        return SigmaString(str(value.number))
    if isinstance(value, SigmaCompareExpression):
        raise unsupported_for_field(
            field,
            value,
            _LANGUAGE,
            TARGET,
            "Elasticsearch indexes the field as a keyword and compares it as text, where "
            "'10' sorts before '9'",
            "compare the exact values, or run the numeric comparison on Athena or Splunk",
        )
    return value


def _boolean_value(field: str, value: SigmaType) -> SigmaType:
    """Return a value as a boolean field compares it, turning ``"true"``/``"false"`` to booleans."""
    if isinstance(value, SigmaBool | SigmaNull | SigmaExists):
        return value
    if isinstance(value, SigmaString) and not value.contains_special():
        text = str(value).lower()
        if text in ("true", "false"):
            return SigmaBool(text == "true")
    raise unsupported_for_field(
        field,
        value,
        _LANGUAGE,
        TARGET,
        "Elasticsearch indexes the field as a boolean, which matches only true or false",
        "compare the field with true or false",
    )


def _outcome_value(field: str, value: SigmaType) -> SigmaType:
    """Return a ``status`` value as event.outcome stores it: ``success`` or ``failure``."""
    if isinstance(value, SigmaCasedString):
        raise cased_status_error(field, TARGET)
    if isinstance(value, SigmaString) and not value.contains_special():
        return SigmaString(str(value).lower())
    return value


def typed_values(field: str, values: list[SigmaType]) -> list[SigmaType]:
    """Convert a detection item's values to the Elasticsearch type of its CloudTrail field."""
    known = fields.lookup(field)
    if known is None:
        return values
    if isinstance(known, fields.CloudTrailField) and known.raw == "status":
        return [_outcome_value(field, value) for value in values]
    kind = elastic_type(known)
    if kind == "keyword":
        return [_keyword_value(field, value) for value in values]
    if kind == "boolean":
        return [_boolean_value(field, value) for value in values]
    return values


class ElasticFieldMapping(CloudTrailFieldMapping):
    """Map CloudTrail fields to Elastic, sending CIDR matches on the source IP to source.ip."""

    def apply_detection_item(
        self, detection_item: SigmaDetectionItem
    ) -> SigmaDetectionItem | SigmaDetection | None:
        """Map one detection item; a CIDR match on sourceIPAddress goes to source.ip."""
        if detection_item.field is not None:
            values = detection_item.value
            converted = typed_values(detection_item.field, values)
            if any(new is not old for new, old in zip(converted, values, strict=True)):
                detection_item.value = converted
        values = detection_item.value
        if (
            detection_item.field == "sourceIPAddress"
            and values
            and all(isinstance(value, SigmaCIDRExpression) for value in values)
        ):
            detection_item.field = SOURCE_IP
            self.processing_item_applied(detection_item)
            return detection_item
        result: SigmaDetectionItem | SigmaDetection | None = super().apply_detection_item(
            detection_item
        )
        return result


INDEX_PATTERN = "logs-aws.cloudtrail-*"
DATASET = "aws.cloudtrail"


def elastic_field_name(field: fields.CloudTrailField | fields.JsonPath) -> str | None:
    """Return the Elastic AWS integration field of a CloudTrail field, or None if unindexed.

    A flattened field names the members of an array, and of arrays inside it, by the array's
    own path, so each ``[]`` after a key (``requestParameters.layers[]``) is dropped, and an
    array index such as ``items.0`` raises UnsupportedFeatureError.
    """
    if isinstance(field, fields.JsonPath):
        keys = []
        for key in field.keys:
            if key.isdigit():
                raise UnsupportedFeatureError(
                    f"field {field.raw!r} selects array member {key}, but Elastic's flattened "
                    "field indexes every member of an array under the array's path",
                    field=field.raw,
                    target=TARGET,
                    hint="drop the index to match any member of the array",
                )
            keys.append(fields.key_name(key))
        return ".".join((field.column.elastic_flattened, *keys))
    return field.elastic


def elastic_fields() -> set[str]:
    """Return every field name the Elastic pipeline can emit, for checking generated queries."""
    names = {field.elastic for field in fields.FIELDS if field.elastic}
    names.add("event.dataset")
    names.add(SOURCE_IP)
    return names


def elastic_pipeline(index: str = INDEX_PATTERN) -> ProcessingPipeline:
    """Build the CloudTrail pipeline for the Lucene, ES|QL and EQL backends."""
    return ProcessingPipeline(
        name="siemgen CloudTrail for Elastic (Elastic AWS integration)",
        priority=20,
        items=[
            ProcessingItem(
                identifier="siemgen_elastic_cloudtrail_fields",
                transformation=ElasticFieldMapping("elastic", elastic_field_name),
                rule_conditions=[LogsourceCondition(**CLOUDTRAIL_LOGSOURCE)],
            ),
            ProcessingItem(
                identifier="siemgen_elastic_cloudtrail_dataset",
                transformation=AddConditionTransformation(
                    {"event.dataset": DATASET}, name="_siemgen_dataset"
                ),
                rule_conditions=[LogsourceCondition(**CLOUDTRAIL_LOGSOURCE)],
            ),
            ProcessingItem(
                identifier="siemgen_elastic_cloudtrail_index",
                transformation=SetStateTransformation("index", index),
                rule_conditions=[LogsourceCondition(**CLOUDTRAIL_LOGSOURCE)],
            ),
        ],
    )
