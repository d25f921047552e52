"""Write generated files atomically, and never touch a file that siemgen did not write."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from siemgen.errors import ConfigError, OutputError
from siemgen.rules import OUTPUT_MANIFEST, RULE_INPUT_SUFFIXES

logger = logging.getLogger(__name__)

MANIFEST = OUTPUT_MANIFEST


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def _file_mode() -> int:
    """Return the mode a new file gets from the process umask (mkstemp always uses 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _existing_mode(path: Path) -> int | None:
    """Return the permission bits of the regular file at ``path``, or None if there is none."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.S_IMODE(status.st_mode) if stat.S_ISREG(status.st_mode) else None


def atomic_write(path: Path, data: bytes, make_parents: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A file that is replaced keeps its permission bits; a new one gets those of the umask.
    """
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    mode = _existing_mode(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, _file_mode() if mode is None else mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass
class WriteReport:
    """The files one write of the output folder wrote, left alone, removed or kept."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class OutputTree:
    """An output folder and the manifest of the files siemgen wrote into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest_path = root / MANIFEST
        self.previous = self._read_manifest()

    def _read_manifest(self) -> dict[str, str]:
        if not self.manifest_path.exists():
            return {}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            files = data["files"]
            if not isinstance(files, dict):
                raise TypeError("files is not a mapping")
            return {str(name): str(digest) for name, digest in files.items()}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise OutputError(
                f"the manifest is unreadable: {error}",
                path=self.manifest_path,
                hint="delete the output folder and build again",
            ) from error

    def _remove_empty_folders(self, folder: Path) -> None:
        """Remove ``folder`` and its parents up to the output root while they are empty."""
        root = self.root.resolve()
        while folder.resolve() != root and root in folder.resolve().parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def resolve(self, relative: str) -> Path:
        """Return the absolute path of an output file, rejecting paths that leave the folder."""
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts or relative == MANIFEST:
            raise OutputError(f"refusing to write {relative!r}: not a plain path in the output")
        path = self.root.joinpath(*pure.parts)
        root = self.root.resolve()
        if root not in path.resolve().parents:
            raise OutputError(f"refusing to write {relative!r}: it resolves outside {root}")
        return path

    def check(self, files: dict[str, bytes]) -> None:
        """Raise OutputError if writing ``files`` would overwrite a file siemgen did not write."""
        for relative, data in sorted(files.items()):
            path = self.resolve(relative)
            if path.is_symlink():
                raise OutputError(
                    "refusing to write through a symbolic link", path=path, hint="remove the link"
                )
            if path.exists() and not path.is_file():
                raise OutputError(
                    "refusing to replace a folder or special file with an output file",
                    path=path,
                    hint="move it away or choose another --out folder",
                )
            blocking = next(
                (parent for parent in path.parents if parent.exists() and not parent.is_dir()),
                None,
            )
            if blocking is not None:
                raise OutputError(
                    f"refusing to write {relative!r}: {blocking} is a file, not a folder",
                    path=blocking,
                    hint="move it away or choose another --out folder",
                )
            if path.exists() and relative not in self.previous and path.read_bytes() != data:
                raise OutputError(
                    "refusing to overwrite a file that siemgen did not write",
                    path=path,
                    hint="move the file away or choose another --out folder",
                )

    def write(self, files: dict[str, bytes]) -> WriteReport:
        """Write ``files``, remove files of the previous build that this one no longer makes."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(
                "the output folder is a file", path=self.root, hint="choose another --out folder"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"cannot create the output folder: {error.strerror or error}",
                path=self.root,
                hint="choose a folder you can write to with --out",
            ) from error
        try:
            return self._write(files)
        except OSError as error:
            where = Path(error.filename) if error.filename else self.root
            raise OutputError(
                f"cannot write the output: {error.strerror or error}", path=where
            ) from error

    def _write(self, files: dict[str, bytes]) -> WriteReport:
        self.check(files)
        report = WriteReport()
        self.root.mkdir(parents=True, exist_ok=True)
        for relative, data in sorted(files.items()):
            path = self.resolve(relative)
            if path.exists() and path.read_bytes() == data:
                report.unchanged.append(relative)
                continue
            atomic_write(path, data)
            report.written.append(relative)
        for relative, digest in sorted(self.previous.items()):
            if relative in files:
                continue
            path = self.resolve(relative)
            if not path.is_file() or path.is_symlink():
                continue
            if _digest(path.read_bytes()) == digest:
                path.unlink()
                report.removed.append(relative)
                self._remove_empty_folders(path.parent)
            else:
                logger.warning("kept %s: it was changed after siemgen wrote it", path)
                report.kept.append(relative)
        manifest = {"files": {name: _digest(files[name]) for name in sorted(files)}}
        atomic_write(
            self.manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        )
        self.previous = manifest["files"]
        return report


def write_report(path: Path, data: bytes, option: str) -> None:
    """Write a report file named on the command line, creating its folder as pytest does.

    A regular file is replaced atomically, through a symbolic link to its target. A device or
    a named pipe, such as ``/dev/stdout``, is written to as it is, since replacing it would
    put a regular file in its place.
    """
    hint = f"pass a writable file path to {option}"
    try:
        if path.is_dir():
            raise ConfigError("the report path is a folder", path=path, hint=hint)
        if path.exists() and not path.is_file():
            with path.open("wb") as stream:
                stream.write(data)
            return
        # The real path follows links and drops "..", so no folder is made that is not used.
        target = Path(os.path.realpath(path))
        blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise ConfigError(f"{str(blocking)!r} is a file, not a folder", path=path, hint=hint)
        atomic_write(target, data)
    except OSError as error:
        raise ConfigError(
            f"cannot write the report: {error.strerror or error}", path=path, hint=hint
        ) from error


def check_report_path(path: Path, option: str) -> None:
    """Raise ConfigError unless a report can be written to ``path``, before any work is done.

    The report's folder may be missing, as ``write_report`` creates it, but the nearest
    folder that exists must be writable, and so must the report if it exists.
    """
    hint = f"pass a writable file path to {option}"
    # A symbolic link is written through to its target, so the target's name counts too.
    names = {path.name, Path(os.path.realpath(path)).name}
    if any(name.lower().endswith(RULE_INPUT_SUFFIXES) for name in names):
        raise ConfigError(
            "a report may not be named like a rule or test file (.yml, .yaml, .tests.json), "
            "nor be a link to one",
            path=path,
            hint=f"give {option} another suffix",
        )
    try:
        if path.is_dir():
            raise ConfigError("the report path is a folder", path=path, hint=hint)
        if path.exists():
            if not os.access(path, os.W_OK):
                raise ConfigError("the report file is not writable", path=path, hint=hint)
            return
        existing = next(p for p in Path(os.path.realpath(path)).parents if p.exists())
        if not existing.is_dir():
            raise ConfigError(f"{str(existing)!r} is a file, not a folder", path=path, hint=hint)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"the folder {str(existing)!r} is not writable", path=path, hint=hint)
    except OSError as error:
        raise ConfigError(
            f"cannot use the report path: {error.strerror or error}", path=path, hint=hint
        ) from error


def reject_input(
    path: Path, option: str, roots: Iterable[Path], suffixes: tuple[str, ...] | None, what: str
) -> None:
    """Raise ConfigError when a report at ``path`` would overwrite or join a command's input.

    The input is every file named with one of ``suffixes`` (any name for None) that is one of
    ``roots`` or lies in a folder among them: ``what`` names those files. The report path
    counts by its own name and, through a symbolic link, by its target's.
    """
    resolved = path.resolve()
    names = {path.name.lower(), resolved.name.lower()}
    if suffixes is not None and not any(name.endswith(suffixes) for name in names):
        return
    for root in roots:
        # A path below a file cannot exist, so a root that is a file matches only itself.
        if resolved.is_relative_to(root.resolve()):
            raise ConfigError(
                f"the {option} file is among the {what} under {str(root)!r}, which this "
                "command reads",
                path=path,
                hint=f"write {option} outside {str(root)!r}"
                + ("" if suffixes is None else " or give it another suffix"),
            )
