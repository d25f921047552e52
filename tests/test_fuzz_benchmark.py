"""benchmarks/fuzz.py runs the escaping property tests and reports Hypothesis's counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from paths import REPO

SCRIPT = REPO / "benchmarks" / "fuzz.py"
TEST = "test_field_name_quoted_or_rejected"


def test_fuzz_script_reports_example_counts(tmp_path: Path) -> None:
    report = tmp_path / "fuzz.md"
    command = [
        sys.executable,
        str(SCRIPT),
        "--examples",
        "7",
        "--format",
        "splunk/spl",
        "--select",
        TEST,
        "--output",
        str(report),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in report.read_text().splitlines() if line.startswith("| splunk/spl")]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells[:4] == ["splunk/spl", f"{TEST}[splunk-spl]", "7", "0"]
    assert "- splunk/spl: passed" in report.read_text()
