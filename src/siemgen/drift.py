"""Compare the generated content a repository commits with a fresh build."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from siemgen.findings import Finding, relative_path
from siemgen.output import MANIFEST

REFRESH = "siemgen build --rules {rules} --out {folder} --no-packages"


def _first_changed_line(old: list[str], new: list[str]) -> int:
    for index, (before, after) in enumerate(zip(old, new, strict=False)):
        if before != after:
            return index + 1
    return min(len(old), len(new)) + 1


def drift_findings(
    fresh: dict[str, bytes], folder: Path, root: Path, refresh: str
) -> list[Finding]:
    """Report every committed generated file that differs from ``fresh``, with a diff."""
    findings: list[Finding] = []
    for relative in sorted(fresh):
        path = folder / relative
        shown = relative_path(path, root)
        expected = fresh[relative].decode("utf-8", errors="replace")
        if not path.exists():
            findings.append(
                Finding(
                    shown, None, "drift", "missing", f"generated file is missing; run `{refresh}`"
                )
            )
            continue
        actual = path.read_bytes().decode("utf-8", errors="replace")
        if actual == expected:
            continue
        old = actual.splitlines(keepends=True)
        new = expected.splitlines(keepends=True)
        diff = "".join(
            difflib.unified_diff(old, new, f"a/{shown}", f"b/{shown} (fresh build)", n=2)
        )
        findings.append(
            Finding(
                shown,
                _first_changed_line(old, new),
                "drift",
                "stale",
                f"generated file differs from a fresh build; run `{refresh}`",
                detail=diff.rstrip("\n"),
            )
        )
    manifest = folder / MANIFEST
    if manifest.exists():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError):
            recorded = {}
        for relative in sorted(set(recorded) - set(fresh)):
            if (folder / relative).exists():
                findings.append(
                    Finding(
                        relative_path(folder / relative, root),
                        None,
                        "drift",
                        "orphaned",
                        f"no rule generates this file any more; run `{refresh}`",
                    )
                )
    return findings
