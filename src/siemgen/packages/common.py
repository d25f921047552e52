"""Helpers the package builders share: rule levels, reproducible tarballs, template data."""

from __future__ import annotations

import gzip
import io
import logging
import re
import tarfile
import uuid
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import jinja2

from siemgen.errors import SiemgenError
from siemgen.render import load_template_data
from siemgen.rules import RuleFile

logger = logging.getLogger(__name__)

LEVELS = ("informational", "low", "medium", "high", "critical")
# NOTE: a rule without a level is packaged as medium. Sigma treats the key as optional, and
# the validators report the missing level separately.
DEFAULT_LEVEL = "medium"

# Every member of a generated tarball carries this modification time (1980-01-01 00:00 UTC,
# the earliest time a ZIP archive can store), so two builds give identical bytes.
ARCHIVE_MTIME = 315532800

# The namespace of the Kibana rule ids, which are uuid5(namespace, "<Sigma id>:<language>").
RULE_ID_NAMESPACE = uuid.UUID("0b5c9d1e-2f4a-5b6c-8d7e-9f0a1b2c3d4e")

# C0 control characters other than tab and line feed, and DEL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def one_line(text: str) -> str:
    """Collapse every run of whitespace and control characters in free text into one space."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())


def rule_level(rule_file: RuleFile) -> str:
    """Return the rule's Sigma level in lower case, or the default level when it has none."""
    level = rule_file.rule.level
    return level.name.lower() if level is not None else DEFAULT_LEVEL


def package_data(env: jinja2.Environment, name: str) -> dict[str, Any]:
    """Load a YAML settings file that sits beside the templates, such as ``splunk/app.yml``."""
    try:
        data = load_template_data(env, name)
    except FileNotFoundError as error:
        raise SiemgenError(
            f"package settings file {name!r} not found in the templates folder",
            hint="copy it from siemgen's templates/ folder into --templates",
        ) from error
    if not isinstance(data, Mapping):
        raise SiemgenError(
            f"package settings file {name!r} must hold a YAML mapping",
            hint="compare it with siemgen's own templates/ folder",
        )
    return dict(data)


def deterministic_tar_gz(files: Mapping[str, bytes]) -> bytes:
    """Pack files into a .tar.gz whose bytes depend only on the paths and contents.

    Members are sorted, every folder gets its own entry, owners are uid/gid 0 with no names,
    modes are 0644 and 0755, the format is plain ustar (no pax timestamps) and the gzip
    header has mtime 0 and no file name.
    """
    folders: set[str] = set()
    for relative in files:
        for parent in PurePosixPath(relative).parents:
            if str(parent) != ".":
                folders.add(str(parent))

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(folders | set(files)):
            info = tarfile.TarInfo(name)
            info.mtime = ARCHIVE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if name in files:
                data = files[name]
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                archive.addfile(info)

    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as stream:
        stream.write(buffer.getvalue())
    return compressed.getvalue()
