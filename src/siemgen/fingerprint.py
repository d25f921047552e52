"""Fingerprints of siemgen's code and of the installed packages, which key its caches.

The caches must be cheap to validate, because a warm run exists to be fast. So the versions
come from the names of the ``*.dist-info`` folders on ``sys.path`` instead of from
``importlib.metadata``, whose import alone takes tens of milliseconds. A package installed
any other way falls back to ``importlib.metadata``.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
_SEPARATORS = re.compile(r"[-_.]+")
_DIST_INFO = re.compile(r"(?P<name>.+?)-(?P<version>[^-]+)\.dist-info")


def _normalized(name: str) -> str:
    """Return a distribution name in the form wheel folder names use, lower case."""
    return _SEPARATORS.sub("_", name).lower()


@functools.cache
def _dist_info_versions() -> dict[str, str]:
    """Map each distribution with a ``*.dist-info`` folder on ``sys.path`` to its version."""
    versions: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = [child.name for child in Path(entry or ".").iterdir()]
        except OSError:
            continue
        for name in names:
            found = _DIST_INFO.fullmatch(name)
            if found:
                # The first entry on sys.path wins, as it does for imports.
                versions.setdefault(_normalized(found["name"]), found["version"])
    return versions


def installed_version(distribution: str) -> str:
    """Return the installed version of ``distribution``, or ``absent``."""
    version = _dist_info_versions().get(_normalized(distribution))
    if version is not None:
        return version
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def code_fingerprint(tag: str, folders: Iterable[Path] = (), packages: Iterable[str] = ()) -> str:
    """Hash siemgen's own files, the files under ``folders`` and the versions of ``packages``.

    ``tag`` names the cache format, so a change of format invalidates old entries too.
    """
    digest = hashlib.sha256(tag.encode())
    for folder in (PACKAGE, *folders):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(folder).as_posix().encode())
                digest.update(path.read_bytes())
    for name in packages:
        digest.update(f"{name}={installed_version(name)}".encode())
    return digest.hexdigest()
