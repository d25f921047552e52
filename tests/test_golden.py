"""Golden files for every output of the canonical rule; `make golden` rewrites them.

Each golden file was reviewed against the CloudTrail field reference: Splunk keeps the raw
names under sourcetype aws:cloudtrail, Elastic uses event.provider and event.action on the
logs-aws.cloudtrail-* data stream, and Athena compares eventsource and eventname exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from siemgen.build import build

from paths import CANONICAL, CANONICAL_OUTPUTS


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden") / "dist"
    result = build([CANONICAL], out, packages=False)
    assert result.ok, [str(error) for error in result.errors]
    return out


@pytest.mark.parametrize("relative", CANONICAL_OUTPUTS)
def test_output_matches_golden(
    outputs: Path, relative: str, golden: Callable[[str, str], None]
) -> None:
    golden(relative, (outputs / relative).read_text(encoding="utf-8"))
