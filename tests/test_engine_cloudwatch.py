"""The CloudWatch Logs filter-pattern evaluator: syntax, semantics and the CIS patterns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from siemgen.convert import Converter
from siemgen.engines.cloudwatch import (
    And,
    Check,
    Comparison,
    FilterPatternError,
    Or,
    matches,
    parse,
)
from siemgen.engines.duckdb import create_cloudtrail_table, load_records, matching_event_ids
from siemgen.errors import RuleLoadError
from siemgen.rules import load_rule

from paths import CANONICAL, RULES

# The JSON example of the CloudWatch Logs User Guide, with a CloudTrail-like part.
RECORD: dict[str, Any] = {
    "eventType": "UpdateTrail",
    "eventName": "PutBucketPolicy",
    "sourceIPAddress": "111.111.111.111",
    "errorCode": "Client.UnauthorizedOperation",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "ThisFlag": True,
    "OtherFlag": False,
    "latency": 512.5,
    "userIdentity": {"type": "Root", "accountId": "123456789012"},
    "mixed": "Ev*ent",
}

MATCHING = [
    '{ $.eventType = "UpdateTrail" }',
    "{ $.eventType = UpdateTrail }",
    "{$.eventType=UpdateTrail}",
    "{ $.sourceIPAddress != 123.123.* }",
    '{ $.arrayKey[0] = "value" }',
    '{ $.arrayKey[1] = "another value" }',
    "{ $.objectList[1].id = 2 }",
    "{ $.SomeObject IS NULL }",
    "{ $.SomeOtherObject NOT EXISTS }",
    "{ $.userIdentity.invokedBy NOT EXISTS }",
    "{ $.ThisFlag IS TRUE }",
    "{ $.OtherFlag IS FALSE }",
    '{ $.errorCode = "*UnauthorizedOperation" }',
    '{ $.errorCode = "Client.*" }',
    '{ $.errorCode = "*Unauthorized*" }',
    "{ $.eventType = * }",
    '{ $.mixed = "Ev*ent" }',
    "{ $.latency >= 500 }",
    "{ $.latency > +500 }",
    "{ $.latency < 5.13e2 }",
    "{ $.latency != 500 }",
    "{ $.objectList[0].id <= 1 }",
    "{ $.userIdentity.accountId = 123456789012 }",
    '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS }',
    "{ $.eventType = Nope || $.eventName = PutBucketPolicy }",
    "{ ($.eventType = Nope || $.eventName = PutBucketPolicy) && $.ThisFlag IS TRUE }",
    "{ $.eventType = UpdateTrail || $.eventName = Nope && $.eventType = Nope }",
]

NOT_MATCHING = [
    "{ $.eventType = updatetrail }",
    '{ $.eventType = "Update" }',
    "{ $.sourceIPAddress = 123.123.* }",
    '{ $.arrayKey[2] = "value" }',
    "{ $.objectList[0].id = 2 }",
    "{ $.eventType IS NULL }",
    "{ $.SomeObject NOT EXISTS }",
    "{ $.OtherFlag IS TRUE }",
    '{ $.errorCode = "AccessDenied*" }',
    "{ $.missing = * }",
    # A wildcard inside a value is a literal character.
    '{ $.eventName = "Put*Policy" }',
    # A selector that points at an array or an object matches neither = nor !=.
    "{ $.arrayKey = value }",
    "{ $.arrayKey != value }",
    "{ $.userIdentity != Root }",
    # A missing property does not match != either. NOT EXISTS is the test for absence.
    "{ $.missing != anything }",
    "{ $.latency > 600 }",
    "{ $.eventType > 5 }",
    "{ ($.eventType = UpdateTrail || $.eventName = Nope) && $.eventType = Nope }",
]

INVALID = [
    ("$.eventType = UpdateTrail", "not a JSON filter pattern"),
    ("ERROR WARN", "not a JSON filter pattern"),
    ("{ $.eventType = UpdateTrail", "expected '}'"),
    ("{ eventType = UpdateTrail }", "expected a selector"),
    ("{ $ = UpdateTrail }", "at least one property"),
    ("{ $.eventType UpdateTrail }", "expected an operator"),
    ("{ $.eventType = }", "expected a value"),
    ('{ $.eventType = "open }', "unterminated quoted string"),
    ("{ $.latency > high }", "needs a number"),
    ("{ $.eventType IS MISSING }", "expected NULL, TRUE or FALSE"),
    ("{ $.eventType NOT THERE }", "expected EXISTS"),
    ("{ $.eventType = %Update% }", "regular expression"),
    ("{ $.a = 1 } trailing", "unexpected text"),
    ("{ $[0] = 1 }", "'[NUMBER]' after a property name"),
]


@pytest.mark.parametrize("pattern", MATCHING)
def test_pattern_matches_record(pattern: str) -> None:
    assert matches(pattern, RECORD), pattern


@pytest.mark.parametrize("pattern", NOT_MATCHING)
def test_pattern_does_not_match_record(pattern: str) -> None:
    assert not matches(pattern, RECORD), pattern


@pytest.mark.parametrize(("pattern", "message"), INVALID)
def test_invalid_pattern_raises(pattern: str, message: str) -> None:
    with pytest.raises(FilterPatternError) as caught:
        parse(pattern)
    assert message in str(caught.value)
    assert repr(pattern) in str(caught.value)


def test_and_binds_tighter_than_or() -> None:
    parsed = parse("{ $.a = 1 || $.b = 2 && $.c = 3 }")
    assert isinstance(parsed.expression, Or)
    first, second = parsed.expression.terms
    assert isinstance(first, Comparison)
    assert isinstance(second, And)


def test_parsed_comparison_keeps_value_and_number() -> None:
    parsed = parse('{ $.users[0].id != "2" && $.n >= -1.5e1 && $.x NOT EXISTS }')
    assert isinstance(parsed.expression, And)
    quoted, number, check = parsed.expression.terms
    assert quoted == Comparison(quoted.selector, "!=", "2", True, None)
    assert quoted.selector.steps == ("users", 0, "id")
    assert isinstance(number, Comparison)
    assert number.number == -15.0
    assert check == Check(check.selector, "NOT EXISTS")


def test_parsed_pattern_is_reusable() -> None:
    parsed = parse("{ $.eventName = PutBucketPolicy }")
    assert matches(parsed, RECORD)
    assert not matches(parsed, {"eventName": "GetBucketPolicy"})


def test_quoted_value_keeps_escaped_quote() -> None:
    assert matches(r'{ $.m = "say \"hi\"" }', {"m": 'say "hi"'})


def test_overlong_pattern_raises() -> None:
    pattern = "{ " + " || ".join(["$.eventName = CreateUser"] * 60) + " }"
    with pytest.raises(FilterPatternError, match="limit of 1024"):
        parse(pattern)


def test_deep_nesting_raises_pattern_error() -> None:
    pattern = "{" + "(" * 400 + "$.a = 1" + ")" * 400 + "}"
    with pytest.raises(FilterPatternError, match="too deeply"):
        parse(pattern)


def _cloudwatch_rules() -> list[Path]:
    found = []
    for path in sorted(RULES.rglob("*.yml")):
        try:
            rule_file = load_rule(path)
        except RuleLoadError:
            continue
        if rule_file.custom("cloudwatch") is not None:
            found.append(path)
    return found


@pytest.mark.parametrize("path", _cloudwatch_rules(), ids=lambda path: path.stem)
def test_rule_filter_pattern_runs_on_its_tests(path: Path) -> None:
    rule_file = load_rule(path)
    pattern = parse(rule_file.custom("cloudwatch")["filter_pattern"])
    tests_path = path.with_name(f"{path.stem}.tests.json")
    if not tests_path.exists():
        pytest.skip(f"{tests_path.name} is not written yet")
    groups = json.loads(tests_path.read_text(encoding="utf-8"))["groups"]
    for group in groups:
        expect = group["expect"]
        if isinstance(expect, dict):
            expect = expect.get("cloudwatch", expect.get("default"))
        for event in group["events"]:
            matched = matches(pattern, event["record"])
            assert matched == (expect == "match"), (group["name"], event["reason"])


def test_iam_cis_filter_differs_from_rule_on_other_services() -> None:
    tests_path = CANONICAL.with_name(f"{CANONICAL.stem}.tests.json")
    if not tests_path.exists():
        pytest.skip(f"{tests_path.name} is not written yet")
    rule_file = load_rule(CANONICAL)
    records = [
        event["record"]
        for group in json.loads(tests_path.read_text(encoding="utf-8"))["groups"]
        for event in group["events"]
    ]
    pattern = parse(rule_file.custom("cloudwatch")["filter_pattern"])
    cis = {record["eventID"] for record in records if matches(pattern, record)}

    con = duckdb.connect()
    create_cloudtrail_table(con)
    load_records(con, records)
    rule = matching_event_ids(con, Converter().convert(rule_file, "athena", "sql"))

    # The CIS filter names the 16 API calls but not the service, so it also counts calls of
    # the same name to other services (Auto Scaling DeletePolicy, Organizations CreatePolicy,
    # IoT CreatePolicyVersion). The rule requires eventSource iam.amazonaws.com, which Athena
    # compares case-sensitively.
    listed = set(rule_file.data["detection"]["selection"]["eventName"])
    other_services = {
        record["eventID"]
        for record in records
        if record["eventName"] in listed and record["eventSource"] != "iam.amazonaws.com"
    }
    autoscaling = {
        record["eventID"]
        for record in records
        if (record["eventSource"], record["eventName"])
        == ("autoscaling.amazonaws.com", "DeletePolicy")
    }
    assert autoscaling, "the tests need an Auto Scaling DeletePolicy event"
    assert autoscaling <= other_services
    assert rule <= cis
    assert cis - rule == other_services
