"""CloudTrail pipeline for Elastic with the Elastic AWS integration (logs-aws.cloudtrail-*).

The integration's ingest pipeline renames the raw keys to ECS and ``aws.cloudtrail.*`` fields
and keeps the four request and response objects as ``flattened`` fields whose sub-keys keep
the raw JSON casing. Keyword fields compare case-sensitively.
"""

from __future__ import annotations

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, SetStateTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaCIDRExpression

from siemgen import fields
from siemgen.pipelines.cloudtrail import CLOUDTRAIL_LOGSOURCE, CloudTrailFieldMapping

# The integration copies sourceIPAddress to source.ip (type ip) only when the value is an
# address, and CIDR matching works on ip fields alone; source.address is a keyword.
SOURCE_IP = "source.ip"


class ElasticFieldMapping(CloudTrailFieldMapping):
    """Map CloudTrail fields to Elastic, sending CIDR matches on the source IP to source.ip."""

    def apply_detection_item(
        self, detection_item: SigmaDetectionItem
    ) -> SigmaDetectionItem | SigmaDetection | None:
        """Map one detection item; a CIDR match on sourceIPAddress goes to source.ip."""
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
    """Return the Elastic AWS integration field of a CloudTrail field, or None if unindexed."""
    if isinstance(field, fields.JsonPath):
        return ".".join((field.column.elastic_flattened, *field.keys))
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
