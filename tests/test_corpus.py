"""The community CloudTrail rules build for every target, or fail with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemgen.build import build

from paths import CORPUS

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="community corpus not present")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build([CORPUS], tmp_path_factory.mktemp("corpus"), packages=False)


def test_all_rules_load(result) -> None:  # type: ignore[no-untyped-def]
    assert len(result.collection.rules) == len(list(CORPUS.glob("*.yml")))
    assert result.collection.errors == []


@pytest.mark.parametrize("target", ["splunk", "elastic"])
def test_splunk_and_elastic_build_every_rule(result, target: str) -> None:  # type: ignore[no-untyped-def]
    failed = [str(e) for e in result.errors if (e.target or "").startswith(target)]
    assert failed == []
    assert result.counts[target].built == len(result.collection.rules)


def test_athena_builds_or_says_why(result) -> None:  # type: ignore[no-untyped-def]
    for error in result.errors:
        if (error.target or "") == "athena":
            assert error.path is not None
            assert len(error.message) > 20


def test_cli_build_of_corpus(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from siemgen.cli import app

    outcome = CliRunner().invoke(app, ["build", "--rules", str(CORPUS), "--out", str(tmp_path)])
    assert "rules loaded" in outcome.output
    assert (tmp_path / "splunk" / "aws_root_account_usage.spl").exists()
