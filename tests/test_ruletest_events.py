"""Test file layout: loading, and the validator's message for each kind of mistake."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from siemgen.ruletest import TestFileError, load_tests, parse_tests, rule_tests_path

DATA = Path(__file__).resolve().parent / "data" / "ruletest" / "rules"

VALID: dict[str, Any] = {
    "groups": [
        {
            "name": "hit",
            "expect": "match",
            "reason": "the call the rule names",
            "events": [
                {"reason": "first", "record": {"eventID": "e-1", "eventName": "CreateUser"}},
                {"reason": "second", "record": {"eventID": "e-2", "eventName": "CreateUser"}},
            ],
        },
        {
            "name": "casing",
            "expect": {"default": "match", "athena": "no-match"},
            "reason": "exact-case engines differ",
            "events": [
                {"reason": "lower", "record": {"eventID": "e-3", "eventName": "createuser"}}
            ],
        },
    ]
}


def problems_of(data: Any) -> list[str]:
    with pytest.raises(TestFileError) as caught:
        parse_tests(data, Path("rule.tests.json"))
    return caught.value.problems


def changed(edit: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    edit(data)
    return data


def test_rule_tests_path_sits_beside_rule() -> None:
    path = rule_tests_path(Path("sigma/aws/cloudtrail/aws_iam_policy_changed.yml"))
    assert path == Path("sigma/aws/cloudtrail/aws_iam_policy_changed.tests.json")


def test_valid_file_parses() -> None:
    tests = parse_tests(VALID, Path("rule.tests.json"))
    assert [group.name for group in tests.groups] == ["hit", "casing"]
    assert [event.event_id for _, event in tests.events()] == ["e-1", "e-2", "e-3"]


def test_single_verdict_covers_every_target() -> None:
    group = parse_tests(VALID, Path("rule.tests.json")).groups[0]
    for target in ("athena", "elastic", "splunk", "cloudwatch"):
        assert group.expects_match(target)


def test_verdict_mapping_uses_default() -> None:
    group = parse_tests(VALID, Path("rule.tests.json")).groups[1]
    assert not group.expects_match("athena")
    assert group.expects_match("elastic")
    assert group.expects_match("cloudwatch")


def test_loads_project_test_data() -> None:
    tests = load_tests(DATA / "iam_user_created.tests.json")
    assert len(tests.records()) == 5


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.update(extra=1), "$: unknown key 'extra'; allowed keys: groups"),
        (lambda d: d.pop("groups"), "$: missing key 'groups'"),
        (lambda d: d.update(groups=[]), "groups: must be a non-empty list of groups"),
        (lambda d: d["groups"][0].pop("reason"), "groups[0]: missing key 'reason'"),
        (
            lambda d: d["groups"][0].update(notes="x"),
            "groups[0]: unknown key 'notes'; allowed keys: name, reason, expect, events",
        ),
        (
            lambda d: d["groups"][0].update(name="has space"),
            "groups[0].name: 'has space' must be letters, digits and '-'",
        ),
        (
            lambda d: d["groups"][1].update(name="hit"),
            "groups[1].name: group name 'hit' is used twice",
        ),
        (
            lambda d: d["groups"][0].update(reason="  "),
            "groups[0].reason: must be a non-empty string, not '  '",
        ),
        (
            lambda d: d["groups"][0].update(expect="matches"),
            "groups[0].expect: 'matches' is not a verdict; use 'match' or 'no-match'",
        ),
        (
            lambda d: d["groups"][1].update(expect={"athena": "no-match"}),
            "groups[1].expect: no verdict for elastic, splunk, cloudwatch; add 'default' or "
            "name them",
        ),
        (
            lambda d: d["groups"][1].update(expect={"default": "match", "kibana": "match"}),
            "groups[1].expect: unknown target 'kibana'; known keys: athena, elastic, splunk, "
            "cloudwatch, default",
        ),
        (
            lambda d: d["groups"][1].update(expect={"default": "yes"}),
            "groups[1].expect.default: 'yes' is not a verdict; use 'match' or 'no-match'",
        ),
        (
            lambda d: d["groups"][0].update(events={}),
            "groups[0].events: must be a list of events",
        ),
        (
            lambda d: d["groups"][0]["events"][0].pop("record"),
            "groups[0].events[0]: missing key 'record'",
        ),
        (
            lambda d: d["groups"][0]["events"][0].update(record=[1]),
            "groups[0].events[0].record: must be one CloudTrail record (a JSON object)",
        ),
        (
            lambda d: d["groups"][0]["events"][0]["record"].pop("eventID"),
            "groups[0].events[0].record.eventID: must be a non-empty string, not None",
        ),
        (
            lambda d: d["groups"][1]["events"][0]["record"].update(eventID="e-1"),
            "groups[1].events[0].record.eventID: 'e-1' is already used at "
            "groups[0].events[0].record.eventID",
        ),
    ],
)
def test_layout_problem_message(edit: Any, expected: str) -> None:
    assert expected in problems_of(changed(edit))


def test_every_problem_is_reported() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["groups"][0].update(expect="yes")
        data["groups"][1]["events"][0]["record"].pop("eventID")

    problems = problems_of(changed(edit))
    assert len(problems) == 2


def test_error_names_file_and_count(tmp_path: Path) -> None:
    data = changed(lambda d: d.update(extra=1, other=2))
    path = tmp_path / "rule.tests.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(TestFileError) as caught:
        load_tests(path)
    message = str(caught.value)
    assert str(path) in message
    assert "(and 1 more)" in message
    assert "docs/rule-format.md" in message


def test_top_level_must_be_object() -> None:
    assert problems_of([1]) == ["$: the file must hold a JSON object, not list"]


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "rule.tests.json"
    path.write_text('{\n  "groups": [\n    {"name": "a",}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(TestFileError) as caught:
        load_tests(path)
    assert caught.value.problems[0].startswith("invalid JSON at line 3")


def test_duplicate_json_key_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rule.tests.json"
    path.write_text('{"groups": [], "groups": []}', encoding="utf-8")
    with pytest.raises(TestFileError) as caught:
        load_tests(path)
    assert caught.value.problems == ["invalid JSON: duplicate key 'groups'"]


def test_non_utf8_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rule.tests.json"
    path.write_bytes(b'{"groups": "\xff"}')
    with pytest.raises(TestFileError) as caught:
        load_tests(path)
    assert caught.value.problems == ["file is not valid UTF-8 (at byte offset 12, counting from 0)"]


def test_deeply_nested_json_is_rejected(tmp_path: Path) -> None:
    from siemgen.ruletest.events import MAX_JSON_DEPTH, _read_json

    path = tmp_path / "deep.tests.json"
    path.write_text("[" * 2000 + "]" * 2000, encoding="utf-8")
    with pytest.raises(TestFileError, match="nested too deeply|levels deep"):
        _read_json(path)
    path.write_text("[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5), encoding="utf-8")
    with pytest.raises(TestFileError, match="levels deep"):
        _read_json(path)
