"""Rule loading: line numbers, sanitized stems and clear errors for broken files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from siemgen.errors import ConfigError, RuleLoadError
from siemgen.rules import load_collection, load_rule, safe_stem

from paths import CANONICAL


def test_canonical_rule_loads_with_lines() -> None:
    rule = load_rule(CANONICAL)
    assert rule.title == "AWS IAM Policy Changed"
    assert rule.stem == "aws_iam_policy_changed"
    assert rule.line_of("detection", "selection", "eventName") == 41
    assert rule.custom("compliance")[0]["control"] == "3.4"


def test_line_of_falls_back_to_parent_key() -> None:
    rule = load_rule(CANONICAL)
    assert rule.line_of("detection", "missing") == rule.line_of("detection")


def test_safe_stem_strips_path_characters() -> None:
    assert safe_stem(Path("a b$(x).yml")) == "a_b_x"
    assert safe_stem(Path("...yml")) == "rule"


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("title: x\ndetection:\n  sel: [a\n", encoding="utf-8")
    with pytest.raises(RuleLoadError) as caught:
        load_rule(path)
    assert caught.value.path == path
    assert caught.value.line is not None
    assert "invalid YAML" in str(caught.value)


def test_duplicate_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dup.yml"
    path.write_text("title: a\ntitle: b\n", encoding="utf-8")
    with pytest.raises(RuleLoadError, match="duplicate key 'title'") as caught:
        load_rule(path)
    assert caught.value.line == 2


def test_alias_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "alias.yml"
    path.write_text("a: &x [1, 2]\nb: *x\n", encoding="utf-8")
    with pytest.raises(RuleLoadError, match="aliases are not allowed"):
        load_rule(path)


def test_non_utf8_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin.yml"
    path.write_bytes(b"title: caf\xe9\n")
    with pytest.raises(RuleLoadError, match="not valid UTF-8") as caught:
        load_rule(path)
    assert caught.value.line == 1


def test_invalid_sigma_rule_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nodetection.yml"
    path.write_text("title: x\nlogsource:\n    product: aws\n", encoding="utf-8")
    with pytest.raises(RuleLoadError, match="invalid Sigma rule"):
        load_rule(path)


def test_collection_keeps_good_rules(write_rule: Callable[..., Path]) -> None:
    good = write_rule("good")
    (good.parent / "broken.yml").write_text("title: [\n", encoding="utf-8")
    collection = load_collection([good.parent])
    assert [rule.stem for rule in collection.rules] == ["good"]
    assert len(collection.errors) == 1
    assert collection.errors[0].path == good.parent / "broken.yml"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rule path not found"):
        load_collection([tmp_path / "nowhere"])


def test_folder_rule_suffix_ignores_case(tmp_path: Path) -> None:
    text = CANONICAL.read_text(encoding="utf-8")
    (tmp_path / "upper.YML").write_text(text, encoding="utf-8")
    (tmp_path / "mixed.Yaml").write_text(text.replace("7b6a2a8d", "7b6a2a8e"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a rule", encoding="utf-8")
    collection = load_collection([tmp_path])
    assert collection.errors == []
    assert sorted(rule.path.name for rule in collection.rules) == ["mixed.Yaml", "upper.YML"]
