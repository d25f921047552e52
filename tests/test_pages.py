"""Documentation pages: front matter, linked API calls and gapless reference numbers."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from siemgen.build import build

from paths import CANONICAL

CALLS = [
    "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
    "PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
    "DeletePolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy",
    "DetachUserPolicy", "AttachGroupPolicy", "DetachGroupPolicy",
]  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("pages")
    build([CANONICAL], out, packages=False)
    return (out / "docs" / "aws_iam_policy_changed.md").read_text(encoding="utf-8")


def front_matter(page: str) -> dict[str, object]:
    match = re.match(r"---\n(.*?)\n---\n", page, re.DOTALL)
    assert match, "page has no front matter"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict)
    return data


def test_front_matter_fields(page: str) -> None:
    data = front_matter(page)
    assert data["title"] == "AWS IAM Policy Changed"
    assert data["kind"] == "documentation"
    assert data["type"] == "security_rules"
    assert data["disable_edit"] is True
    assert data["security"] == "compliance"
    assert data["framework"] == "cis"
    assert data["control"] == "cis-3.4"
    assert data["source"] == "cloudtrail"
    assert data["scope"] == "iam"
    assert data["aliases"] == ["7b6-a2a-8df"]
    assert str(data["src_link"]).startswith("https://")


def test_sections_in_order(page: str) -> None:
    headings = ["## Overview", "### Goal", "### Strategy", "### Triage & Response"]
    positions = [page.index(f"\n{heading}\n") for heading in headings]
    assert positions == sorted(positions)


def test_every_call_links_to_its_reference(page: str) -> None:
    strategy = page.split("### Strategy", 1)[1].split("### Triage", 1)[0]
    links = dict(re.findall(r"^\[(\d+)\]: (\S+)$", page, re.MULTILINE))
    bullets = re.findall(r"^- \[(\w+)\]\[(\d+)\]$", strategy, re.MULTILINE)
    assert [name for name, _ in bullets] == CALLS
    for name, number in bullets:
        expected = f"https://docs.aws.amazon.com/IAM/latest/APIReference/API_{name}.html"
        assert links[number] == expected


def test_reference_numbers_are_gapless_in_order(page: str) -> None:
    used = [int(n) for n in re.findall(r"\]\[(\d+)\]", page)]
    first_use = list(dict.fromkeys(used))
    assert first_use == list(range(1, len(first_use) + 1))
    defined = [int(n) for n in re.findall(r"^\[(\d+)\]: ", page, re.MULTILINE)]
    assert defined == list(range(1, len(first_use) + 1))


def test_page_shows_every_query(page: str) -> None:
    for language in ("spl", "lucene", "esql", "eql", "sql", "yaml"):
        assert f"```{language}\n" in page, language


def test_page_states_the_event_source_choice(page: str) -> None:
    assert "iam.amazonaws.com" in page.split("### Strategy", 1)[1].split("### Triage", 1)[0]
    assert "Auto Scaling" in page


def test_page_shows_attack_and_compliance(page: str) -> None:
    assert "Account Manipulation (T1098)" in page
    assert "https://attack.mitre.org/techniques/T1098/003" in page
    assert "CIS AWS Foundations v1.4.0 4.4" in page
    assert "AWS Security Hub CloudWatch.4" in page


def test_page_comes_from_the_rule_alone(tmp_path: Path, write_rule: Callable[..., Path]) -> None:
    rule = write_rule("other", title="Some <b>Other</b> Rule {{ 7*7 }}")
    build([rule], tmp_path / "out", packages=False)
    other = (tmp_path / "out" / "docs" / "other.md").read_text(encoding="utf-8")
    assert front_matter(other)["title"] == "Some <b>Other</b> Rule {{ 7*7 }}"
    assert "IAM" not in front_matter(other)["title"]  # type: ignore[operator]
    assert "framework" not in front_matter(other)
    assert "49" not in other
    assert "<b>" not in other.split("```yaml")[0].split("---", 2)[2]


def test_index_lists_every_rule(tmp_path: Path) -> None:
    build([CANONICAL], tmp_path, packages=False)
    index = (tmp_path / "docs" / "index.md").read_text(encoding="utf-8")
    assert "[AWS IAM Policy Changed](aws_iam_policy_changed.md)" in index
    assert "CloudWatch.4" in index


def test_page_shows_the_cis_filter(page: str) -> None:
    section = page.split("### CloudWatch Logs metric filter", 1)[1].split("## Sigma rule")[0]
    assert "```text\n{($.eventName=DeleteGroupPolicy)||" in section
    assert "`IAMPolicyEventCount`" in section
