"""Kibana detection rules: the import schema, stable ids, severities and the ATT&CK mapping."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from siemgen.attack import load_attack
from siemgen.build import generate
from siemgen.packages.common import RULE_ID_NAMESPACE
from siemgen.packages.kibana import OUTPUT, build_kibana_rules
from siemgen.rules import load_collection

from paths import CANONICAL, RULES

TEST_RULES = Path(__file__).resolve().parent / "data" / "packages" / "rules"

# The rule fields siemgen writes, with the types of Kibana's detection rule schema. The source
# is the OpenAPI files rule_schemas.schema.yaml and common_attributes.schema.yaml in
# elastic/kibana, folder x-pack/solutions/security/plugins/security_solution/common/api/
# detection_engine/model/rule_schema. The import route's rule_to_import.ts makes rule_id
# required for an import, and version required for a new rule.
_STRINGS = {"type": "array", "items": {"type": "string"}}
_REFERENCE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "reference": {"type": "string"},
    },
    "required": ["id", "name", "reference"],
    "additionalProperties": False,
}
_TECHNIQUE = {
    "type": "object",
    "properties": {
        **_REFERENCE["properties"],  # type: ignore[dict-item]
        "subtechnique": {"type": "array", "items": _REFERENCE},
    },
    "required": ["id", "name", "reference"],
    "additionalProperties": False,
}
_THREAT = {
    "type": "object",
    "properties": {
        "framework": {"type": "string"},
        "tactic": _REFERENCE,
        "technique": {"type": "array", "items": _TECHNIQUE},
    },
    "required": ["framework", "tactic"],
    "additionalProperties": False,
}
_COMMON = {
    "rule_id": {"type": "string", "minLength": 1},
    "name": {"type": "string", "minLength": 1},
    "description": {"type": "string", "minLength": 1},
    "risk_score": {"type": "integer", "minimum": 0, "maximum": 100},
    "severity": {"enum": ["low", "medium", "high", "critical"]},
    "type": {"enum": ["query", "eql", "esql"]},
    "language": {"enum": ["kuery", "lucene", "eql", "esql"]},
    "query": {"type": "string", "minLength": 1},
    "index": _STRINGS,
    "interval": {"type": "string"},
    "from": {"type": "string"},
    "to": {"type": "string"},
    "enabled": {"type": "boolean"},
    "max_signals": {"type": "integer", "minimum": 1},
    "timestamp_override": {"type": "string"},
    "references": _STRINGS,
    "false_positives": _STRINGS,
    "tags": _STRINGS,
    "author": _STRINGS,
    "license": {"type": "string"},
    "version": {"type": "integer", "minimum": 1},
    "note": {"type": "string"},
    "threat": {"type": "array", "items": _THREAT},
}
_REQUIRED = ["rule_id", "name", "description", "risk_score", "severity", "type", "version"]
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _COMMON,
    "required": _REQUIRED,
    "additionalProperties": False,
    "oneOf": [
        {
            "properties": {"type": {"const": "query"}, "language": {"enum": ["kuery", "lucene"]}},
            "required": ["type"],
        },
        {
            "properties": {"type": {"const": "eql"}, "language": {"const": "eql"}},
            "required": ["type", "query", "language"],
        },
        {
            # ES|QL rules name their indices in the query, and the schema has no index for them.
            "properties": {"type": {"const": "esql"}, "language": {"const": "esql"}},
            "required": ["type", "query", "language"],
            "not": {"required": ["index"]},
        },
    ],
}


def kibana_objects(paths: list[Path]) -> list[dict[str, Any]]:
    result = generate(load_collection(paths), artifacts=[build_kibana_rules])
    assert result.ok, [str(error) for error in result.errors]
    data = result.files[OUTPUT].decode()
    assert data.endswith("\n")
    assert not data.endswith("\n\n")
    return [json.loads(line) for line in data.splitlines()]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return kibana_objects([RULES, TEST_RULES])


def by_name(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [body for body in objects if body["name"] == name]
    assert len(found) == 1, name
    return found[0]


def test_schema_rejects_a_broken_rule() -> None:
    broken = {"rule_id": "x", "name": "", "type": "esql", "index": ["logs-*"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, RULE_SCHEMA)


def test_every_rule_matches_the_schema(objects: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(RULE_SCHEMA)
    for body in objects:
        errors = [error.message for error in validator.iter_errors(body)]
        assert errors == [], body["name"]


def test_three_languages_per_rule(objects: list[dict[str, Any]]) -> None:
    iam = [body for body in objects if body["name"].startswith("AWS IAM Policy Changed (")]
    kinds = sorted((body["type"], body["language"]) for body in iam)
    assert kinds == [("eql", "eql"), ("esql", "esql"), ("query", "lucene")]
    for body in iam:
        if body["type"] == "esql":
            assert "index" not in body
            assert body["query"].startswith("from logs-aws.cloudtrail-* metadata _id")
        else:
            assert body["index"] == ["logs-aws.cloudtrail-*"]


def test_rule_ids_are_stable_and_unique(objects: list[dict[str, Any]]) -> None:
    ids = [body["rule_id"] for body in objects]
    assert len(ids) == len(set(ids))
    lucene = by_name(objects, "AWS IAM Policy Changed (Lucene)")
    expected = uuid.uuid5(RULE_ID_NAMESPACE, "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60:lucene")
    assert lucene["rule_id"] == str(expected)
    again = kibana_objects([CANONICAL])
    assert sorted(body["rule_id"] for body in again) == sorted(
        body["rule_id"] for body in objects if body["name"].startswith("AWS IAM Policy Changed")
    )


def test_schedule_overlaps_interval(objects: list[dict[str, Any]]) -> None:
    for body in objects:
        assert body["interval"] == "5m"
        assert body["from"] == "now-6m"


@pytest.mark.parametrize(
    ("name", "severity", "risk_score"),
    [
        ("AWS IAM Policy Changed (EQL)", "medium", 47),
        ("Access key created for another user (EQL)", "low", 21),
        ("Injected title [injected stanza] search = | delete (EQL)", "high", 73),
    ],
)
def test_severity_and_risk_follow_level(
    objects: list[dict[str, Any]], name: str, severity: str, risk_score: int
) -> None:
    body = by_name(objects, name)
    assert body["severity"] == severity
    assert body["risk_score"] == risk_score


def test_rule_text_is_carried_over(objects: list[dict[str, Any]]) -> None:
    body = by_name(objects, "AWS IAM Policy Changed (Lucene)")
    assert body["author"] == ["siemgen"]
    assert body["references"][0].endswith("API_DeleteGroupPolicy.html")
    assert len(body["false_positives"]) == 2
    assert "Compliance: CIS AWS Foundations v1.2.0 3.4" in body["tags"]
    assert "Language: Lucene" in body["tags"]
    assert "1. Identify who made the change" in body["note"]
    assert body["version"] == 1


def test_threat_matches_shipped_attack_data(objects: list[dict[str, Any]]) -> None:
    attack = load_attack()
    body = by_name(objects, "AWS IAM Policy Changed (EQL)")
    assert [entry["tactic"]["id"] for entry in body["threat"]] == ["TA0004", "TA0003", "TA0112"]
    for entry in body["threat"]:
        assert entry["framework"] == "MITRE ATT&CK"
        tactic = attack.tactic(entry["tactic"]["id"])
        assert entry["tactic"] == {"id": tactic.id, "name": tactic.name, "reference": tactic.url}
        for technique in entry.get("technique", []):
            known = attack.technique(technique["id"])
            assert technique["name"] == known.name
            assert technique["reference"] == known.url
            assert tactic.shortname in known.tactics
            for sub in technique.get("subtechnique", []):
                assert attack.technique(sub["id"]).name == sub["name"]
                assert attack.technique(sub["id"]).parent == technique["id"]
    persistence = body["threat"][1]["technique"]
    assert persistence == [
        {
            "id": "T1098",
            "name": "Account Manipulation",
            "reference": attack.technique("T1098").url,
            "subtechnique": [
                {
                    "id": "T1098.003",
                    "name": "Additional Cloud Roles",
                    "reference": attack.technique("T1098.003").url,
                }
            ],
        }
    ]


def test_untagged_tactics_come_from_attack_data(objects: list[dict[str, Any]]) -> None:
    body = by_name(objects, "Access key created for another user (Lucene)")
    tactics = [entry["tactic"]["name"] for entry in body["threat"]]
    assert tactics == ["Persistence", "Privilege Escalation"]
    for entry in body["threat"]:
        assert [technique["id"] for technique in entry["technique"]] == ["T1098"]
        assert entry["technique"][0]["subtechnique"][0]["id"] == "T1098.001"


def test_unknown_tag_is_an_error(tmp_path: Path) -> None:
    text = CANONICAL.read_text(encoding="utf-8").replace(
        "- attack.t1484\n", "- attack.t1484\n    - attack.t9999\n"
    )
    (tmp_path / "unknown_tag.yml").write_text(text, encoding="utf-8")
    result = generate(load_collection([tmp_path]), artifacts=[build_kibana_rules])
    # The rule's page fails on the tag; the build reports it once and keeps the rule out of
    # the packages, so no Kibana rule carries a partial threat mapping.
    messages = [str(error) for error in result.errors]
    assert len(messages) == 1
    assert "'attack.t9999'" in messages[0]
    assert "unknown_tag.yml" in messages[0]
    assert b"AWS IAM Policy Changed" not in result.files.get(OUTPUT, b"")


def test_threat_built_with_network_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    def blocked(*args: object, **kwargs: object) -> None:
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    load_attack.cache_clear()
    try:
        objects = kibana_objects([CANONICAL])
    finally:
        load_attack.cache_clear()
    assert len(objects) == 3
    for body in objects:
        assert [entry["tactic"]["id"] for entry in body["threat"]] == [
            "TA0004",
            "TA0003",
            "TA0112",
        ]
