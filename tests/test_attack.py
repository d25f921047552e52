"""Tests for the pinned ATT&CK table and the offline pySigma data hook."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.rule import SigmaRule, SigmaRuleTag

from siemgen.attack import AttackData, Technique, install_offline_data, load_attack
from siemgen.errors import SiemgenError

from paths import CORPUS


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make every socket connection and DNS lookup fail the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def test_load_attack_is_cached() -> None:
    assert load_attack() is load_attack()


def test_pinned_version_and_counts() -> None:
    data = load_attack()
    assert data.version == "19"
    assert len(data.tactics) == 15
    parents = [t for t in data.techniques.values() if t.parent is None]
    subtechniques = [t for t in data.techniques.values() if t.parent is not None]
    assert len(parents) == 222
    assert len(subtechniques) == 475


def test_tactic_by_shortname_and_id() -> None:
    data = load_attack()
    by_name = data.tactic("persistence")
    assert by_name.id == "TA0003"
    assert by_name.name == "Persistence"
    assert by_name.url == "https://attack.mitre.org/tactics/TA0003"
    assert data.tactic("TA0003") == by_name
    assert data.tactic("ta0004").shortname == "privilege-escalation"
    assert data.tactic("privilege-escalation").id == "TA0004"


def test_version_19_tactics() -> None:
    data = load_attack()
    assert data.tactic("stealth").id == "TA0005"
    assert data.tactic("defense-impairment").id == "TA0112"
    with pytest.raises(SiemgenError) as raised:
        data.tactic("defense-evasion")
    assert "'defense-evasion'" in str(raised.value)
    assert "attack.stealth or attack.defense-impairment" in str(raised.value)


def test_technique_lookup_case_insensitive() -> None:
    technique = load_attack().technique("t1098.003")
    assert technique == Technique(
        id="T1098.003",
        name="Additional Cloud Roles",
        url="https://attack.mitre.org/techniques/T1098/003",
        tactics=("persistence", "privilege-escalation"),
        parent="T1098",
    )
    assert technique.is_subtechnique
    assert load_attack().technique("T1098").parent is None


def test_every_technique_parent_exists() -> None:
    data = load_attack()
    for technique in data.techniques.values():
        if technique.parent is not None:
            assert technique.parent in data.techniques, technique.id
        for shortname in technique.tactics:
            assert shortname in data.tactics, (technique.id, shortname)


def test_resolve_tags_splits_kinds() -> None:
    tags = [
        "attack.privilege-escalation",
        "attack.t1098",
        "attack.t1098.003",
        "attack.g0016",
        "attack.s0002",
        "cve.2021-44228",
        "tlp.clear",
    ]
    resolved = load_attack().resolve_tags(tags)
    assert [t.shortname for t in resolved.tactics] == ["privilege-escalation"]
    assert [t.id for t in resolved.techniques] == ["T1098", "T1098.003"]
    assert [(o.id, o.kind) for o in resolved.others] == [("G0016", "group"), ("S0002", "software")]


def test_resolve_tags_accepts_sigma_tag_objects() -> None:
    tags = [SigmaRuleTag.from_str("attack.persistence"), SigmaRuleTag.from_str("attack.t1136.003")]
    resolved = load_attack().resolve_tags(tags)
    assert resolved.tactics[0].id == "TA0003"
    assert resolved.techniques[0].name == "Cloud Account"


@pytest.mark.parametrize(
    ("tag", "hint"),
    [
        ("attack.t9999", "siemgen pins ATT&CK 19"),
        ("attack.t1562.008", "was in ATT&CK 18.1"),
        ("attack.privilege_escalation", "attack.privilege-escalation"),
        ("attack.persistance", "did you mean attack.persistence?"),
        ("attack.defense-evasion", "attack.stealth"),
        ("attack.ta0003", "tactic"),
        ("attack.g9999", "attack.mitre.org"),
    ],
)
def test_resolve_tags_unknown_tag(tag: str, hint: str) -> None:
    path = Path("sigma/aws/example.yml")
    with pytest.raises(SiemgenError) as raised:
        load_attack().resolve_tags(["attack.persistence", tag], path=path, rule="r-1")
    error = raised.value
    assert repr(tag) in error.message
    assert error.path == path
    assert error.rule == "r-1"
    assert error.hint is not None
    assert hint in error.hint


def test_attack_data_from_minimal_table() -> None:
    table = {
        "attack_version": "1.0",
        "tactics": [{"id": "TA0001", "shortname": "a", "name": "A", "url": "u"}],
        "techniques": [{"id": "T0001.001", "name": "B", "tactics": ["a"], "url": "v"}],
    }
    data = AttackData(table)
    assert data.technique("t0001.001").parent == "T0001"
    assert data.objects == {}
    assert data.retired_techniques == {}


def test_corpus_tags_resolve() -> None:
    if not CORPUS.is_dir():
        pytest.skip("community rule corpus not present")
    data = load_attack()
    checked = 0
    for path in sorted(CORPUS.glob("*.yml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.resolve_tags(rule.get("tags", []), path=path)
        checked += 1
    assert checked >= 40


def test_install_offline_data_feeds_pysigma(no_network: None) -> None:
    install_offline_data()
    from sigma.data import mitre_attack, mitre_d3fend
    from sigma.validators.core.tags import ATTACKTagValidator
    from sigma.validators.sigmahq.tags import SigmahqTagsTechniquesWithoutTacticsValidator

    assert mitre_attack.mitre_attack_version == "19"
    assert mitre_attack.mitre_attack_tactics["TA0112"] == "defense-impairment"
    assert "detect" in {name.lower() for name in mitre_d3fend.mitre_d3fend_tactics}

    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "detection": {"sel": {"eventName": "x"}, "condition": "sel"},
            "tags": ["attack.defense-evasion", "attack.t1098.003", "attack.t1562.008"],
        }
    )
    invalid = {str(issue.tag) for issue in ATTACKTagValidator().validate(rule)}  # type: ignore[attr-defined]
    assert invalid == {"attack.defense-evasion", "attack.t1562.008"}
    missing = SigmahqTagsTechniquesWithoutTacticsValidator().validate(rule)
    assert {issue.missing_tactic for issue in missing} == {  # type: ignore[attr-defined]
        "attack.persistence",
        "attack.privilege-escalation",
    }


def test_install_offline_data_blocks_other_lookups() -> None:
    install_offline_data()
    from sigma.data import mitre_attack

    with pytest.raises(AttributeError, match="offline"):
        _ = mitre_attack.mitre_attack_campaigns
