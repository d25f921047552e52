"""Content checks for every rule in sigma/: loading, test files, CIS metadata and fields."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from siemgen.attack import load_attack
from siemgen.fields import CloudTrailField, lookup
from siemgen.rules import RuleFile, load_rule

RULES_DIR = Path(__file__).resolve().parents[1] / "sigma"
RULE_PATHS = sorted(RULES_DIR.rglob("*.yml"))
TEST_SUFFIX = ".tests.json"
TARGETS = ("athena", "elastic", "splunk", "cloudwatch")


@dataclass(frozen=True)
class Control:
    """One CIS monitoring control: its ids per benchmark version and its metric filter text."""

    cis_1_2_0: tuple[str, ...]
    cis_1_4_0: tuple[str, ...]
    security_hub: str | None
    filter_pattern: str


# The metric filter patterns as the CIS AWS Foundations Benchmark prints them (the v1.4.0
# remediation steps, which repeat the v1.2.0 text), copied byte for byte. Two controls differ
# between versions, and their rules carry the text noted on the entry.
CONTROLS: dict[str, Control] = {
    # v1.2.0 text of 3.1. The v1.4.0 text of 4.1 appends two != terms joined with ||.
    "aws_unauthorized_api_calls": Control(
        ("3.1",),
        ("4.1",),
        "CloudWatch.2",
        '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }',
    ),
    # v1.4.0 text for organizations that use single sign-on. The v1.2.0 text of 3.2 has only
    # the first two terms.
    "aws_console_login_without_mfa": Control(
        ("3.2",),
        ("4.2",),
        "CloudWatch.3",
        '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && '
        '($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
    ),
    "aws_root_account_used": Control(
        ("1.1", "3.3"),
        ("1.7", "4.3"),
        "CloudWatch.1",
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
        '$.eventType != "AwsServiceEvent" }',
    ),
    "aws_iam_policy_changed": Control(
        ("3.4",),
        ("4.4",),
        "CloudWatch.4",
        "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||"
        "($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||"
        "($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||"
        "($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||"
        "($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||"
        "($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||"
        "($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||"
        "($.eventName=DetachGroupPolicy)}",
    ),
    "aws_cloudtrail_configuration_changed": Control(
        ("3.5",),
        ("4.5",),
        "CloudWatch.5",
        "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || "
        "($.eventName = DeleteTrail) || ($.eventName = StartLogging) || "
        "($.eventName = StopLogging) }",
    ),
    "aws_console_login_failed": Control(
        ("3.6",),
        ("4.6",),
        "CloudWatch.6",
        '{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }',
    ),
    "aws_kms_key_disabled_or_deletion_scheduled": Control(
        ("3.7",),
        ("4.7",),
        "CloudWatch.7",
        "{($.eventSource = kms.amazonaws.com) && "
        "(($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }",
    ),
    "aws_s3_bucket_policy_changed": Control(
        ("3.8",),
        ("4.8",),
        "CloudWatch.8",
        "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || "
        "($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || "
        "($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || "
        "($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || "
        "($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }",
    ),
    "aws_config_configuration_changed": Control(
        ("3.9",),
        ("4.9",),
        "CloudWatch.9",
        "{ ($.eventSource = config.amazonaws.com) && "
        "(($.eventName=StopConfigurationRecorder)||($.eventName=DeleteDeliveryChannel)||"
        "($.eventName=PutDeliveryChannel)||($.eventName=PutConfigurationRecorder)) }",
    ),
    "aws_security_group_changed": Control(
        ("3.10",),
        ("4.10",),
        "CloudWatch.10",
        "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
        "($.eventName = AuthorizeSecurityGroupEgress) || "
        "($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) "
        "|| ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }",
    ),
    "aws_network_acl_changed": Control(
        ("3.11",),
        ("4.11",),
        "CloudWatch.11",
        "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || "
        "($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || "
        "($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
    ),
    "aws_network_gateway_changed": Control(
        ("3.12",),
        ("4.12",),
        "CloudWatch.12",
        "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || "
        "($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || "
        "($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }",
    ),
    "aws_route_table_changed": Control(
        ("3.13",),
        ("4.13",),
        "CloudWatch.13",
        "{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || "
        "($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || "
        "($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || "
        "($.eventName = DisassociateRouteTable) }",
    ),
    "aws_vpc_changed": Control(
        ("3.14",),
        ("4.14",),
        "CloudWatch.14",
        "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || "
        "($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || "
        "($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) "
        "|| ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || "
        "($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || "
        "($.eventName = EnableVpcClassicLink) }",
    ),
    # CIS v1.2.0 has no Organizations control and Security Hub has no CloudWatch control
    # for it.
    "aws_organizations_changed": Control(
        (),
        ("4.15",),
        None,
        '{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") '
        '|| ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || '
        '($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || '
        '($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || '
        '($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || '
        '($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || '
        '($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || '
        '($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || '
        '($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || '
        '($.eventName = "UpdateOrganizationalUnit")) }',
    ),
}

ALLOWED_MODIFIERS = frozenset({"contains", "startswith", "endswith"})
# Keys each test record must carry, as CloudTrail writes them in management events. requestID
# is checked separately because console sign-in events have none.
REQUIRED_RECORD_KEYS = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "eventID",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
)

_OUTCOME = {"enum": ["match", "no-match"]}
TEST_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["groups"],
    "additionalProperties": False,
    "properties": {
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "expect", "reason", "events"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9-]+$"},
                    "reason": {"type": "string", "minLength": 1},
                    "expect": {
                        "oneOf": [
                            _OUTCOME,
                            {
                                "type": "object",
                                "required": ["default"],
                                "additionalProperties": False,
                                "minProperties": 2,
                                "properties": {
                                    "default": _OUTCOME,
                                    **{target: _OUTCOME for target in TARGETS},
                                },
                            },
                        ]
                    },
                    "events": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["reason", "record"],
                            "additionalProperties": False,
                            "properties": {
                                "reason": {"type": "string", "minLength": 1},
                                "record": {
                                    "type": "object",
                                    "required": ["eventID"],
                                    "properties": {"eventID": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def _stem(path: Path) -> str:
    return path.name.removesuffix(path.suffix)


over_rules = pytest.mark.parametrize("rule_path", RULE_PATHS, ids=[_stem(p) for p in RULE_PATHS])


def _test_path(rule_path: Path) -> Path:
    return rule_path.with_name(_stem(rule_path) + TEST_SUFFIX)


@cache
def _rule(path: Path) -> RuleFile:
    return load_rule(path)


@cache
def _tests(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_test_path(path).read_text(encoding="utf-8"))
    return data


def _outcomes(expect: str | dict[str, str]) -> set[str]:
    """Return the outcomes an expect value gives across all targets."""
    if isinstance(expect, str):
        return {expect}
    return {expect.get(target, expect["default"]) for target in TARGETS}


def _events(path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(group, item) for group in _tests(path)["groups"] for item in group["events"]]


def _detection_items(rule: RuleFile) -> list[tuple[str, Any]]:
    """List (field with modifiers, value) for every detection item of the rule."""
    items: list[tuple[str, Any]] = []
    for name, block in rule.data["detection"].items():
        if name == "condition":
            continue
        blocks = block if isinstance(block, list) else [block]
        for mapping in blocks:
            items.extend(mapping.items())
    return items


def _compliance(rule: RuleFile, framework: str, version: str | None = None) -> list[str]:
    return [
        str(item["control"])
        for item in rule.custom("compliance", [])
        if item.get("framework") == framework and item.get("version", None) == version
    ]


def test_rules_folder_has_rules() -> None:
    assert RULE_PATHS, f"no rule files under {RULES_DIR}"


@pytest.mark.parametrize("stem", sorted(CONTROLS))
def test_every_control_has_rule(stem: str) -> None:
    rule_path = RULES_DIR / "aws" / "cloudtrail" / f"{stem}.yml"
    assert rule_path.is_file(), f"no rule file for CIS control rule {stem!r}"


@over_rules
def test_rule_loads(rule_path: Path) -> None:
    rule = _rule(rule_path)
    assert rule.rule_id, f"{rule_path.name} has no id"
    assert uuid.UUID(rule.rule_id).version == 4
    assert rule.data["author"] == "siemgen"
    assert rule.data["logsource"] == {"product": "aws", "service": "cloudtrail"}


def test_rule_ids_unique() -> None:
    counts = Counter(_rule(path).rule_id for path in RULE_PATHS)
    assert [rule_id for rule_id, count in counts.items() if count > 1] == []


@over_rules
def test_rule_has_documentation_keys(rule_path: Path) -> None:
    rule = _rule(rule_path)
    for key in ("title", "status", "level", "description", "date", "references"):
        assert rule.data.get(key), f"{rule_path.name} has no {key!r}"
    assert rule.data["falsepositives"], f"{rule_path.name} has no false positives"
    assert all(isinstance(note, str) and note for note in rule.custom("notes", []))
    assert rule.custom("notes"), f"{rule_path.name} has no notes"
    assert rule.custom("triage"), f"{rule_path.name} has no triage steps"
    for reference in rule.data["references"]:
        assert reference.startswith("https://docs.aws.amazon.com/"), reference


@over_rules
def test_rule_attack_tags(rule_path: Path) -> None:
    """Tags resolve in the ATT&CK release siemgen pins, with each technique's tactics."""
    attack = load_attack()
    resolved = attack.resolve_tags(_rule(rule_path).data.get("tags", []), path=rule_path)
    assert resolved.techniques, f"{rule_path.name} has no ATT&CK technique tag"
    tagged = {tactic.shortname for tactic in resolved.tactics}
    for technique in resolved.techniques:
        missing = sorted(set(technique.tactics) - tagged)
        assert missing == [], f"{technique.id} needs its tactics {missing}"


@over_rules
def test_rule_fields_known(rule_path: Path) -> None:
    """Every detection field must exist in the field table with a name on every target."""
    for key, _value in _detection_items(_rule(rule_path)):
        field, *modifiers = key.split("|")
        assert [m for m in modifiers if m not in ALLOWED_MODIFIERS] == [], key
        found = lookup(field)
        assert found is not None, f"{rule_path.name}: field {field!r} is not in siemgen.fields"
        if isinstance(found, CloudTrailField):
            assert found.elastic is not None, f"{field!r} is not searchable on Elastic"
            assert found.athena is not None, f"{field!r} has no Athena column"


@over_rules
def test_rule_has_test_file(rule_path: Path) -> None:
    assert _test_path(rule_path).is_file(), f"missing {_test_path(rule_path).name}"


@over_rules
def test_test_file_layout(rule_path: Path) -> None:
    tests = _tests(rule_path)
    jsonschema.validate(tests, TEST_FILE_SCHEMA)
    names = [group["name"] for group in tests["groups"]]
    assert [name for name, count in Counter(names).items() if count > 1] == []


@over_rules
def test_test_file_has_match_and_no_match(rule_path: Path) -> None:
    if _rule(rule_path).custom("tests", {}).get("skip"):
        pytest.skip(f"{rule_path.name} opts out of the minimum-tests gate")
    outcomes = [_outcomes(group["expect"]) for group, _item in _events(rule_path)]
    assert {"match"} in outcomes, "no event is expected to match on every target"
    assert {"no-match"} in outcomes, "no event is expected to miss on every target"


def test_event_ids_unique_across_files() -> None:
    counts = Counter(
        item["record"]["eventID"]
        for path in RULE_PATHS
        if _test_path(path).is_file()
        for _group, item in _events(path)
    )
    assert [event_id for event_id, count in counts.items() if count > 1] == []


@over_rules
def test_test_records_realistic(rule_path: Path) -> None:
    for _group, item in _events(rule_path):
        record = item["record"]
        where = f"{rule_path.name}: {item['reason']!r}"
        missing = [key for key in REQUIRED_RECORD_KEYS if key not in record]
        assert missing == [], f"{where} lacks {missing}"
        assert uuid.UUID(record["eventID"]).version == 4, where
        assert record["eventTime"].startswith("2026-"), where
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["eventTime"]), where
        assert record["userIdentity"].get("type"), where
        assert record["userIdentity"].get("accountId"), where
        if record["eventSource"] != "signin.amazonaws.com":
            assert record.get("requestID"), f"{where} lacks requestID"


@over_rules
def test_listed_calls_have_match_events(rule_path: Path) -> None:
    """Each eventName the detection lists has an event that must match on every target."""
    listed: set[str] = set()
    for key, value in _detection_items(_rule(rule_path)):
        if key == "eventName":
            listed.update(value if isinstance(value, list) else [value])
    matched = {
        item["record"]["eventName"]
        for group, item in _events(rule_path)
        if _outcomes(group["expect"]) == {"match"}
    }
    assert sorted(listed - matched) == []


@pytest.mark.parametrize("stem", sorted(CONTROLS))
def test_cloudwatch_pattern_matches_benchmark(stem: str) -> None:
    rule = _rule(RULES_DIR / "aws" / "cloudtrail" / f"{stem}.yml")
    cloudwatch = rule.custom("cloudwatch")
    assert isinstance(cloudwatch, dict), f"{stem} has no cloudwatch mapping"
    assert cloudwatch["filter_pattern"] == CONTROLS[stem].filter_pattern


@pytest.mark.parametrize("stem", sorted(CONTROLS))
def test_cloudwatch_metric_name_valid(stem: str) -> None:
    metric_name = _rule(RULES_DIR / "aws" / "cloudtrail" / f"{stem}.yml").custom("cloudwatch")[
        "metric_name"
    ]
    assert re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", metric_name), metric_name


def test_cloudwatch_metric_names_unique() -> None:
    names = Counter(
        _rule(RULES_DIR / "aws" / "cloudtrail" / f"{stem}.yml").custom("cloudwatch")["metric_name"]
        for stem in CONTROLS
    )
    assert [name for name, count in names.items() if count > 1] == []


@pytest.mark.parametrize("stem", sorted(CONTROLS))
def test_compliance_ids(stem: str) -> None:
    rule = _rule(RULES_DIR / "aws" / "cloudtrail" / f"{stem}.yml")
    control = CONTROLS[stem]
    assert sorted(_compliance(rule, "cis-aws-foundations", "1.2.0")) == sorted(control.cis_1_2_0)
    assert sorted(_compliance(rule, "cis-aws-foundations", "1.4.0")) == sorted(control.cis_1_4_0)
    expected_hub = [control.security_hub] if control.security_hub else []
    assert _compliance(rule, "aws-security-hub") == expected_hub


def test_controls_cover_benchmark() -> None:
    """The table lists CIS v1.4.0 4.1 to 4.15 and Security Hub CloudWatch.1 to 14 once each."""
    cis = sorted(
        (control_id for control in CONTROLS.values() for control_id in control.cis_1_4_0),
        key=lambda text: tuple(int(part) for part in text.split(".")),
    )
    assert [c for c in cis if c.startswith("4.")] == [f"4.{n}" for n in range(1, 16)]
    hub = sorted(
        (control.security_hub for control in CONTROLS.values() if control.security_hub),
        key=lambda text: int(text.split(".")[1]),
    )
    assert hub == [f"CloudWatch.{n}" for n in range(1, 15)]
