"""Run the escaping property tests at scale: many Hypothesis examples per target and format.

Each target format runs in its own pytest process with ``SIEMGEN_FUZZ_EXAMPLES`` set, which
makes the tests in ``tests/test_fuzz_escaping.py`` search randomly with that many examples
per test (``fuzz_settings`` in ``tests/strategies.py``). The script prints, per test, the
passing, failing and invalid examples that Hypothesis reports, and the falsifying example of
each failure, and exits with status 1 if any test failed.

    .venv/bin/python benchmarks/fuzz.py --examples 10000 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_FILE = REPO / "tests" / "test_fuzz_escaping.py"
# The pytest -k expression that selects each target format's tests.
FORMATS = {
    "splunk/spl": "splunk-spl",
    "elastic/lucene": "elastic-lucene",
    "elastic/esql": "elastic-esql",
    "elastic/eql": "elastic-eql",
    "athena/sql": "athena-sql",
}
_HEADER = re.compile(r"^(?P<test>tests/\S+::\S+):$")
_COUNTS = re.compile(
    r"- (?P<passing>\d+) passing, (?P<failing>\d+) failing, and (?P<invalid>\d+) invalid"
)


@dataclass
class TestCounts:
    """The examples Hypothesis ran for one test, summed over its phases."""

    test: str
    passing: int = 0
    failing: int = 0
    invalid: int = 0


@dataclass
class FormatRun:
    """One pytest process: the tests of one target format."""

    name: str
    status: int
    seconds: float
    counts: list[TestCounts]
    failures: str


def parse_statistics(output: str) -> list[TestCounts]:
    """Read the per-test example counts from pytest's --hypothesis-show-statistics output."""
    results: list[TestCounts] = []
    current: TestCounts | None = None
    for line in output.splitlines():
        header = _HEADER.match(line.strip())
        if header:
            current = TestCounts(header["test"])
            results.append(current)
            continue
        counts = _COUNTS.search(line)
        if counts and current is not None:
            current.passing += int(counts["passing"])
            current.failing += int(counts["failing"])
            current.invalid += int(counts["invalid"])
    return results


def run_format(name: str, selector: str, examples: int, select: str | None = None) -> FormatRun:
    """Run one target format's fuzz tests, or those ``select`` also matches, in pytest."""
    env = dict(os.environ, SIEMGEN_FUZZ_EXAMPLES=str(examples))
    if select is not None:
        selector = f"({selector}) and ({select})"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(TEST_FILE),
        "-k",
        selector,
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        "--tb=short",
    ]
    started = time.monotonic()
    completed = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - started
    output = completed.stdout + completed.stderr
    failures = ""
    if completed.returncode != 0:
        failures = "\n".join(
            line for line in output.splitlines() if line.startswith(("E ", "FAILED"))
        )
    return FormatRun(name, completed.returncode, seconds, parse_statistics(output), failures)


def report(runs: Sequence[FormatRun], examples: int) -> str:
    """Format the runs as a Markdown table followed by the failures."""
    lines = [
        f"Requested examples per test: {examples}",
        "",
        "| format | test | passing | failing | invalid |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for run in runs:
        for counts in run.counts:
            test = counts.test.split("::", 1)[1]
            lines.append(
                f"| {run.name} | {test} | {counts.passing} | {counts.failing} | {counts.invalid} |"
            )
    lines.append("")
    for run in runs:
        outcome = "passed" if run.status == 0 else f"FAILED (pytest status {run.status})"
        lines.append(f"- {run.name}: {outcome} in {run.seconds:.0f} s")
    for run in runs:
        if run.failures:
            lines.extend(("", f"## Failures in {run.name}", "", run.failures))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=10_000, help="Hypothesis examples per test."
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="Target formats fuzzed at the same time."
    )
    parser.add_argument(
        "--format",
        action="append",
        choices=sorted(FORMATS),
        help="Fuzz only this target format; repeat for several. Default: all.",
    )
    parser.add_argument(
        "--select",
        metavar="EXPRESSION",
        help="Run only the tests that this pytest -k expression matches, "
        "such as test_field_name_quoted_or_rejected.",
    )
    parser.add_argument("--output", type=Path, help="Also write the report to this file.")
    args = parser.parse_args(argv)
    names = args.format or list(FORMATS)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(
            pool.map(
                lambda name: run_format(name, FORMATS[name], args.examples, args.select), names
            )
        )
    text = report(runs, args.examples)
    print(text, end="")
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    return 0 if all(run.status == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
