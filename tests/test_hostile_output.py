"""The output folder: a build never deletes or overwrites a file that it did not write."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siemgen.cli import app
from siemgen.errors import OutputError
from siemgen.output import MANIFEST, OutputTree

SIEMGEN = Path(sys.executable).with_name("siemgen")


def run_cli(rules: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed siemgen command, which maps errors to exit codes."""
    return subprocess.run(
        [str(SIEMGEN), "build", "--rules", str(rules), "--out", str(out), "--no-packages"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def build(rules: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["build", "--rules", str(rules), "--out", str(out), "--no-packages"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.fixture
def rules(write_rule: Callable[..., Path], tmp_path: Path) -> Path:
    write_rule(name="first_rule")
    write_rule(name="second_rule", rule_id="1f6b1a52-8f0c-4f3c-9a41-2d1c2b0f9e12")
    return tmp_path / "rules"


def test_foreign_file_not_overwritten(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    foreign = out / "docs" / "first_rule.md"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("my own notes\n", encoding="utf-8")
    result = run_cli(rules, out)
    assert result.returncode == 1
    assert "refusing to overwrite a file that siemgen did not write" in result.stderr
    assert str(foreign) in result.stderr
    assert foreign.read_text(encoding="utf-8") == "my own notes\n"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["first_rule.md"]


def test_foreign_file_with_same_content_is_adopted(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(rules, out)[0] == 0
    page = (out / "docs" / "first_rule.md").read_bytes()
    other = tmp_path / "other"
    (other / "docs").mkdir(parents=True)
    (other / "docs" / "first_rule.md").write_bytes(page)
    assert build(rules, other)[0] == 0
    manifest = json.loads((other / MANIFEST).read_text(encoding="utf-8"))
    assert "docs/first_rule.md" in manifest["files"]


def test_symlink_to_outside_file_refused(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n", encoding="utf-8")
    link = out / "splunk" / "first_rule.spl"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    result = run_cli(rules, out)
    assert result.returncode == 1
    assert "refusing to write" in result.stderr
    assert outside.read_text(encoding="utf-8") == "keep me\n"
    assert link.is_symlink()


def test_symlinked_folder_to_outside_refused(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out.mkdir()
    (out / "docs").symlink_to(outside, target_is_directory=True)
    result = run_cli(rules, out)
    assert result.returncode == 1
    assert "resolves outside" in result.stderr
    assert list(outside.iterdir()) == []


def test_symlink_inside_output_refused(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(rules, out)[0] == 0
    query = out / "splunk" / "first_rule.spl"
    target = out / "splunk" / "second_rule.spl"
    original = target.read_bytes()
    query.unlink()
    query.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        OutputTree(out).write({"splunk/first_rule.spl": b"new\n"})
    assert target.read_bytes() == original


def test_folder_in_the_way_refused(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "docs" / "first_rule.md").mkdir(parents=True)
    result = run_cli(rules, out)
    assert result.returncode == 1
    assert "refusing to replace a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_file_in_place_of_folder_refused(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "docs").write_text("not a folder\n", encoding="utf-8")
    result = run_cli(rules, out)
    assert result.returncode == 1
    assert "is a file, not a folder" in result.stderr
    assert (out / "docs").read_text(encoding="utf-8") == "not a folder\n"


def test_stale_output_removed(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(rules, out)[0] == 0
    assert (out / "athena" / "second_rule.sql").is_file()
    (rules / "second_rule.yml").unlink()
    status, output = build(rules, out)
    assert status == 0, output
    assert not (out / "athena" / "second_rule.sql").exists()
    assert not (out / "docs" / "second_rule.md").exists()
    assert (out / "athena" / "first_rule.sql").is_file()
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert not any("second_rule" in name for name in manifest["files"])


def test_edited_stale_output_kept_with_warning(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(rules, out)[0] == 0
    page = out / "docs" / "second_rule.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nMy analysis.\n", encoding="utf-8")
    (rules / "second_rule.yml").unlink()
    status, output = build(rules, out)
    assert status == 0
    assert page.is_file()
    assert page.read_text(encoding="utf-8").endswith("My analysis.\n")
    assert f"warning: kept {page}" in output
    assert not (out / "athena" / "second_rule.sql").exists()


def test_edited_current_output_regenerated(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(rules, out)[0] == 0
    query = out / "splunk" / "first_rule.spl"
    original = query.read_text(encoding="utf-8")
    query.write_text("edited\n", encoding="utf-8")
    assert build(rules, out)[0] == 0
    assert query.read_text(encoding="utf-8") == original


def test_manifest_cannot_point_outside(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(rules, out)[0] == 0
    outside = tmp_path / "victim.txt"
    outside.write_text("precious\n", encoding="utf-8")
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"]["../victim.txt"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    result = run_cli(rules, out)
    assert result.returncode == 1
    assert "not a plain path in the output" in result.stderr
    assert outside.read_text(encoding="utf-8") == "precious\n"


def test_unreadable_manifest_reported(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text("{not json", encoding="utf-8")
    result = run_cli(rules, out)
    assert result.returncode == 1
    assert "the manifest is unreadable" in result.stderr


@pytest.mark.parametrize("relative", ["../x.md", "/etc/x.md", "docs/../../x.md", MANIFEST, ""])
def test_resolve_rejects_paths_leaving_output(tmp_path: Path, relative: str) -> None:
    with pytest.raises(OutputError):
        OutputTree(tmp_path / "out").resolve(relative)


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    OutputTree(out).write({"docs/a.md": b"first\n"})

    def fail_rename(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    # The rename is the last step of each write, so failing it leaves a full temporary file.
    monkeypatch.setattr(Path, "replace", fail_rename)
    with pytest.raises(OutputError, match="No space left"):
        OutputTree(out).write({"docs/a.md": b"second\n"})
    monkeypatch.undo()
    assert (out / "docs" / "a.md").read_bytes() == b"first\n"
    assert sorted(p.name for p in (out / "docs").iterdir()) == ["a.md"]
