"""Tests that sigma-cli finds the Athena backend and pipelines as a pySigma plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sigma.plugins import InstalledSigmaPlugins

from siemgen.backends.athena import AthenaBackend

ROOT = Path(__file__).parent.parent
SIGMA = Path(sys.executable).parent / "sigma"
RULE = ROOT / "sigma" / "aws" / "cloudtrail" / "aws_iam_policy_changed.yml"


def test_plugin_discovery() -> None:
    plugins = InstalledSigmaPlugins.autodiscover()
    assert plugins.backends["athena"] is AthenaBackend
    assert {"athena-cloudtrail", "athena-security-lake"} <= set(plugins.pipelines)


def test_namespace_packages_have_no_init() -> None:
    assert not (ROOT / "src" / "sigma" / "__init__.py").exists()
    assert not (ROOT / "src" / "sigma" / "backends" / "__init__.py").exists()
    assert not (ROOT / "src" / "sigma" / "pipelines" / "__init__.py").exists()


@pytest.mark.skipif(not SIGMA.exists(), reason="sigma-cli is not installed in this environment")
def test_sigma_convert_uses_athena_backend(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(SIGMA),
            "convert",
            "-t",
            "athena",
            "-p",
            "athena-cloudtrail",
            "-f",
            "condition",
            str(RULE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "eventsource = 'iam.amazonaws.com'" in result.stdout
    assert "eventname IN ('DeleteGroupPolicy'" in result.stdout


@pytest.mark.skipif(not SIGMA.exists(), reason="sigma-cli is not installed in this environment")
def test_sigma_convert_backend_option(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(SIGMA),
            "convert",
            "-t",
            "athena",
            "-p",
            "athena-cloudtrail-projection",
            "-O",
            "lookback=12h",
            str(RULE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "FROM cloudtrail_logs_pp" in result.stdout
    assert "\"timestamp\" >= date_format(current_timestamp - INTERVAL '12' HOUR" in result.stdout
