"""Tests of the Athena pipelines: field mapping, table profiles and exact-case declarations."""

from __future__ import annotations

import pytest
from sigma.rule import SigmaRule

from siemgen.backends.athena_fields import AthenaField, FieldKind, JsonStep, SqlType, parse_field
from siemgen.backends.athena_tables import STATE_KEY, AthenaTable, quote_table
from siemgen.errors import ConfigError, UnknownFieldError
from siemgen.fields import FIELDS
from siemgen.pipelines.athena import (
    athena_cloudtrail_projection_pipeline,
    athena_pipeline,
    resolve_cloudtrail,
    resolve_security_lake,
)

NO_ARRAYS: frozenset[str] = frozenset()


def apply(detection: dict[str, object], **options: object) -> SigmaRule:
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "detection": detection,
        }
    )
    athena_pipeline(**options).apply(rule)  # type: ignore[arg-type]
    return rule


def test_cloudtrail_plain_and_struct_fields() -> None:
    assert resolve_cloudtrail("eventName", NO_ARRAYS).text() == "eventname"
    assert resolve_cloudtrail(
        "userIdentity.sessionContext.sessionIssuer.arn", NO_ARRAYS
    ).text() == ("useridentity.sessioncontext.sessionissuer.arn")


def test_cloudtrail_json_field() -> None:
    mapped = resolve_cloudtrail("requestParameters.policyArn", NO_ARRAYS)
    assert mapped == AthenaField(
        FieldKind.JSON, "requestparameters", steps=(JsonStep(key="policyArn"),)
    )
    assert mapped.text() == "json(requestparameters).policyArn"


def test_cloudtrail_json_arrays_marked() -> None:
    mapped = resolve_cloudtrail(
        "requestParameters.ipPermissions.items.ipRanges.items.cidrIp", NO_ARRAYS
    )
    assert mapped.text() == "json(requestparameters).ipPermissions.items[].ipRanges.items[].cidrIp"
    declared = resolve_cloudtrail("requestParameters.a.b", frozenset({"requestParameters.a"}))
    assert declared.text() == "json(requestparameters).a[].b"


def test_cloudtrail_array_index_is_not_searched() -> None:
    mapped = resolve_cloudtrail("requestParameters.a.0.b", frozenset({"requestParameters.a"}))
    assert mapped.text() == "json(requestparameters).a.0.b"


def test_cloudtrail_resources_and_status() -> None:
    assert resolve_cloudtrail("resources.ARN", NO_ARRAYS).text() == "resources[].arn"
    assert resolve_cloudtrail("resources{}.type", NO_ARRAYS).text() == "resources[].type"
    assert resolve_cloudtrail("status", NO_ARRAYS).text() == "outcome(errorcode)"


def test_every_athena_field_resolves() -> None:
    for field in FIELDS:
        if field.athena is None and field.raw != "status":
            with pytest.raises(UnknownFieldError, match=repr(field.raw)):
                resolve_cloudtrail(field.raw, NO_ARRAYS)
        else:
            assert parse_field(resolve_cloudtrail(field.raw, NO_ARRAYS).text()).column


def test_unknown_field_names_field_and_profile() -> None:
    with pytest.raises(UnknownFieldError) as raised:
        resolve_cloudtrail("EventName", NO_ARRAYS)
    assert "'EventName'" in raised.value.message
    assert "cloudtrail" in raised.value.message
    assert raised.value.field == "EventName"


def test_security_lake_fields() -> None:
    assert resolve_security_lake("eventSource", NO_ARRAYS).text() == "api.service.name"
    assert resolve_security_lake("userIdentity.arn", NO_ARRAYS).text() == "actor.user.uid"
    assert resolve_security_lake("resources.ARN", NO_ARRAYS).text() == "resources[].uid"
    assert (
        resolve_security_lake("requestParameters.x", NO_ARRAYS).text() == "json(api.request.data).x"
    )
    assert (
        resolve_security_lake(
            "userIdentity.sessionContext.attributes.mfaAuthenticated", NO_ARRAYS
        ).sql_type
        is SqlType.BOOLEAN
    )


def test_security_lake_rejects_unmapped() -> None:
    with pytest.raises(UnknownFieldError, match="'recipientAccountId'"):
        resolve_security_lake("recipientAccountId", NO_ARRAYS)


def test_parse_field_round_trip() -> None:
    for text in (
        "eventname",
        "useridentity.arn",
        "json(requestparameters).a[].b.0.c",
        "resources[].account.uid",
        "outcome(errorcode)",
        "actor.session.is_mfa::boolean",
    ):
        assert parse_field(text).text() == text


def test_pipeline_maps_detection_fields() -> None:
    rule = apply(
        {"sel": {"eventName": "A", "requestParameters.bucketName": "b"}, "condition": "sel"}
    )
    fields = [item.field for item in rule.detection.detections["sel"].detection_items]
    assert fields == ["eventname", "json(requestparameters).bucketName"]


def test_pipeline_maps_field_references() -> None:
    rule = apply(
        {"sel": {"userIdentity.arn|fieldref": "userIdentity.userName"}, "condition": "sel"}
    )
    item = rule.detection.detections["sel"].detection_items[0]
    assert item.value[0].field == "useridentity.username"


def test_pipeline_keeps_unknown_rule_fields_list() -> None:
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "fields": ["eventName", "NotAField"],
            "detection": {"sel": {"eventName": "A"}, "condition": "sel"},
        }
    )
    athena_pipeline().apply(rule)
    assert rule.fields == ["eventname", "NotAField"]


def test_pipeline_state_holds_table() -> None:
    pipeline = athena_cloudtrail_projection_pipeline()
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "detection": {"sel": {"eventName": "A"}, "condition": "sel"},
        }
    )
    pipeline.apply(rule)
    table = pipeline.state[STATE_KEY]
    assert isinstance(table, AthenaTable)
    assert table.table == "cloudtrail_logs_pp"
    assert table.partition_column == "timestamp"


def test_exact_case_fields_have_reasons() -> None:
    pipeline = athena_pipeline()
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "detection": {"sel": {"eventName": "A"}, "condition": "sel"},
        }
    )
    pipeline.apply(rule)
    exact = pipeline.state[STATE_KEY].exact_case
    assert set(exact) == {"eventsource", "eventname", "eventtype", "eventcategory"}
    assert "lower case" in exact["eventsource"]
    assert "PascalCase" in exact["eventname"]


def test_security_lake_exact_case_follows_fields() -> None:
    pipeline = athena_pipeline(profile="security-lake")
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "detection": {"sel": {"eventName": "A"}, "condition": "sel"},
        }
    )
    pipeline.apply(rule)
    exact = pipeline.state[STATE_KEY].exact_case
    assert {"api.operation", "api.service.name"} <= set(exact)


def test_unknown_profile_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'ocsf'"):
        athena_pipeline(profile="ocsf")


def test_invalid_table_name_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'logs; DROP TABLE x'"):
        athena_pipeline(table="logs; DROP TABLE x")


def test_quote_table() -> None:
    assert quote_table("db.cloudtrail_logs") == "db.cloudtrail_logs"
    assert quote_table("My-Db.Logs") == '"My-Db"."Logs"'
