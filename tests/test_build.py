"""The build: output paths, determinism, per-target failures and the summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from siemgen.build import build

from paths import CANONICAL
from paths import CANONICAL_OUTPUTS as OUTPUTS


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_canonical_rule_writes_every_output(tmp_path: Path) -> None:
    result = build([CANONICAL], tmp_path / "dist", packages=False)
    assert result.ok, [str(error) for error in result.errors]
    for relative in OUTPUTS:
        content = (tmp_path / "dist" / relative).read_bytes()
        assert content.endswith(b"\n")
        assert not content.endswith(b"\n\n"), relative


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    build([CANONICAL], tmp_path / "a")
    build([CANONICAL], tmp_path / "b")
    first = read_tree(tmp_path / "a")
    second = read_tree(tmp_path / "b")
    assert sorted(first) == sorted(second)
    for name, content in first.items():
        assert content == second[name], name


def test_unknown_field_fails_its_targets_only(
    tmp_path: Path, write_rule: Callable[..., Path]
) -> None:
    good = write_rule("good")
    write_rule(
        "typo",
        detection="selection:\n    eventNmae: CreateUser\ncondition: selection",
        rule_id="4c0e6d55-1d7e-4d8c-a0b1-9f3b8a3c2d11",
        title="Typo rule",
    )
    result = build([good.parent], tmp_path / "dist", packages=False)
    assert not result.ok
    messages = [str(error) for error in result.errors]
    for target in ("splunk", "elastic/lucene", "elastic/esql", "elastic/eql", "athena"):
        assert any(f"[{target}]" in m and "'eventNmae'" in m for m in messages), target
    assert all("typo.yml" in message for message in messages)
    assert (tmp_path / "dist" / "splunk" / "good.spl").exists()
    assert not (tmp_path / "dist" / "splunk" / "typo.spl").exists()
    assert (tmp_path / "dist" / "docs" / "typo.md").exists()
    assert result.counts["splunk"].built == 1
    assert result.counts["splunk"].failed == 1
    assert "splunk 1 built, 1 failed" in result.summary()


def test_unsupported_logsource_is_reported(tmp_path: Path) -> None:
    rule = tmp_path / "rules" / "win.yml"
    rule.parent.mkdir()
    rule.write_text(
        CANONICAL.read_text(encoding="utf-8").replace(
            "    product: aws\n    service: cloudtrail",
            "    product: windows\n    service: security",
        ),
        encoding="utf-8",
    )
    result = build([rule], tmp_path / "dist", packages=False)
    assert any("log source" in str(error) and "windows" in str(error) for error in result.errors)


def test_rebuild_removes_outputs_of_deleted_rules(
    tmp_path: Path, write_rule: Callable[..., Path]
) -> None:
    first = write_rule("first")
    second = write_rule("second", rule_id="5d9a3c1e-7b2f-4e6a-9c8d-1a2b3c4d5e6f", title="Second")
    out = tmp_path / "dist"
    build([first.parent], out, packages=False)
    assert (out / "splunk" / "second.spl").exists()
    second.unlink()
    result = build([first.parent], out, packages=False)
    assert not (out / "splunk" / "second.spl").exists()
    assert result.report is not None
    assert "splunk/second.spl" in result.report.removed


def test_bad_tag_leaves_other_rules_packaged(
    tmp_path: Path, write_rule: Callable[..., Path]
) -> None:
    good = write_rule("good")
    bad = write_rule("badtag", rule_id="6e1d2c3b-4a59-4867-9f8e-7d6c5b4a3f21", title="Bad tag")
    bad.write_text(
        bad.read_text(encoding="utf-8").replace("attack.t1136.003", "attack.t1999"),
        encoding="utf-8",
    )
    result = build([good.parent], tmp_path / "dist")
    messages = [str(error) for error in result.errors]
    assert len(messages) == 1
    assert "badtag.yml" in messages[0]
    assert "t1999" in messages[0]
    ndjson = (tmp_path / "dist" / "elastic" / "rules.ndjson").read_text(encoding="utf-8")
    assert "Test rule good" in ndjson
    assert "Bad tag" not in ndjson


def test_duplicate_id_is_reported_and_left_out(
    tmp_path: Path, write_rule: Callable[..., Path]
) -> None:
    first = write_rule("one", title="One")
    write_rule("two", title="Two")
    result = build([first.parent], tmp_path / "dist")
    messages = [str(error) for error in result.errors]
    assert len(messages) == 1
    assert "two.yml:2:" in messages[0]
    assert "already used by" in messages[0]
    lines = (tmp_path / "dist" / "elastic" / "rules.ndjson").read_text(encoding="utf-8")
    assert "One" in lines
    assert "Two" not in lines


def test_package_failure_drops_only_the_failing_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    text = CANONICAL.read_text(encoding="utf-8")
    (rules / "a.yml").write_text(text, encoding="utf-8")
    (rules / "b.yml").write_text(
        text.replace("title: AWS IAM Policy Changed", "title: Copy").replace(
            "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
        ),
        encoding="utf-8",
    )
    result = build([rules], tmp_path / "dist")
    alarms = (tmp_path / "dist" / "aws" / "cis-alarms.yaml").read_text(encoding="utf-8")
    assert any("b.yml" in str(error) for error in result.errors)
    assert alarms.count("IAMPolicyEventCount") >= 1


def test_output_inside_rules_folder_is_not_read(
    tmp_path: Path, write_rule: Callable[..., Path]
) -> None:
    rule = write_rule("inside")
    out = rule.parent / "dist"
    assert build([rule.parent], out).ok
    second = build([rule.parent], out)
    assert second.ok, [str(error) for error in second.errors]
    assert len(second.collection.rules) == 1


def test_removed_outputs_leave_no_empty_folders(
    tmp_path: Path, write_rule: Callable[..., Path]
) -> None:
    rule = write_rule("lonely")
    out = tmp_path / "dist"
    build([rule.parent], out)
    assert (out / "splunk" / "app").is_dir()
    rule.unlink()
    build([rule.parent], out)
    assert not (out / "splunk").exists()
    assert not (out / "athena").exists()
