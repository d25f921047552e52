"""Where siemgen finds its templates and a repository's configuration file.

This module imports nothing heavy, so that a `siemgen check` served from its cache starts
without loading pySigma or Jinja.
"""

from __future__ import annotations

from pathlib import Path

from siemgen.errors import ConfigError

DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
CONFIG_NAMES = (".siemgen.yml", ".siemgen.yaml", "siemgen.toml")


def find_config(root: Path) -> Path | None:
    """Return the configuration file in ``root``, or None when it has none."""
    present = [root / name for name in CONFIG_NAMES if (root / name).is_file()]
    if len(present) > 1:
        raise ConfigError(
            "more than one siemgen configuration file: " + ", ".join(p.name for p in present),
            path=root,
            hint="keep one of them",
        )
    return present[0] if present else None
