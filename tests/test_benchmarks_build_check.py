"""The build and check benchmark scripts, run at their smallest size on the project rules."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from paths import REPO, RULES

BENCHMARKS = REPO / "benchmarks"
SIGMA_CLI = Path(sys.executable).parent / "sigma"
HUNT_SECTION = "## hunt\n\nFigures that another script writes.\n\n| records | s |\n|---|---|\n"
PAGE = f"# Benchmarks\n\n{HUNT_SECTION}"


def run_benchmark(script: str, doc: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one benchmark script once, without warm-up, on the project rules alone."""
    return subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / script),
            "--runs",
            "1",
            "--warmup",
            "0",
            "--no-corpus",
            "--write-doc",
            "--doc",
            str(doc),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        check=False,
    )


def table(stdout: str) -> dict[str, list[str]]:
    """Read the printed table into rows keyed by their first cell."""
    lines = stdout.splitlines()
    rows: dict[str, list[str]] = {}
    for line in lines[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) < 2:
            break
        rows[cells[0]] = cells[1:]
    return rows


def project_rule_count() -> int:
    return len(list(RULES.rglob("*.yml")))


def load_common() -> ModuleType:
    """Import benchmarks/_common.py, which is not part of an installed package."""
    spec = importlib.util.spec_from_file_location("benchmark_common", BENCHMARKS / "_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolves string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not SIGMA_CLI.exists(), reason="sigma-cli is not installed")
def test_build_benchmark_smallest_run(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(PAGE, encoding="utf-8")

    result = run_benchmark("build.py", doc, tmp_path)

    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    rules = project_rule_count()
    assert float(rows["siemgen build (1 process)"][0]) > 0
    # Five query files and a page per rule, at least.
    assert int(rows["siemgen build (1 process)"][-1]) >= 6 * rules
    for label in ("splunk", "lucene", "esql", "eql", "athena"):
        assert int(rows[f"sigma-cli {label}"][-1]) == rules, label
    assert int(rows["sigma-cli total (5 processes)"][-1]) == 5 * rules
    assert "times as fast as the sigma-cli runs together" in result.stdout

    text = doc.read_text(encoding="utf-8")
    assert HUNT_SECTION in text
    assert text.count("## build") == 1
    assert "benchmarks/build.py --runs 1 --warmup 0 --no-corpus" in text
    assert "`nproc`" in text
    assert "| siemgen build (1 process) |" in text


@pytest.mark.slow
def test_check_benchmark_smallest_run(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(PAGE, encoding="utf-8")

    result = run_benchmark("check.py", doc, tmp_path)

    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    first = rows["first run (empty cache)"]
    unchanged = rows["no change (warm cache)"]
    changed = rows["one rule changed"]
    assert first[-2] in {"0", "1"}
    # The last column counts the cache files each run wrote.
    assert first[-1] == str(project_rule_count())
    assert unchanged[-1] == "0"
    assert changed[-1] == "1"
    assert "no-change run / first run" in result.stdout

    text = doc.read_text(encoding="utf-8")
    assert HUNT_SECTION in text
    assert text.count("## check") == 1
    assert "benchmarks/check.py --runs 1 --warmup 0 --no-corpus" in text
    assert "| no change (warm cache) |" in text


def test_update_section_keeps_other_sections(tmp_path: Path) -> None:
    common = load_common()
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n## build\n\nold build\n\n" + HUNT_SECTION + "\n## check\n\nold check\n",
        encoding="utf-8",
    )

    common.update_section(doc, "build", "new build")
    text = doc.read_text(encoding="utf-8")

    assert "old build" not in text
    assert "new build" in text
    assert HUNT_SECTION in text
    assert "old check" in text
    assert text.index("## build") < text.index("## hunt") < text.index("## check")
    assert text.endswith("old check\n")


def test_update_section_appends_and_creates(tmp_path: Path) -> None:
    common = load_common()
    doc = tmp_path / "docs" / "benchmarks.md"

    common.update_section(doc, "check", "first figures")
    common.update_section(doc, "build", "build figures")
    common.update_section(doc, "check", "second figures")
    text = doc.read_text(encoding="utf-8")

    assert text.startswith("# Benchmarks\n\n## check\n")
    assert "first figures" not in text
    assert text.count("## check") == 1
    assert text.index("## check") < text.index("## build")
    assert text.endswith("build figures\n")


def test_stage_rules_renames_colliding_corpus_file(tmp_path: Path) -> None:
    common = load_common()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    colliding = sorted(RULES.rglob("*.yml"))[0]
    (corpus / colliding.name).write_text("title: same name\n", encoding="utf-8")
    (corpus / "unique_rule_name.yml").write_text("title: other\n", encoding="utf-8")

    staged = common.stage_rules(tmp_path / "staged", corpus)

    assert staged.corpus == 2
    assert staged.project == project_rule_count()
    assert staged.renamed == ((colliding.name, "sigmahq_" + colliding.name),)
    assert (tmp_path / "staged" / "corpus" / ("sigmahq_" + colliding.name)).is_file()
    assert (tmp_path / "staged" / "corpus" / "unique_rule_name.yml").is_file()
