"""The AWS artifacts: Athena named queries and CIS alarms, checked with cfn-lint offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from siemgen.build import generate
from siemgen.convert import Converter
from siemgen.packages.cloudformation import (
    CIS_ALARMS,
    NAMED_QUERIES,
    build_cis_alarms,
    build_named_queries,
    logical_id,
)
from siemgen.rules import load_collection, load_rule

from paths import CANONICAL, RULES

PACKAGE_DATA = Path(__file__).resolve().parent / "data" / "packages"
TEST_RULES = PACKAGE_DATA / "rules"

# CIS AWS Foundations Benchmark v1.2.0 control 3.4 (v1.4.0 4.4), as Security Hub's
# CloudWatch.4 check requires it: the 16 IAM calls in the benchmark's order.
CIS_3_4_PATTERN = (
    "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||"
    "($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||"
    "($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||"
    "($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||"
    "($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||"
    "($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||"
    "($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||"
    "($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}"
)


def aws_files(paths: list[Path]) -> dict[str, bytes]:
    result = generate(load_collection(paths), artifacts=[build_named_queries, build_cis_alarms])
    assert result.ok, [str(error) for error in result.errors]
    return result.files


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return aws_files([RULES, TEST_RULES])


def template(files: dict[str, bytes], name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(files[name])
    return loaded


def resources(data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in data["Resources"].items()
        if resource["Type"] == kind
    }


def _cfn_lint() -> str:
    script = Path(sys.executable).with_name("cfn-lint")
    found = str(script) if script.exists() else shutil.which("cfn-lint")
    if found is None:
        pytest.skip("cfn-lint is not installed (pip install -e '.[test]')")
    return found


def run_cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    # The sitecustomize on PYTHONPATH makes any network use raise. cfn-lint reads the
    # resource specifications bundled with it.
    environment = {**os.environ, "PYTHONPATH": str(PACKAGE_DATA / "offline")}
    return subprocess.run(
        [_cfn_lint(), "--format", "parseable", *map(str, paths)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def test_cfn_lint_passes_offline(files: dict[str, bytes], tmp_path: Path) -> None:
    paths = []
    for name in (NAMED_QUERIES, CIS_ALARMS):
        path = tmp_path / Path(name).name
        path.write_bytes(files[name])
        paths.append(path)
    completed = run_cfn_lint(*paths)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout == ""


def test_cfn_lint_reports_a_broken_alarm(files: dict[str, bytes], tmp_path: Path) -> None:
    data = template(files, CIS_ALARMS)
    alarm = next(iter(resources(data, "AWS::CloudWatch::Alarm").values()))
    alarm["ComparisonOperator"] = "AtLeast"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    completed = run_cfn_lint(path)
    assert completed.returncode != 0
    assert ":E3030:'AtLeast' is not one of" in completed.stdout


def test_iam_filter_is_the_cis_pattern(files: dict[str, bytes]) -> None:
    data = template(files, CIS_ALARMS)
    name = logical_id(CANONICAL.stem, "MetricFilter")
    properties = data["Resources"][name]["Properties"]
    assert properties["FilterPattern"] == CIS_3_4_PATTERN
    assert properties["MetricTransformations"] == [
        {"MetricNamespace": "CISBenchmark", "MetricName": "IAMPolicyEventCount", "MetricValue": "1"}
    ]
    assert properties["LogGroupName"] == {"Ref": "LogGroupName"}


def test_iam_page_explains_event_source() -> None:
    result = generate(load_collection([CANONICAL]))
    page = result.files["docs/aws_iam_policy_changed.md"].decode()
    assert (
        "The rule requires eventSource iam.amazonaws.com while the CIS filter pattern matches "
        "the event names alone, because other services use the same names"
    ) in page
    # The page shows the rule source, and with it the benchmark's filter pattern.
    assert CIS_3_4_PATTERN in page


def test_every_cloudwatch_rule_has_filter_and_alarm(files: dict[str, bytes]) -> None:
    data = template(files, CIS_ALARMS)
    filters = resources(data, "AWS::Logs::MetricFilter")
    alarms = resources(data, "AWS::CloudWatch::Alarm")
    rules = [
        load_rule(path)
        for path in sorted(RULES.rglob("*.yml"))
        if load_rule(path).custom("cloudwatch") is not None
    ]
    assert len(filters) == len(alarms) == len(rules) > 0
    for rule_file in rules:
        settings = rule_file.custom("cloudwatch")
        metric_filter = filters[logical_id(rule_file.stem, "MetricFilter")]
        alarm = alarms[logical_id(rule_file.stem, "Alarm")]
        assert metric_filter["FilterPattern"] == settings["filter_pattern"], rule_file.stem
        metric = metric_filter["MetricTransformations"][0]
        assert metric["MetricName"] == settings["metric_name"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("CISBenchmark", metric["MetricName"])
        assert alarm["Statistic"] == "Sum"
        assert alarm["Period"] == 300
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_one_topic_with_optional_email(files: dict[str, bytes]) -> None:
    data = template(files, CIS_ALARMS)
    assert list(resources(data, "AWS::SNS::Topic")) == ["AlarmTopic"]
    subscription = data["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert data["Parameters"]["AlarmEmail"]["Default"] == ""
    assert "Default" not in data["Parameters"]["LogGroupName"]


def test_named_query_per_rule(files: dict[str, bytes]) -> None:
    data = template(files, NAMED_QUERIES)
    queries = resources(data, "AWS::Athena::NamedQuery")
    collection = load_collection([RULES, TEST_RULES])
    assert len(queries) == len(collection.rules)
    converter = Converter()
    for rule_file in collection.rules:
        properties = queries[logical_id(rule_file.stem, "Query")]
        expected = converter.convert(rule_file, "athena", "sql", backend_format="named_query")
        assert properties["QueryString"] == expected, rule_file.stem
        assert properties["Database"] == {"Ref": "Database"}
        assert properties["WorkGroup"] == {"Ref": "WorkGroup"}
        assert "\n" not in properties["Name"]
        assert len(properties["Name"]) <= 128
    assert set(data["Parameters"]) == {"Database", "WorkGroup"}


def test_injected_title_stays_a_string(files: dict[str, bytes]) -> None:
    data = template(files, NAMED_QUERIES)
    properties = data["Resources"][logical_id("conf_injection", "Query")]["Properties"]
    assert properties["Name"] == "Injected title [injected stanza] search = | delete"
    assert properties["Description"] == "First line [evil] disabled = 1 enableSched = 0"


def test_templates_are_byte_identical_across_builds(files: dict[str, bytes]) -> None:
    again = aws_files([RULES, TEST_RULES])
    assert again[NAMED_QUERIES] == files[NAMED_QUERIES]
    assert again[CIS_ALARMS] == files[CIS_ALARMS]


def _rule_with(tmp_path: Path, name: str, replace: tuple[str, str]) -> Path:
    text = CANONICAL.read_text(encoding="utf-8")
    assert replace[0] in text
    path = tmp_path / f"{name}.yml"
    path.write_text(text.replace(*replace), encoding="utf-8")
    return path


def test_invalid_filter_pattern_names_rule_and_line(tmp_path: Path) -> None:
    path = _rule_with(tmp_path, "broken_pattern", ('filter_pattern: "{(', 'filter_pattern: "('))
    result = generate(load_collection([path]), artifacts=[build_cis_alarms])
    assert CIS_ALARMS not in result.files
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.path == path
    assert error.line == load_rule(path).line_of("cloudwatch", "filter_pattern")
    assert "not a JSON filter pattern" in str(error)


def test_repeated_metric_name_is_an_error(tmp_path: Path) -> None:
    _rule_with(tmp_path, "first", ("", ""))
    _rule_with(
        tmp_path,
        "second",
        ("7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60", "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a61"),
    )
    result = generate(load_collection([tmp_path]), artifacts=[build_cis_alarms])
    messages = [str(error) for error in result.errors]
    assert len(messages) == 1
    assert "'IAMPolicyEventCount' is already used by" in messages[0]
    # The build runs the builder again without the rule that repeats the name.
    template = result.files[CIS_ALARMS].decode()
    assert template.count("AWS::Logs::MetricFilter") == 1


def test_logical_id_is_alphanumeric() -> None:
    assert logical_id("aws_iam_policy_changed", "Query") == "AwsIamPolicyChangedQuery"
    assert logical_id("3rd-party.rule", "Alarm") == "Rule3rdPartyRuleAlarm"
    assert logical_id("___", "Alarm") == "RuleAlarm"
