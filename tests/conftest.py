"""Shared fixtures: repository paths, a rule factory and the golden-file comparer."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from paths import GOLDEN

# Every test runs with outbound network access blocked; see tests/_nonetwork.py.
pytest_plugins = ["_nonetwork"]

MINIMAL_RULE = """\
title: {title}
id: {id}
status: test
description: A rule written by a test.
references:
    - https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateUser.html
author: siemgen tests
date: 2026-01-01
tags:
    - attack.persistence
    - attack.t1136.003
logsource:
    product: aws
    service: cloudtrail
detection:
{detection}
falsepositives:
    - Tests
level: low
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files under tests/data/golden from the current output",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with a golden file, or rewrite the file with --update-golden."""
    update = bool(request.config.getoption("--update-golden"))

    def compare(relative: str, actual: str) -> None:
        path = GOLDEN / relative
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"golden file {path} is missing; run `make golden` and review it"
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"{relative} differs from its golden file; run `make golden`"

    return compare


@pytest.fixture
def write_rule(tmp_path: Path) -> Callable[..., Path]:
    """Write a small CloudTrail rule into tmp_path/rules and return its path."""

    def write(
        name: str = "test_rule",
        detection: str = "selection:\n    eventName: CreateUser\ncondition: selection",
        title: str | None = None,
        rule_id: str = "0f6b1a52-8f0c-4f3c-9a41-2d1c2b0f9e11",
        folder: str = "rules",
    ) -> Path:
        directory = tmp_path / folder
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.yml"
        text = MINIMAL_RULE.format(
            title=title or f"Test rule {name}",
            id=rule_id,
            detection=textwrap.indent(detection, "    "),
        )
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _private_check_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep `siemgen check` results of the tests out of the user's cache folder."""
    monkeypatch.setenv("SIEMGEN_CACHE_DIR", str(tmp_path_factory.mktemp("siemgen-cache")))
