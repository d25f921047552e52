"""`siemgen test`: exit status, the human summary, JSON and JUnit XML validated by schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner, Result

from siemgen.cli import app

from paths import RULES

DATA = Path(__file__).resolve().parent / "data" / "ruletest"
RULE_DATA = DATA / "rules"
SCHEMA = DATA / "junit.xsd"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["test", *args])


@pytest.fixture
def failing_rules(tmp_path: Path) -> Path:
    """A copy of the test rules where one group of iam_user_created expects wrongly."""
    target = tmp_path / "rules"
    shutil.copytree(RULE_DATA, target)
    path = target / "iam_user_created.tests.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["groups"][1]["expect"] = {"default": "no-match", "athena": "match"}
    path.write_text(json.dumps(data), encoding="utf-8")
    return target


def junit_tree(path: Path) -> etree._ElementTree:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    tree = etree.parse(str(path))
    schema.assertValid(tree)
    return tree


def test_rules_in_sigma_pass() -> None:
    result = run(str(RULES))
    assert result.exit_code == 0, result.stdout


def test_passing_rules_exit_zero() -> None:
    result = run(str(RULE_DATA))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "3 passed, 0 failed"
    assert lines[0].startswith("PASS iam_access_key_created: athena 4/4, elastic 4/4, ")


def test_failed_test_exits_one(failing_rules: Path) -> None:
    result = run(str(failing_rules))
    assert result.exit_code == 1
    assert "FAIL iam_user_created: athena FAILED 3/5, elastic 5/5" in result.stdout
    assert (
        "  iam_user_created [athena] group 'other-calls': record "
        "a3f1c9e2-0004-4d7a-9e51-7c3b2a1d0004 (another service with an API of the same name): "
        "expected match, got no-match"
    ) in result.stdout
    assert result.stdout.splitlines()[-1] == "2 passed, 1 failed"


def test_text_in_json_column_does_not_match(tmp_path: Path) -> None:
    rule = RULES / "aws" / "cloudtrail" / "aws_console_login_without_mfa.yml"
    shutil.copy(rule, tmp_path / rule.name)
    tests_file = rule.with_suffix(".tests.json")
    data = json.loads(tests_file.read_text(encoding="utf-8"))
    record = dict(data["groups"][0]["events"][0]["record"])
    record["eventID"] = "6a0d3c1e-5b2f-4e8a-9c7d-1f2e3d4c5b6a"
    record["additionalEventData"] = "MFAUsed=No"
    data["groups"].append(
        {
            "name": "plain-text-event-data",
            "expect": "no-match",
            "reason": "additionalEventData written as text, not as a JSON object",
            "events": [{"reason": "the text names the key the rule reads", "record": record}],
        }
    )
    (tmp_path / tests_file.name).write_text(json.dumps(data), encoding="utf-8")
    result = run(str(tmp_path), "--target", "athena")
    assert result.exit_code == 0, result.stdout
    assert "Malformed JSON" not in result.stdout
    assert result.stdout.startswith("PASS aws_console_login_without_mfa: athena 7/7")


def test_malformed_test_file_exits_one(tmp_path: Path) -> None:
    target = tmp_path / "rules"
    shutil.copytree(RULE_DATA, target)
    (target / "iam_user_created.tests.json").write_text("{", encoding="utf-8")
    result = run(str(target))
    assert result.exit_code == 1
    assert "invalid JSON at line 1" in result.stdout


def test_missing_path_exits_two(tmp_path: Path) -> None:
    result = run(str(tmp_path / "absent"))
    assert result.exit_code == 2
    assert "rule path not found" in result.stderr


def test_unknown_format_exits_two() -> None:
    result = run(str(RULE_DATA), "--format", "xml")
    assert result.exit_code == 2
    assert "unknown format 'xml'; choose one of text, json" in result.stderr


def test_unknown_target_exits_two() -> None:
    result = run(str(RULE_DATA), "--target", "kibana")
    assert result.exit_code == 2
    assert "unknown target 'kibana'" in result.stderr


def test_json_on_stdout() -> None:
    result = run(str(RULE_DATA), "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["passed"] == 3
    rule = next(rule for rule in report["rules"] if rule["stem"] == "iam_user_created")
    athena = next(target for target in rule["targets"] if target["target"] == "athena")
    assert athena["records_total"] == 5
    assert athena["groups"][2]["records"][0]["actual"] == "no-match"
    assert result.stderr.strip() == "3 passed, 0 failed"


def test_json_file(tmp_path: Path, failing_rules: Path) -> None:
    path = tmp_path / "out" / "report.json"
    result = run(str(failing_rules), "--json", str(path))
    assert result.exit_code == 1
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["ok"] is False
    assert report["failed"] == 1


def test_junit_validates_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    result = run(str(RULE_DATA), "--junit", str(path))
    assert result.exit_code == 0
    tree = junit_tree(path)
    cases = [(case.get("classname"), case.get("name")) for case in tree.iter("testcase")]
    user_cases = [case for case in cases if case[0].startswith("iam_user_created")]
    groups = ["user-created", "other-calls", "unusual-casing"]
    assert user_cases == [
        ("iam_user_created", "minimum-tests"),
        *[("iam_user_created.athena", group) for group in groups],
        *[("iam_user_created.elastic", group) for group in groups],
        ("iam_user_created.elastic/lucene", "query"),
        ("iam_user_created.elastic/esql", "query"),
        ("iam_user_created.splunk", "query"),
        *[("iam_user_created.cloudwatch", group) for group in groups],
    ]
    root = tree.getroot()
    assert root.get("tests") == str(len(cases))
    assert root.get("failures") == "0"
    assert [suite.get("name") for suite in root] == [
        "iam_access_key_created",
        "iam_user_created",
        "root_console_login",
    ]


def test_junit_failure_lists_records(tmp_path: Path, failing_rules: Path) -> None:
    path = tmp_path / "junit.xml"
    result = run(str(failing_rules), "--junit", str(path))
    assert result.exit_code == 1
    tree = junit_tree(path)
    failures = list(tree.iter("failure"))
    assert len(failures) == 1
    failure = failures[0]
    case = failure.getparent()
    assert case.get("classname") == "iam_user_created.athena"
    assert case.get("name") == "other-calls"
    assert failure.get("message") == (
        "2 of 2 records in group 'other-calls' got the wrong verdict on athena"
    )
    text = failure.text or ""
    assert "record a3f1c9e2-0003-4d7a-9e51-7c3b2a1d0003 (a user is deleted, not created)" in text
    assert "SELECT" in text
    assert tree.getroot().get("failures") == "1"


def test_junit_skipped_and_load_errors(tmp_path: Path) -> None:
    target = tmp_path / "rules"
    shutil.copytree(RULE_DATA, target)
    (target / "broken.yml").write_text("title: [\n", encoding="utf-8")
    path = tmp_path / "junit.xml"
    result = run(str(target), "--junit", str(path))
    assert result.exit_code == 1
    tree = junit_tree(path)
    errors = [case for case in tree.iter("testcase") if case.find("error") is not None]
    assert [case.get("classname") for case in errors] == ["load"]
    skipped = [case for case in tree.iter("testcase") if case.find("skipped") is not None]
    names = {(case.get("classname"), case.get("name")) for case in skipped}
    assert ("root_console_login", "minimum-tests") in names
    assert ("root_console_login.athena", "query") in names


def test_schema_rejects_broken_junit(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text('<testsuites><testsuite name="x"><testcase name="y"/></testsuite></testsuites>')
    with pytest.raises(etree.DocumentInvalid):
        junit_tree(path)
