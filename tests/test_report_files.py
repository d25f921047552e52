"""Report files named on the command line: replaced atomically, never turned into other files."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from siemgen.errors import ConfigError
from siemgen.output import write_report


def test_new_report_written(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    write_report(target, b"{}\n", "--output")
    assert target.read_bytes() == b"{}\n"


def test_replaced_report_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_report(target, b"new", "--output")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_symlink_kept_and_target_written(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_report(link, b"new", "--output")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


def test_named_pipe_written_in_place(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    write_report(pipe, b"through the pipe", "--output")
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)


def test_device_stays_a_device() -> None:
    write_report(Path(os.devnull), b"discarded", "--output")
    assert stat.S_ISCHR(Path(os.devnull).stat().st_mode)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_full_device_reports_error() -> None:
    with pytest.raises(ConfigError, match="cannot write the report: No space left"):
        write_report(Path("/dev/full"), b"x" * 100_000, "--output")
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)


def test_folder_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the report path is a folder"):
        write_report(tmp_path, b"x", "--junit")
