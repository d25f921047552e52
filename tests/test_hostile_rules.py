"""Hostile rule files built with `siemgen build` beside a good rule.

Each file must give a correct output or one clear error naming the file (and the line where
it is known), the good rule must still build, no temporary file may be left and nothing may
be written outside --out. Text from a rule must appear in pages literally.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siemgen.cli import app
from siemgen.rules import MAX_CONDITION_DEPTH, MAX_RULE_BYTES, condition_depth, safe_stem

RULE_TEMPLATE = """\
title: {title}
id: {rule_id}
status: test
description: {description}
author: siemgen tests
date: 2026-01-01
tags:
    - attack.persistence
logsource:
    product: aws
    service: cloudtrail
detection:
{detection}
falsepositives:
    - {falsepositive}
level: high
"""

DEFAULT_DETECTION = "    selection:\n        eventName: CreateAccessKey\n    condition: selection"


def hostile_rule(
    title: str = "Hostile rule",
    description: str = "A rule written by a test.",
    detection: str = DEFAULT_DETECTION,
    falsepositive: str = "Tests",
    extra: str = "",
) -> str:
    """Return the text of a rule with the given fields, written as YAML by the caller."""
    # Each distinct rule gets its own id, because a build rejects a reused id.
    rule_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{title}\n{description}\n{detection}")
    text = RULE_TEMPLATE.format(
        title=title,
        rule_id=rule_id,
        description=description,
        detection=detection,
        falsepositive=falsepositive,
    )
    return text + extra


def files_under(root: Path, skip: Path) -> dict[Path, bytes]:
    """Map every file under ``root`` except those under ``skip`` to its content."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents:
            found[path] = path.read_bytes()
    return found


class Build:
    """One `siemgen build` of tmp_path/rules into tmp_path/out, and checks on its result."""

    def __init__(self, tmp_path: Path, write_rule: Callable[..., Path]) -> None:
        self.root = tmp_path
        self.rules = tmp_path / "rules"
        self.out = tmp_path / "out"
        write_rule(name="good_rule")
        self.exit_code = -1
        self.output = ""

    def add(self, name: str, content: str | bytes) -> Path:
        path = self.rules / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def run(self, *options: str) -> None:
        before = files_under(self.root, skip=self.out)
        result = CliRunner().invoke(
            app, ["build", "--rules", str(self.rules), "--out", str(self.out), *options]
        )
        self.exit_code = result.exit_code
        self.output = result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"build raised {result.exception!r}: {self.output}"
        )
        assert files_under(self.root, skip=self.out) == before, "a file outside --out changed"
        temporary = [path for path in self.out.rglob("*") if path.name.endswith(".tmp")]
        assert temporary == [], f"temporary files left behind: {temporary}"

    def assert_good_rule_built(self) -> None:
        for relative in (
            "splunk/good_rule.spl",
            "elastic/good_rule.lucene",
            "elastic/good_rule.esql",
            "elastic/good_rule.eql",
            "athena/good_rule.sql",
            "docs/good_rule.md",
        ):
            assert (self.out / relative).is_file(), f"{relative} was not built"

    def error_lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("error: ")]

    def page(self, stem: str) -> str:
        return (self.out / "docs" / f"{stem}.md").read_text(encoding="utf-8")


@pytest.fixture
def build(tmp_path: Path, write_rule: Callable[..., Path]) -> Build:
    return Build(tmp_path, write_rule)


def test_malformed_yaml_named_with_line(build: Build) -> None:
    path = build.add("broken.yml", "title: Broken\ndetection:\n  selection: [unclosed\n")
    build.run("--no-packages")
    assert build.exit_code == 1
    assert len(build.error_lines()) == 1
    assert re.search(rf"error: {re.escape(str(path))}:\d+: invalid YAML", build.output)
    build.assert_good_rule_built()
    assert not (build.out / "docs" / "broken.md").exists()


def test_duplicate_key_named_with_line(build: Build) -> None:
    text = hostile_rule().replace("level: high\n", "level: high\nlevel: low\n")
    path = build.add("duplicate.yml", text)
    line = text.splitlines().index("level: low") + 1
    build.run("--no-packages")
    assert build.exit_code == 1
    assert f"error: {path}:{line}: duplicate key 'level'" in build.output
    build.assert_good_rule_built()


def test_alias_bomb_rejected_quickly(build: Build) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    text = hostile_rule(extra="\n".join(lines) + "\n")
    path = build.add("bomb.yml", text)
    started = time.monotonic()
    build.run("--no-packages")
    assert time.monotonic() - started < 30
    assert build.exit_code == 1
    assert f"error: {path}:" in build.output
    assert "YAML anchors and aliases are not allowed" in build.output
    build.assert_good_rule_built()


def test_fifty_megabyte_file_rejected(build: Build) -> None:
    path = build.rules / "huge.yml"
    with path.open("wb") as stream:
        stream.write(hostile_rule().encode())
        chunk = b"# padding " + b"x" * 1013 + b"\n"
        for _ in range(50 * 1024):
            stream.write(chunk)
    assert path.stat().st_size > 50 * 1024 * 1024
    build.run("--no-packages")
    assert build.exit_code == 1
    assert f"error: {path}: file is {path.stat().st_size} bytes" in build.output
    assert f"more than the limit of {MAX_RULE_BYTES}" in build.output
    build.assert_good_rule_built()


def test_non_utf8_bytes_named_with_line(build: Build) -> None:
    text = hostile_rule(description="caf\xe9 au lait")
    path = build.add("latin1.yml", text.encode("latin-1"))
    line = text.splitlines().index("description: caf\xe9 au lait") + 1
    build.run("--no-packages")
    assert build.exit_code == 1
    assert f"error: {path}:{line}: file is not valid UTF-8" in build.output
    build.assert_good_rule_built()


def test_deep_yaml_nesting_rejected(build: Build) -> None:
    path = build.add("nested.yml", "[" * 100_000 + "\n")
    build.run("--no-packages")
    assert build.exit_code == 1
    assert f"error: {path}:1: invalid YAML" in build.output
    build.assert_good_rule_built()


def test_path_title_stays_in_pages(build: Build) -> None:
    build.add("traversal.yml", hostile_rule(title='"../../x"'))
    encoded = build.add("..%2F..%2Fy.yml", hostile_rule(title="/etc/passwd"))
    build.run()
    assert build.exit_code == 0, build.output
    build.assert_good_rule_built()
    assert "../../x" in build.page("traversal")
    assert "/etc/passwd" in build.page(safe_stem(encoded))
    out = build.out.resolve()
    for path in build.out.rglob("*"):
        assert out in path.resolve().parents
        assert ".." not in path.relative_to(build.out).parts


def test_stem_with_unsafe_characters(build: Build) -> None:
    path = build.add("my rule (copy) é.yml", hostile_rule())
    build.run("--no-packages")
    assert build.exit_code == 0, build.output
    assert safe_stem(path) == "my_rule_copy"
    assert (build.out / "docs" / "my_rule_copy.md").is_file()
    assert (build.out / "splunk" / "my_rule_copy.spl").is_file()


TEMPLATE_TEXT = "{{ 7*7 }} {% for x in range(3) %}loop{% endfor %} {# note #} ${HOME}"
HTML_TEXT = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


def test_template_and_html_shown_literally(build: Build) -> None:
    extra = (
        "notes:\n"
        f"    - '{TEMPLATE_TEXT}'\n"
        "triage:\n"
        f"    - '{HTML_TEXT}'\n"
        "    - \"{{ lipsum.__globals__ }} {% include '/etc/passwd' %}\"\n"
    )
    text = hostile_rule(
        title=f"'Title {TEMPLATE_TEXT}'",
        description=f"'{HTML_TEXT} {TEMPLATE_TEXT}'",
        falsepositive=f"'{TEMPLATE_TEXT} {HTML_TEXT}'",
        extra=extra,
    )
    build.add("templated.yml", text)
    build.run()
    assert build.exit_code == 0, build.output
    build.assert_good_rule_built()
    page = build.page("templated")
    assert page.count("{{ 7*7 }}") >= 4
    assert "{% for x in range(3) %}loop{% endfor %}" in page
    assert "{# note #}" in page
    assert "Title 49" not in page
    assert "looploop" not in page
    assert "root:" not in page
    assert "{% include '/etc/passwd' %}" in page
    prose = page.split("```")[0]
    assert "<script>" not in prose
    assert "&lt;script&gt;" in prose
    assert "onerror=alert(1)&gt;" in prose


def test_title_cannot_add_splunk_stanza(build: Build) -> None:
    title = '"x ]\\n[injected]\\nsearch = | delete\\naction.email.to = a@example.com"'
    build.add("stanza.yml", hostile_rule(title=title))
    build.run()
    assert build.exit_code == 0, build.output
    conf = build.out / "splunk" / "app" / "siemgen_cloudtrail" / "default" / "savedsearches.conf"
    stanzas = [
        line for line in conf.read_text(encoding="utf-8").splitlines() if line.startswith("[")
    ]
    assert len(stanzas) == 2
    assert "[injected]" not in stanzas
    assert not any(line.startswith("search = | delete") for line in conf.read_text().splitlines())
    for line in (build.out / "elastic" / "rules.ndjson").read_text(encoding="utf-8").splitlines():
        json.loads(line)


def test_value_cannot_leave_spl_string(build: Build) -> None:
    detection = "    selection:\n        eventName: '\" | delete'\n    condition: selection"
    build.add("pipe.yml", hostile_rule(detection=detection))
    build.run("--no-packages")
    assert build.exit_code == 0, build.output
    query = (build.out / "splunk" / "pipe.spl").read_text(encoding="utf-8")
    assert 'eventName="\\" | delete"' in query


@pytest.mark.parametrize(
    "condition",
    [
        "(" * 300 + "selection" + ")" * 300,
        "not " * 300 + "selection",
        "(not selection and " * 200 + "selection" + ")" * 200,
    ],
    ids=["parentheses", "not-chain", "mixed"],
)
def test_deep_condition_rejected(build: Build, condition: str) -> None:
    detection = f"    selection:\n        eventName: CreateUser\n    condition: {condition}"
    text = hostile_rule(detection=detection)
    path = build.add("deep.yml", text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "condition:" in row)
    build.run("--no-packages")
    assert build.exit_code == 1
    assert f"error: {path}:{line}: condition nests" in build.output
    assert f"more than the limit of {MAX_CONDITION_DEPTH}" in build.output
    build.assert_good_rule_built()


def test_condition_at_depth_limit_builds(build: Build) -> None:
    depth = MAX_CONDITION_DEPTH
    condition = "(not selection and " * (depth // 2) + "selection" + ")" * (depth // 2)
    assert condition_depth(condition) <= depth
    detection = f"    selection:\n        eventName: CreateUser\n    condition: {condition}"
    build.add("nested_ok.yml", hostile_rule(detection=detection))
    build.run("--no-packages")
    assert build.exit_code == 0, build.output
    assert (build.out / "athena" / "nested_ok.sql").is_file()


def test_ten_thousand_values_build(build: Build) -> None:
    values = "".join(f"            - Call{index:05d}\n" for index in range(10_000))
    detection = f"    selection:\n        eventName:\n{values}    condition: selection"
    build.add("many.yml", hostile_rule(detection=detection))
    build.run("--no-packages")
    assert build.exit_code == 0, build.output
    for relative in ("splunk/many.spl", "elastic/many.esql", "athena/many.sql"):
        query = (build.out / relative).read_text(encoding="utf-8")
        assert "Call00000" in query
        assert "Call09999" in query
    build.assert_good_rule_built()


@pytest.mark.parametrize(
    ("condition", "depth"),
    [
        ("selection", 0),
        ("selection and not filter", 1),
        ("(a or (b and not c))", 3),
        ("not not (a)", 3),
        ("1 of selection_* and not 1 of filter_*", 1),
    ],
)
def test_condition_depth_counts_nesting(condition: str, depth: int) -> None:
    assert condition_depth(condition) == depth
