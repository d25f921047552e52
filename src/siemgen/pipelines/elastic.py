"""CloudTrail pipeline for Elastic with the Elastic AWS integration (logs-aws.cloudtrail-*).

The integration's ingest pipeline renames the raw keys to ECS and ``aws.cloudtrail.*`` fields
and keeps the four request and response objects as ``flattened`` fields whose sub-keys keep
the raw JSON casing. Keyword fields compare case-sensitively.
"""

from __future__ import annotations

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, SetStateTransformation

from siemgen import fields
from siemgen.pipelines.cloudtrail import CLOUDTRAIL_LOGSOURCE, CloudTrailFieldMapping

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
    return names


def elastic_pipeline(index: str = INDEX_PATTERN) -> ProcessingPipeline:
    """Build the CloudTrail pipeline for the Lucene, ES|QL and EQL backends."""
    return ProcessingPipeline(
        name="siemgen CloudTrail for Elastic (Elastic AWS integration)",
        priority=20,
        items=[
            ProcessingItem(
                identifier="siemgen_elastic_cloudtrail_fields",
                transformation=CloudTrailFieldMapping("elastic", elastic_field_name),
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
