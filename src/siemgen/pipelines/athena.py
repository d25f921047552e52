"""pySigma processing pipelines that map CloudTrail Sigma fields to Athena table columns.

Two table profiles exist: ``cloudtrail``, the table AWS documents for CloudTrail logs in S3
(lowercase columns, a ``useridentity`` struct, JSON objects held as text), and
``security-lake``, an Amazon Security Lake CloudTrail table in OCSF 1.1. Field names come from
``siemgen.fields`` for the first and from the OCSF mapping below for the second.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    RuleFailureTransformation,
    SetStateTransformation,
    ValueListPlaceholderTransformation,
)
from sigma.processing.transformations.base import FieldMappingTransformationBase
from sigma.rule import SigmaDetectionItem, SigmaRule

from siemgen import fields
from siemgen.backends.athena_fields import (
    AthenaField,
    FieldKind,
    SqlType,
    json_steps,
)
from siemgen.backends.athena_tables import (
    STATE_KEY,
    AthenaTable,
    cloudtrail_table,
    security_lake_table,
)
from siemgen.errors import ConfigError, UnknownFieldError

logger = logging.getLogger(__name__)

PROFILES = ("cloudtrail", "security-lake")
FIELD_MAPPING_ID = "siemgen_athena_field_mapping"

# JSON keys whose value CloudTrail writes as an array, by Sigma field name below the JSON
# object. A key named ``items`` is always treated as an array as well (EC2 request lists).
# NOTE: a value comparison on an array key missing from this list never matches, because
# json_extract_scalar returns NULL for arrays; add such keys with json_arrays=.
DEFAULT_JSON_ARRAYS: frozenset[str] = frozenset(
    {
        # Lambda UpdateFunctionConfiguration and PublishLayerVersion: a list of layer ARNs.
        "requestParameters.layers",
        # ECS RegisterTaskDefinition: a list of container definitions, each with a list command.
        "requestParameters.containerDefinitions",
        "requestParameters.containerDefinitions.command",
        "requestParameters.containerDefinitions.entryPoint",
        "requestParameters.containerDefinitions.environment",
    }
)

# Raw CloudTrail field -> Security Lake OCSF 1.1 column, from the OCSF project's CloudTrail
# mapping (API Activity class). Fields missing here have no OCSF column and are rejected.
_OCSF_COLUMNS: dict[str, AthenaField] = {
    "eventVersion": AthenaField(FieldKind.COLUMN, "metadata.product.version"),
    "eventTime": AthenaField(FieldKind.COLUMN, "time_dt", sql_type=SqlType.TIMESTAMP),
    "eventSource": AthenaField(FieldKind.COLUMN, "api.service.name"),
    "eventName": AthenaField(FieldKind.COLUMN, "api.operation"),
    "awsRegion": AthenaField(FieldKind.COLUMN, "cloud.region"),
    "sourceIPAddress": AthenaField(FieldKind.COLUMN, "src_endpoint.ip"),
    "userAgent": AthenaField(FieldKind.COLUMN, "http_request.user_agent"),
    "errorCode": AthenaField(FieldKind.COLUMN, "api.response.error"),
    "errorMessage": AthenaField(FieldKind.COLUMN, "api.response.message"),
    "requestParameters": AthenaField(FieldKind.COLUMN, "api.request.data"),
    "responseElements": AthenaField(FieldKind.COLUMN, "api.response.data"),
    "requestID": AthenaField(FieldKind.COLUMN, "api.request.uid"),
    "eventID": AthenaField(FieldKind.COLUMN, "metadata.uid"),
    "eventType": AthenaField(FieldKind.COLUMN, "metadata.event_code"),
    "apiVersion": AthenaField(FieldKind.COLUMN, "api.version"),
    "vpcEndpointId": AthenaField(FieldKind.COLUMN, "src_endpoint.uid"),
    "eventCategory": AthenaField(FieldKind.COLUMN, "metadata.product.feature.name"),
    "resources.ARN": AthenaField(FieldKind.ARRAY, "resources", member="uid"),
    "resources.accountId": AthenaField(FieldKind.ARRAY, "resources", member="account.uid"),
    "resources.type": AthenaField(FieldKind.ARRAY, "resources", member="type"),
    "userIdentity.type": AthenaField(FieldKind.COLUMN, "actor.user.type"),
    "userIdentity.principalId": AthenaField(FieldKind.COLUMN, "actor.user.uid_alt"),
    "userIdentity.arn": AthenaField(FieldKind.COLUMN, "actor.user.uid"),
    # NOTE: two revisions of the OCSF CloudTrail mapping put the account in
    # actor.user.account.uid or actor.user.account_uid; this uses the first.
    "userIdentity.accountId": AthenaField(FieldKind.COLUMN, "actor.user.account.uid"),
    "userIdentity.accessKeyId": AthenaField(FieldKind.COLUMN, "actor.user.credential_uid"),
    "userIdentity.userName": AthenaField(FieldKind.COLUMN, "actor.user.name"),
    "userIdentity.invokedBy": AthenaField(FieldKind.COLUMN, "actor.invoked_by"),
    "userIdentity.sessionContext.attributes.mfaAuthenticated": AthenaField(
        FieldKind.COLUMN, "actor.session.is_mfa", sql_type=SqlType.BOOLEAN
    ),
    "userIdentity.sessionContext.attributes.creationDate": AthenaField(
        FieldKind.COLUMN, "actor.session.created_time_dt", sql_type=SqlType.TIMESTAMP
    ),
    "userIdentity.sessionContext.sessionIssuer.arn": AthenaField(
        FieldKind.COLUMN, "actor.session.issuer"
    ),
    "userIdentity.sessionContext.webIdFederationData.federatedProvider": AthenaField(
        FieldKind.COLUMN, "actor.idp.name"
    ),
    # OCSF has its own status column with the values Success and Failure.
    "status": AthenaField(FieldKind.COLUMN, "status"),
}

# JSON objects that Security Lake keeps as JSON text, by CloudTrail object name.
_OCSF_JSON_COLUMNS = {
    fields.JsonColumn.REQUEST_PARAMETERS: "api.request.data",
    fields.JsonColumn.RESPONSE_ELEMENTS: "api.response.data",
}


def _exact_case_cloudtrail() -> dict[str, str]:
    """Collect the Athena fields whose values AWS writes in one fixed spelling."""
    reasons: dict[str, str] = {}
    for known in fields.FIELDS:
        if known.exact_case and known.athena:
            reasons[known.athena] = known.exact_case
    return reasons


def _exact_case_security_lake() -> dict[str, str]:
    """Carry the CloudTrail exact-case reasons over to the OCSF columns of the same fields."""
    reasons: dict[str, str] = {}
    for known in fields.FIELDS:
        target = _OCSF_COLUMNS.get(known.raw)
        if known.exact_case and target is not None:
            reasons[target.text()] = known.exact_case
    return reasons


def _unknown(name: str, profile: str, why: str) -> UnknownFieldError:
    return UnknownFieldError(
        f"field {name!r} has no column in the Athena {profile} table: {why}",
        field=name,
        target="athena",
        hint="use a CloudTrail field listed in siemgen.fields, or remove the condition",
    )


def resolve_cloudtrail(name: str, arrays: frozenset[str]) -> AthenaField:
    """Map one Sigma CloudTrail field to the AWS-documented CloudTrail table."""
    found = fields.lookup(name)
    if found is None:
        raise _unknown(name, "cloudtrail", "CloudTrail records have no such field")
    if isinstance(found, fields.JsonPath):
        steps = json_steps(found.keys, _below(arrays, found.column.value), name)
        return AthenaField(FieldKind.JSON, found.column.athena_column, steps=steps)
    if found.raw == "status":
        return AthenaField(FieldKind.OUTCOME, "errorcode")
    if found.athena is None:
        raise _unknown(name, "cloudtrail", "the documented table has no column for it")
    if found.athena.startswith("resources."):
        return AthenaField(FieldKind.ARRAY, "resources", member=found.athena.split(".", 1)[1])
    return AthenaField(FieldKind.COLUMN, found.athena)


def resolve_security_lake(name: str, arrays: frozenset[str]) -> AthenaField:
    """Map one Sigma CloudTrail field to an Amazon Security Lake OCSF 1.1 table."""
    found = fields.lookup(name)
    if found is None:
        raise _unknown(name, "security-lake", "CloudTrail records have no such field")
    if isinstance(found, fields.JsonPath):
        column = _OCSF_JSON_COLUMNS.get(found.column)
        if column is None:
            raise _unknown(
                name, "security-lake", f"OCSF keeps {found.column.value} only in 'unmapped'"
            )
        steps = json_steps(found.keys, _below(arrays, found.column.value), name)
        return AthenaField(FieldKind.JSON, column, steps=steps)
    target = _OCSF_COLUMNS.get(found.raw)
    if target is None:
        raise _unknown(name, "security-lake", "the OCSF CloudTrail mapping has no column for it")
    return target


def _below(arrays: frozenset[str], column: str) -> frozenset[str]:
    prefix = column + "."
    return frozenset(path[len(prefix) :] for path in arrays if path.startswith(prefix))


@dataclass
class AthenaFieldMappingTransformation(FieldMappingTransformationBase):
    """Replace each Sigma field name with the text form of its ``AthenaField``.

    A field the profile does not know raises ``UnknownFieldError``. A detection item that this
    transformation already mapped is left alone, so converting a rule twice is safe.
    """

    profile: str = "cloudtrail"
    json_arrays: frozenset[str] = field(default_factory=lambda: DEFAULT_JSON_ARRAYS)

    def apply_field_name(self, field: str | None) -> str | None:
        """Return the Athena field text for a Sigma field name, or None for keywords."""
        if field is None:
            return None
        resolver = resolve_cloudtrail if self.profile == "cloudtrail" else resolve_security_lake
        mapped = resolver(field, self.json_arrays).text()
        if self._pipeline is not None:
            # Field references are not tracked by pySigma; the backend names them in errors.
            self._pipeline.field_mappings.add_mapping(field, mapped)
        return mapped

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetectionItem | None:
        """Map the field and the field references of one detection item, once."""
        if self.processing_item is not None and detection_item.was_processed_by(
            self.processing_item.identifier or FIELD_MAPPING_ID
        ):
            return None
        result = super().apply_detection_item(detection_item)
        if result is not None and not isinstance(result, SigmaDetectionItem):
            # apply_field_name maps one field to one name, so no detection is ever built.
            raise TypeError(f"unexpected mapping result {result!r}")
        if result is not None and self.processing_item is not None:
            result.add_applied_processing_item(self.processing_item)
        return result

    def apply(self, rule: SigmaRule) -> None:  # type: ignore[override]
        """Map detection fields strictly and the rule's ``fields`` list where it is known."""
        kept = list(rule.fields)
        rule.fields = []
        super().apply(rule)
        mapped: list[str] = []
        for name in kept:
            try:
                mapped.append(self.apply_field_name(name) or name)
            except UnknownFieldError:
                logger.debug("rule field list entry %r has no Athena column; kept as is", name)
                mapped.append(name)
        rule.fields = mapped


def athena_pipeline(
    table: str | None = None,
    profile: str = "cloudtrail",
    partition_column: str | None = None,
    partition_format: str | None = None,
    keyword_column: str | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    json_arrays: Sequence[str] = (),
) -> ProcessingPipeline:
    """Build the processing pipeline for one Athena CloudTrail table.

    Args:
        table: table name, optionally ``database.table``; the profile's default when None.
        profile: ``cloudtrail`` or ``security-lake``.
        partition_column: partition column bounded by the backend's lookback window, e.g.
            ``timestamp`` for the AWS partition-projection table; None for no partition filter.
        partition_format: Trino ``date_format`` pattern of the partition values.
        keyword_column: column holding the raw record text, for keyword detections.
        placeholders: values for Sigma ``expand`` placeholders, by placeholder name.
        json_arrays: extra Sigma field paths (``requestParameters.x``) whose JSON value is an
            array, added to ``DEFAULT_JSON_ARRAYS``.
    """
    if profile not in PROFILES:
        raise ConfigError(
            f"unknown Athena table profile {profile!r}",
            hint=f"use one of {', '.join(PROFILES)}",
        )
    table_kwargs: dict[str, str] = {}
    if table is not None:
        table_kwargs["table"] = table
    if partition_format is not None:
        table_kwargs["partition_format"] = partition_format
    shape: AthenaTable
    if profile == "cloudtrail":
        shape = cloudtrail_table(
            partition_column=partition_column,
            keyword_column=keyword_column,
            exact_case=_exact_case_cloudtrail(),
            **table_kwargs,
        )
    else:
        shape = security_lake_table(
            partition_column=partition_column,
            keyword_column=keyword_column,
            exact_case=_exact_case_security_lake(),
            **table_kwargs,
        )
    cloudtrail_logsource = LogsourceCondition(product="aws", service="cloudtrail")
    items = [
        ProcessingItem(
            identifier="siemgen_athena_logsource",
            transformation=RuleFailureTransformation(
                "the Athena pipeline converts only rules with logsource product 'aws' and "
                "service 'cloudtrail'"
            ),
            rule_conditions=[cloudtrail_logsource],
            rule_condition_negation=True,
        ),
        ProcessingItem(
            identifier="siemgen_athena_table",
            transformation=SetStateTransformation(STATE_KEY, shape),
        ),
    ]
    if placeholders:
        items.append(
            ProcessingItem(
                identifier="siemgen_athena_placeholders",
                transformation=ValueListPlaceholderTransformation(),
            )
        )
    items.append(
        ProcessingItem(
            identifier=FIELD_MAPPING_ID,
            transformation=AthenaFieldMappingTransformation(
                profile=profile, json_arrays=DEFAULT_JSON_ARRAYS | frozenset(json_arrays)
            ),
        )
    )
    return ProcessingPipeline(
        name=f"siemgen Athena {profile} table",
        priority=20,
        items=items,
        vars={name: list(values) for name, values in (placeholders or {}).items()},
        allowed_backends=frozenset({"athena"}),
    )


def athena_cloudtrail_pipeline() -> ProcessingPipeline:
    """Build the pipeline for the AWS-documented ``cloudtrail_logs`` table."""
    return athena_pipeline(profile="cloudtrail")


def athena_cloudtrail_projection_pipeline() -> ProcessingPipeline:
    """Build the pipeline for the partition-projection table, partitioned by ``timestamp``."""
    return athena_pipeline(
        table="cloudtrail_logs_pp", profile="cloudtrail", partition_column="timestamp"
    )


def athena_security_lake_pipeline() -> ProcessingPipeline:
    """Build the pipeline for an Amazon Security Lake CloudTrail table (OCSF 1.1)."""
    return athena_pipeline(profile="security-lake")
