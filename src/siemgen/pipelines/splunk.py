"""CloudTrail pipeline for Splunk with the Splunk Add-on for AWS (sourcetype aws:cloudtrail).

The add-on extracts the record's JSON at search time and keeps the raw key paths as field
names, with ``{}`` for array members (``resources{}.ARN``). Splunk compares field values
case-insensitively, which is Sigma's default.
"""

from __future__ import annotations

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation

from siemgen import fields
from siemgen.pipelines.cloudtrail import CLOUDTRAIL_LOGSOURCE, CloudTrailFieldMapping

SOURCETYPE = "aws:cloudtrail"


def splunk_field_name(field: fields.CloudTrailField | fields.JsonPath) -> str:
    """Return the Splunk Add-on for AWS field name of a CloudTrail field."""
    if isinstance(field, fields.JsonPath):
        return field.raw
    return field.splunk


def splunk_pipeline(index: str | None = None, source_clause: bool = True) -> ProcessingPipeline:
    """Build the CloudTrail pipeline for Splunk.

    ``index`` adds an ``index=`` clause; ``source_clause=False`` leaves out the index and
    sourcetype clauses, for searches that start with a macro which selects the data.
    """
    selection: dict[str, str | int | list[str]] = {}
    if source_clause:
        if index:
            selection["index"] = index
        selection["sourcetype"] = SOURCETYPE
    items = [
        ProcessingItem(
            identifier="siemgen_splunk_cloudtrail_fields",
            transformation=CloudTrailFieldMapping("splunk", splunk_field_name),
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
