"""Cache fingerprints: installed versions read from dist-info folder names."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from siemgen import fingerprint

DISTRIBUTIONS = ("pySigma", "pySigma-backend-splunk", "duckdb", "sqlglot", "Jinja2", "eql")


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_installed_version_matches_importlib_metadata(name: str) -> None:
    assert fingerprint.installed_version(name) == metadata.version(name)


def test_missing_distribution_is_absent() -> None:
    assert fingerprint.installed_version("siemgen-no-such-distribution") == "absent"


def test_fingerprint_changes_with_a_package_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fingerprint.code_fingerprint("test", packages=["siemgen-example"])
    (tmp_path / "siemgen_example-2.0.dist-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    fingerprint._dist_info_versions.cache_clear()
    try:
        assert fingerprint.installed_version("siemgen-example") == "2.0"
        assert fingerprint.code_fingerprint("test", packages=["siemgen-example"]) != before
    finally:
        fingerprint._dist_info_versions.cache_clear()


def test_fingerprint_changes_with_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "page.md.j2").write_text("one\n", encoding="utf-8")
    first = fingerprint.code_fingerprint("test", [folder])
    (folder / "page.md.j2").write_text("two\n", encoding="utf-8")
    assert fingerprint.code_fingerprint("test", [folder]) != first
    assert fingerprint.code_fingerprint("other", [folder]) != fingerprint.code_fingerprint(
        "test", [folder]
    )
