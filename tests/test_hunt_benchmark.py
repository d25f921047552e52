"""benchmarks/hunt.py runs end to end at a small size and reports consistent figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from paths import REPO

SCRIPT = REPO / "benchmarks" / "hunt.py"


def test_benchmark_runs_at_small_size(tmp_path: Path) -> None:
    report = tmp_path / "figures.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "--records",
        "6000,12000",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--workdir",
        str(tmp_path / "work"),
        "--json",
        str(report),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "### Goals" in done.stdout
    assert "### Where the cached hunt spends its time" in done.stdout
    sizes = json.loads(report.read_text())["sizes"]
    assert [size["records"] for size in sizes] == [6000, 12000]
    for size in sizes:
        kinds = size["kinds"]
        assert kinds["floor"]["records"] == [size["records"]]
        assert size["files"] == -(-size["records"] // 5000)
        assert len(kinds) == 7
        for kind in set(kinds) - {"floor"}:
            assert kinds[kind]["records"] == [size["records"]]
        matches = {kind: kinds[kind]["matches"][0] for kind in kinds if kind != "floor"}
        assert 0 < matches["canonical"] < matches["all rules"]
        assert matches["cache write"] == matches["cache read"] == matches["all rules"]
        assert (
            matches["canonical cache write"]
            == matches["canonical cache read"]
            == matches["canonical"]
        )
        assert all(wall > 0 for kind in kinds.values() for wall in kind["wall"])
        assert len(size["phases"]) == len(size["startup"]) == 1
        assert set(size["phases"][0]) == {"imports", "rules", "scan", "render", "write"}
        assert all(seconds > 0 for seconds in size["phases"][0].values())


def test_generated_logs_use_the_s3_layout(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import hunt as benchmark
    finally:
        sys.path.remove(str(SCRIPT.parent))
    benchmark.generate(tmp_path, 7000, seed=3, workers=1)
    files = sorted(tmp_path.rglob("*.json.gz"))
    assert len(files) == 2
    for path in files:
        parts = path.relative_to(tmp_path).parts
        assert parts[0] == "AWSLogs"
        assert parts[2] == "CloudTrail"
        assert [len(part) for part in parts[4:7]] == [4, 2, 2]
        assert path.name.startswith(f"{parts[1]}_CloudTrail_{parts[3]}_")
