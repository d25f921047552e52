"""Splunk searches mean what the Sigma rule means: array fields, whole objects, cased, errors.

No Splunk server runs here. Field names are checked against the names Splunk's JSON field
extraction gives a real CloudTrail record (a ``{}`` after each array), and every search must
pass the project's SPL structure check, which also rejects fields the add-on does not extract.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sigma.collection import SigmaCollection

from siemgen import fields
from siemgen.backends.splunk import SplunkBackend
from siemgen.convert import Converter
from siemgen.engines import spl
from siemgen.errors import ConversionError, UnsupportedFeatureError
from siemgen.pipelines.splunk import splunk_pipeline
from siemgen.rules import RuleFile, load_collection, load_rule
from siemgen.ruletest import run_paths

from paths import CORPUS

WriteRule = Callable[..., Path]

# An ECS RegisterTaskDefinition record, shortened, as CloudTrail writes it.
REGISTER_TASK_DEFINITION: dict[str, Any] = {
    "eventSource": "ecs.amazonaws.com",
    "eventName": "RegisterTaskDefinition",
    "requestParameters": {
        "family": "web",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "nginx",
                "command": [
                    "sh",
                    "-c",
                    "curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                ],
                "environment": [{"name": "MODE", "value": "prod"}],
            }
        ],
    },
}
AUTHORIZE_INGRESS: dict[str, Any] = {
    "eventSource": "ec2.amazonaws.com",
    "eventName": "AuthorizeSecurityGroupIngress",
    "requestParameters": {
        "groupId": "sg-0123",
        "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]},
    },
}


def splunk_json_fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (field name, value) as Splunk's JSON extraction names the leaves of a record.

    Object keys join with ``.``, and an array adds ``{}`` to the name of its parent key.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            yield from splunk_json_fields(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            yield from splunk_json_fields(item, path + "{}")
    else:
        yield path, json.dumps(value) if not isinstance(value, str) else value


def spl_problems(query: str) -> list[str]:
    known = {field.splunk for field in fields.FIELDS}
    prefixes = tuple(f"{column.value}." for column in fields.JsonColumn)
    return spl.check(query, known, prefixes)


def rule_with(write_rule: WriteRule, detection: str) -> RuleFile:
    return load_rule(write_rule(detection=detection))


def convert(rule: RuleFile) -> str:
    return Converter().convert(rule, "splunk")


def convert_yaml(detection: str, **options: Any) -> str:
    rule = SigmaCollection.from_yaml(
        f"title: t\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n{detection}"
    )
    result = SplunkBackend(splunk_pipeline(**options)).convert(rule)
    assert len(result) == 1
    return str(result[0])


# Array members carry {} after their key.


@pytest.mark.parametrize(
    ("field", "record", "expected"),
    [
        (
            "requestParameters.containerDefinitions.command",
            REGISTER_TASK_DEFINITION,
            "requestParameters.containerDefinitions{}.command{}",
        ),
        (
            "requestParameters.containerDefinitions.environment.value",
            REGISTER_TASK_DEFINITION,
            "requestParameters.containerDefinitions{}.environment{}.value",
        ),
        (
            "requestParameters.containerDefinitions.image",
            REGISTER_TASK_DEFINITION,
            "requestParameters.containerDefinitions{}.image",
        ),
        (
            "requestParameters.ipPermissions.items.ipRanges.items.cidrIp",
            AUTHORIZE_INGRESS,
            "requestParameters.ipPermissions.items{}.ipRanges.items{}.cidrIp",
        ),
    ],
)
def test_array_field_names_match_extraction(
    field: str, record: dict[str, Any], expected: str, write_rule: WriteRule
) -> None:
    query = convert(rule_with(write_rule, f"sel:\n    {field}|contains: x\ncondition: sel"))
    extracted = {name for name, _ in splunk_json_fields(record)}
    assert expected in extracted
    assert f'"{expected}"="*x*"' in query
    assert spl_problems(query) == []


def test_corpus_style_command_matches_value(write_rule: WriteRule) -> None:
    rule = rule_with(
        write_rule,
        "sel:\n    requestParameters.containerDefinitions.command|contains: "
        "'$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'\ncondition: sel",
    )
    query = convert(rule)
    name = "requestParameters.containerDefinitions{}.command{}"
    values = [
        value for field, value in splunk_json_fields(REGISTER_TASK_DEFINITION) if field == name
    ]
    assert f'"{name}"="*$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI*"' in query
    assert any("$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in value for value in values)


def test_array_marker_in_rule_becomes_braces() -> None:
    query = convert_yaml("    sel:\n        requestParameters.tags[].key: team\n    condition: sel")
    assert '"requestParameters.tags{}.key"="team"' in query


def test_extra_json_arrays_option() -> None:
    detection = "    sel:\n        requestParameters.subnetIds: subnet-1\n    condition: sel"
    assert 'requestParameters.subnetIds="subnet-1"' in convert_yaml(detection)
    extended = convert_yaml(detection, json_arrays=["requestParameters.subnetIds"])
    assert '"requestParameters.subnetIds{}"="subnet-1"' in extended


def test_array_index_is_rejected(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    requestParameters.items.0.cidrIp: x\ncondition: sel")
    with pytest.raises(UnsupportedFeatureError, match="array member 0") as caught:
        convert(rule)
    assert caught.value.target == "splunk"


# Whole objects search the raw event.


def test_whole_object_contains_searches_raw(write_rule: WriteRule) -> None:
    rule = rule_with(
        write_rule,
        "sel:\n    eventName: CreateInstanceExportTask\nfilter:\n"
        "    responseElements|contains: Failure\ncondition: sel and not filter",
    )
    query = convert(rule)
    assert 'NOT _raw="*Failure*"' in query
    assert "responseElements" not in query
    assert spl_problems(query) == []


def test_whole_object_contains_all_searches_raw(write_rule: WriteRule) -> None:
    rule = rule_with(
        write_rule,
        "sel:\n    requestParameters|contains|all:\n        - s3:GetObject\n        - Allow\n"
        "condition: sel",
    )
    query = convert(rule)
    assert '_raw="*s3:GetObject*" _raw="*Allow*"' in query


def test_whole_object_regex_searches_raw(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    requestParameters|re: 'bucket[A-Z]'\ncondition: sel")
    query = convert(rule)
    assert '| regex _raw="bucket[A-Z]"' in query
    assert spl_problems(query) == []


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("requestParameters: x", "only a contains match"),
        ("requestParameters|startswith: x", "only a contains match"),
        ("requestParameters|contains: '*'", "only a contains match"),
        ("requestParameters|re: '^x'", "anchor to the whole event"),
        ("requestParameters|re: '[^a]$'", "anchor to the whole event"),
        ("requestParameters|exists: true", "leaf values only"),
        ("responseElements: null", "leaf values only"),
    ],
)
def test_whole_object_without_raw_meaning_is_rejected(
    item: str, fragment: str, write_rule: WriteRule
) -> None:
    rule = rule_with(write_rule, f"sel:\n    {item}\ncondition: sel")
    with pytest.raises(UnsupportedFeatureError, match=fragment) as caught:
        convert(rule)
    assert caught.value.field in ("requestParameters", "responseElements")


def test_object_key_is_not_raw(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    requestParameters.bucketName: logs\ncondition: sel")
    assert 'requestParameters.bucketName="logs"' in convert(rule)


# |cased and keyword regular expressions.


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("eventName|cased: CreateUser", "eventName=CASE(CreateUser)"),
        ("eventName|contains|cased: User", "eventName=CASE(*User*)"),
        ("userAgent|cased: S3 Browser", 'userAgent=CASE("S3 Browser")'),
        (
            "eventName|cased:\n        - CreateUser\n        - DeleteUser",
            "eventName=CASE(CreateUser) OR eventName=CASE(DeleteUser)",
        ),
    ],
)
def test_cased_uses_case_directive(item: str, expected: str, write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, f"sel:\n    {item}\ncondition: sel"))
    assert expected in query
    assert " IN " not in query
    assert spl_problems(query) == []


def test_keyword_regex_runs_regex_on_raw(write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, "keywords:\n    - '|re': 'ev.l'\ncondition: keywords"))
    assert query.endswith('\n| regex _raw="ev.l"')
    assert spl_problems(query) == []


def test_keyword_string_stays_a_term(write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, "keywords:\n    - evil\ncondition: keywords"))
    assert query.endswith(' "evil"')


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("eventTime|minute: 5", "the minute modifier on field 'eventTime'"),
        ("eventTime|week: 5", "the week modifier on field 'eventTime'"),
        (
            "userIdentity.arn|fieldref|contains: userIdentity.userName",
            "the fieldref modifier with contains",
        ),
    ],
)
def test_unsupported_construct_is_explained(
    item: str, fragment: str, write_rule: WriteRule
) -> None:
    rule = rule_with(write_rule, f"sel:\n    {item}\ncondition: sel")
    with pytest.raises(ConversionError) as caught:
        convert(rule)
    assert fragment in caught.value.message
    assert "internal error" not in caught.value.message
    assert caught.value.target == "splunk"


# The runner and the community corpus.


def test_siemgen_test_checks_array_and_raw_search(tmp_path: Path, write_rule: WriteRule) -> None:
    rule_path = write_rule(
        name="task_definition",
        detection="sel:\n    eventSource: ecs.amazonaws.com\n"
        "    requestParameters.containerDefinitions.command|contains: curl\n"
        "filter:\n    responseElements|contains: Failure\ncondition: sel and not filter",
    )
    report = run_paths([rule_path.parent], targets=["splunk"])
    result = report.rule("task_definition")
    assert result is not None
    splunk = result.target("splunk")
    assert splunk is not None
    assert splunk.problems == []
    assert splunk.query is not None
    assert '"requestParameters.containerDefinitions{}.command{}"="*curl*"' in splunk.query
    assert 'NOT _raw="*Failure*"' in splunk.query


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the SigmaHQ corpus is not available")
def test_corpus_searches_name_extracted_fields() -> None:
    collection = load_collection([CORPUS])
    converter = Converter()
    objects = {column.value for column in fields.JsonColumn}
    for rule in collection.rules:
        query = converter.convert(rule, "splunk")
        assert spl_problems(query) == [], rule.path
        for name in objects:
            assert f" {name}=" not in query, rule.path
            assert f'"{name}"=' not in query, rule.path
    export = converter.convert(load_rule(CORPUS / "aws_ec2_vm_export_failure.yml"), "splunk")
    assert 'OR _raw="*Failure*")' in export
