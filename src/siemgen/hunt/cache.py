"""Parquet copies of the records a hunt read, so the next hunt over the same files skips JSON.

The folder holds ``manifest.json`` and ``records-<hash>.parquet`` files, one per scanned batch.
The manifest maps each log file, keyed by its resolved path, size and modification time, to
the Parquet file holding its records and the columns that file has. A later hunt reads a log
file from Parquet when its key matches and the Parquet file has every column the hunt needs;
otherwise it reads the JSON again and replaces the entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from siemgen.errors import ConfigError
from siemgen.hunt.logs import LogFile
from siemgen.hunt.scan import sql_literal
from siemgen.hunt.schema import Selection, selection_from_structure

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_PARQUET_NAME = re.compile(r"records-[0-9a-f]{16}\.parquet")


@dataclass(frozen=True)
class CacheEntry:
    """Where the records of one log file are kept."""

    key: str
    path: str
    name: str
    """The file's name as stored in the Parquet ``source_file`` column."""
    parquet: str
    columns: str
    """The ``from_json`` structure the Parquet file was written with, as canonical JSON."""
    records: int


def file_key(log_file: LogFile) -> str:
    """Return the cache key of a log file: a hash of its resolved path, size and mtime."""
    text = f"{log_file.path.resolve()}\0{log_file.size}\0{log_file.mtime_ns}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class ParquetCache:
    """The cache folder: its manifest and Parquet files."""

    def __init__(self, folder: Path) -> None:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                "cache path is not a folder", path=folder, hint="pass a folder for --cache"
            )
        self.folder = folder
        self.entries: dict[str, CacheEntry] = {}
        self.warnings: list[str] = []
        self._load()

    def _load(self) -> None:
        path = self.folder / MANIFEST
        if not path.exists():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != MANIFEST_VERSION:
                raise ValueError(f"manifest version {data.get('version')!r}")
            for key, item in data["files"].items():
                self.entries[key] = CacheEntry(key=key, **item)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            self.warnings.append(
                f"{path}: cache manifest is unreadable ({error}); the logs are read again"
            )
            self.entries = {}

    def lookup(
        self, files: Iterable[LogFile], selection: Selection
    ) -> tuple[dict[str, list[tuple[LogFile, CacheEntry]]], list[LogFile]]:
        """Split files into cached ones (grouped by column set) and ones to read from JSON.

        A file counts as cached when its entry's Parquet file exists and has every column of
        ``selection``.
        """
        cached: dict[str, list[tuple[LogFile, CacheEntry]]] = {}
        missing: list[LogFile] = []
        covering: dict[str, bool] = {}
        for log_file in files:
            entry = self.entries.get(file_key(log_file))
            if entry is None or not (self.folder / entry.parquet).is_file():
                missing.append(log_file)
                continue
            if entry.columns not in covering:
                covering[entry.columns] = _covers(entry.columns, selection)
            if covering[entry.columns]:
                cached.setdefault(entry.columns, []).append((log_file, entry))
            else:
                missing.append(log_file)
        return cached, missing

    def widened(self, files: Iterable[LogFile], selection: Selection) -> Selection:
        """Return ``selection`` plus the columns already cached for these files.

        Re-reading a file with the union keeps a hunt with other rules from dropping the
        columns the earlier hunts cached.
        """
        result = selection
        for columns in {
            entry.columns
            for log_file in files
            if (entry := self.entries.get(file_key(log_file))) is not None
        }:
            try:
                result = result.union(selection_from_structure(json.loads(columns)))
            except (ValueError, TypeError):
                continue
        return result

    def parquet_name(self, files: Sequence[LogFile], selection: Selection) -> str:
        """Return the Parquet file name for one batch: a hash of its keys and columns."""
        digest = hashlib.sha256(selection.key().encode("utf-8"))
        for log_file in files:
            digest.update(file_key(log_file).encode("ascii"))
        return f"records-{digest.hexdigest()[:16]}.parquet"

    def write(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        files: Sequence[LogFile],
        selection: Selection,
    ) -> Path:
        """Copy the records of ``source`` to a new Parquet file; DuckDB errors propagate."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / self.parquet_name(files, selection)
        partial = target.with_name(target.name + ".partial")
        try:
            con.execute(
                f"COPY ({source}) TO {sql_literal(str(partial))} (FORMAT parquet, COMPRESSION zstd)"
            )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def record(self, log_file: LogFile, parquet: Path, selection: Selection, records: int) -> None:
        """Point the manifest entry of one log file at the Parquet file that holds it."""
        key = file_key(log_file)
        self.entries[key] = CacheEntry(
            key=key,
            path=str(log_file.path.resolve()),
            name=log_file.name,
            parquet=parquet.name,
            columns=selection.key(),
            records=records,
        )

    def save(self) -> None:
        """Write the manifest atomically and delete Parquet files no entry refers to."""
        latest: dict[str, CacheEntry] = {}
        # A file rewritten in place gets a new key; keep only its newest entry.
        for entry in self.entries.values():
            latest[entry.path] = entry
        self.entries = {entry.key: entry for entry in latest.values()}
        data: dict[str, Any] = {
            "version": MANIFEST_VERSION,
            "files": {
                key: {
                    "path": entry.path,
                    "name": entry.name,
                    "parquet": entry.parquet,
                    "columns": entry.columns,
                    "records": entry.records,
                }
                for key, entry in sorted(self.entries.items())
            },
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / (MANIFEST + ".partial")
        partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        partial.replace(self.folder / MANIFEST)
        # NOTE: two hunts sharing one cache folder at the same time can drop each other's
        # entries, because each writes the whole manifest; the logs are then read again.
        used = {entry.parquet for entry in self.entries.values()}
        for path in self.folder.iterdir():
            if _PARQUET_NAME.fullmatch(path.name) and path.name not in used:
                path.unlink(missing_ok=True)


def _covers(columns: str, selection: Selection) -> bool:
    try:
        cached = selection_from_structure(json.loads(columns))
    except (ValueError, TypeError):
        return False
    return cached.covers(selection)


def parquet_source(folder: Path, entries: Sequence[CacheEntry]) -> str:
    """Return SQL that yields the cached records of ``entries``, which share one column set."""
    parquet_files = sorted({entry.parquet for entry in entries})
    paths = ", ".join(sql_literal(str(folder / name)) for name in parquet_files)
    wanted = ", ".join(
        f"({sql_literal(str(folder / entry.parquet))}, {sql_literal(entry.name)})"
        for entry in entries
    )
    return (
        "SELECT cached.* EXCLUDE (filename) "
        f"FROM read_parquet([{paths}], filename = true) AS cached "
        f"SEMI JOIN (VALUES {wanted}) AS wanted(parquet, source) "
        "ON cached.filename = wanted.parquet AND cached.source_file = wanted.source"
    )
