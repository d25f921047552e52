"""run_tests: engines per target, the minimum-tests gate, and failures on the right target."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from siemgen import fields
from siemgen.errors import ConfigError
from siemgen.rules import load_collection
from siemgen.ruletest import TestReport, orphan_test_files, run_paths, run_tests
from siemgen.targets import TargetOptions

DATA = Path(__file__).resolve().parent / "data" / "ruletest" / "rules"
ALL_TARGETS = ["athena", "elastic", "elastic/lucene", "elastic/esql", "splunk", "cloudwatch"]


@pytest.fixture(scope="module")
def data_report() -> TestReport:
    return run_paths([DATA])


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(DATA, target)
    return target


def edit_tests(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_project_data_passes(data_report: TestReport) -> None:
    assert data_report.errors == []
    assert [rule.stem for rule in data_report.rules if not rule.ok] == []
    assert data_report.passed == 3
    assert data_report.failed == 0


def test_every_target_runs(data_report: TestReport) -> None:
    rule = data_report.rule("iam_user_created")
    assert rule is not None
    assert [target.target for target in rule.targets] == ALL_TARGETS
    for name in ("athena", "elastic", "cloudwatch"):
        target = rule.target(name)
        assert target is not None
        assert target.counts() == (5, 5)


def test_casing_group_differs_by_engine(data_report: TestReport) -> None:
    rule = data_report.rule("iam_user_created")
    assert rule is not None
    verdicts = {}
    for name in ("athena", "elastic", "cloudwatch"):
        target = rule.target(name)
        assert target is not None
        group = next(group for group in target.groups if group.name == "unusual-casing")
        verdicts[name] = group.records[0].actual
    assert verdicts == {"athena": False, "elastic": True, "cloudwatch": False}


def test_cloudwatch_only_with_filter_pattern(data_report: TestReport) -> None:
    rule = data_report.rule("iam_access_key_created")
    assert rule is not None
    assert rule.target("cloudwatch") is None


def test_record_without_field_passes_not_filter(data_report: TestReport) -> None:
    rule = data_report.rule("iam_access_key_created")
    assert rule is not None
    for name in ("athena", "elastic"):
        target = rule.target(name)
        assert target is not None
        records = {
            record.event_id: record.actual for group in target.groups for record in group.records
        }
        assert records["b7e2d4f1-0002-4c3a-8f2e-6d5c4b3a0002"] is True


def test_skip_setting_bypasses_gate(data_report: TestReport) -> None:
    rule = data_report.rule("root_console_login")
    assert rule is not None
    assert rule.ok
    assert rule.skip_reason == "sign-in records are covered by the console login rules' tests"
    athena = rule.target("athena")
    assert athena is not None
    assert athena.skipped == "the rule has no test records"
    assert rule.target("splunk") is not None


def test_broken_elastic_mapping_fails_elastic_only(
    rules_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fields.lookup

    def wrong_event_name(name: str) -> fields.CloudTrailField | fields.JsonPath | None:
        known = original(name)
        if name == "eventName" and isinstance(known, fields.CloudTrailField):
            return dataclasses.replace(known, elastic="event.type")
        return known

    monkeypatch.setattr(fields, "lookup", wrong_event_name)
    report = run_paths([rules_copy])
    rule = report.rule("iam_user_created")
    assert rule is not None
    failed = [target.target for target in rule.targets if not target.ok]
    assert failed == ["elastic", "elastic/lucene", "elastic/esql"]
    lucene = rule.target("elastic/lucene")
    assert lucene is not None
    assert lucene.problems == [
        "field 'event.type' is not a field of the Elastic CloudTrail data stream"
    ]
    elastic = rule.target("elastic")
    assert elastic is not None
    missed = [record.event_id for group in elastic.groups for record in group.failures]
    assert "a3f1c9e2-0001-4d7a-9e51-7c3b2a1d0001" in missed


def test_flipped_expectation_names_record(rules_copy: Path) -> None:
    def flip(data: dict[str, Any]) -> None:
        data["groups"][1]["expect"] = {"default": "no-match", "athena": "match"}

    edit_tests(rules_copy / "iam_user_created.tests.json", flip)
    report = run_paths([rules_copy])
    rule = report.rule("iam_user_created")
    assert rule is not None
    assert rule.problems == []
    assert [target.target for target in rule.targets if not target.ok] == ["athena"]
    athena = rule.target("athena")
    assert athena is not None
    failures = [record.describe() for group in athena.groups for record in group.failures]
    assert failures == [
        "record a3f1c9e2-0003-4d7a-9e51-7c3b2a1d0003 (a user is deleted, not created): "
        "expected match, got no-match",
        "record a3f1c9e2-0004-4d7a-9e51-7c3b2a1d0004 (another service with an API of the "
        "same name): expected match, got no-match",
    ]
    assert report.passed == 2
    assert report.failed == 1


def test_rule_without_tests_fails_gate(write_rule: Callable[..., Path]) -> None:
    path = write_rule()
    report = run_tests(load_collection([path]))
    rule = report.rules[0]
    assert not rule.ok
    assert rule.problems == [
        f"no test file {path.with_name('test_rule.tests.json')}: add records that must match "
        'and must not match, or set tests: {skip: "<reason>"} in the rule'
    ]


def test_gate_needs_both_verdicts(rules_copy: Path) -> None:
    def only_matches(data: dict[str, Any]) -> None:
        data["groups"] = [data["groups"][0]]

    edit_tests(rules_copy / "iam_user_created.tests.json", only_matches)
    report = run_paths([rules_copy / "iam_user_created.yml"])
    rule = report.rules[0]
    assert rule.problems == [
        f"{target}: the test file needs at least one record that must match and one that must "
        "not match (2 must match, 0 must not)"
        for target in ("athena", "elastic", "cloudwatch")
    ]


@pytest.mark.parametrize("setting", ["tests: yes", "tests:\n    skip: ''", "tests:\n    run: all"])
def test_invalid_tests_setting(rules_copy: Path, setting: str) -> None:
    path = rules_copy / "root_console_login.yml"
    text = path.read_text(encoding="utf-8")
    head = text[: text.index("tests:")]
    path.write_text(head + setting + "\n", encoding="utf-8")
    rule = run_paths([path]).rules[0]
    assert not rule.ok
    assert rule.problems[0].startswith(f"line {head.count(chr(10)) + 1}: 'tests' must be a mapping")


def test_malformed_test_file_fails_rule(rules_copy: Path) -> None:
    path = rules_copy / "iam_user_created.tests.json"
    edit_tests(path, lambda data: data["groups"][0].update(expect="always"))
    rule = run_paths([rules_copy / "iam_user_created.yml"]).rules[0]
    assert rule.problems == [
        f"{path}: groups[0].expect: 'always' is not a verdict; use 'match' or 'no-match'"
    ]
    assert [target.skipped for target in rule.targets if target.kind == "records"] == [
        "the rule has no test records"
    ] * 3


def test_orphan_test_file_reported(rules_copy: Path) -> None:
    orphan = rules_copy / "renamed_rule.tests.json"
    shutil.copy(rules_copy / "iam_user_created.tests.json", orphan)
    errors = orphan_test_files([rules_copy])
    assert [error.path for error in errors] == [orphan]
    assert "no rule file renamed_rule.yml beside it" in str(errors[0])
    report = run_paths([rules_copy])
    assert not report.ok
    assert report.failed == 1


def test_shared_event_ids_use_separate_tables(rules_copy: Path) -> None:
    shutil.copy(rules_copy / "iam_user_created.yml", rules_copy / "iam_user_created_copy.yml")
    shutil.copy(
        rules_copy / "iam_user_created.tests.json", rules_copy / "iam_user_created_copy.tests.json"
    )
    report = run_paths([rules_copy])
    assert report.ok
    copy = report.rule("iam_user_created_copy")
    assert copy is not None
    athena = copy.target("athena")
    assert athena is not None
    assert athena.counts() == (5, 5)


def test_custom_athena_table(data_report: TestReport) -> None:
    report = run_paths([DATA], TargetOptions(athena_table="trail_logs"))
    rule = report.rule("iam_user_created")
    assert rule is not None
    athena = rule.target("athena")
    assert athena is not None
    assert "FROM trail_logs" in (athena.query or "")
    assert athena.ok


def test_target_selection() -> None:
    report = run_paths([DATA], targets=["athena", "splunk"])
    rule = report.rule("iam_user_created")
    assert rule is not None
    assert [target.target for target in rule.targets] == ["athena", "splunk"]


def test_unknown_target_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown target 'kibana'"):
        run_paths([DATA], targets=["kibana"])


def test_untestable_profile_rejected() -> None:
    with pytest.raises(ConfigError, match="'security-lake' cannot be tested locally"):
        run_paths([DATA], TargetOptions(athena_profile="security-lake"))
