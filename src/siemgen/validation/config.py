"""The ``validation`` section of a repository's ``.siemgen.yml`` or ``siemgen.toml``.

```yaml
validation:
  exclusions:
    - rule: aws_iam_policy_changed        # rule id or file stem
      validator: sigmahq_title_case
      reason: the title names the API call as AWS spells it
```

The same table in TOML is ``[[validation.exclusions]]`` with the same three keys.
"""

from __future__ import annotations

import difflib
import logging
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from siemgen.errors import ConfigError
from siemgen.locations import find_config

logger = logging.getLogger(__name__)

_EXCLUSION_KEYS = ("rule", "validator", "reason")


@dataclass(frozen=True)
class Exclusion:
    """A validator switched off for one rule, with the reason the repository gives."""

    rule: str
    validator: str
    reason: str
    line: int | None = None


@dataclass(frozen=True)
class ValidationConfig:
    """Validation settings read from the repository's configuration file."""

    exclusions: tuple[Exclusion, ...] = ()
    path: Path | None = None
    known_validators: frozenset[str] = field(default_factory=frozenset, compare=False)

    def excludes(self, rule_keys: Iterable[str], validator: str) -> Exclusion | None:
        """Return the exclusion that switches ``validator`` off for a rule, if one does."""
        keys = {key for key in rule_keys if key}
        for exclusion in self.exclusions:
            if exclusion.validator == validator and exclusion.rule in keys:
                return exclusion
        return None


def load_config(location: Path, known_validators: Iterable[str] | None = None) -> ValidationConfig:
    """Read the validation settings from a configuration file or a repository root folder.

    A folder without a configuration file gives the default, empty configuration. When
    ``known_validators`` is given, an exclusion naming any other validator is rejected.
    """
    if known_validators is None:
        from siemgen.validation.registry import validator_names

        known_validators = validator_names()
    known = frozenset(known_validators)
    path = find_config(location) if location.is_dir() else location
    if path is None:
        return ValidationConfig(known_validators=known)
    if not path.is_file():
        raise ConfigError("configuration file not found", path=path)
    section, lines = _read_section(path)
    exclusions = _parse_exclusions(section, lines, path, known)
    logger.debug("read %d validation exclusions from %s", len(exclusions), path)
    return ValidationConfig(exclusions=exclusions, path=path, known_validators=known)


def _read_section(path: Path) -> tuple[Any, list[int | None]]:
    """Return the ``validation`` section and the line of each exclusion entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"failed to read the configuration file: {error}", path=path) from error
    if path.suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"invalid TOML: {error}", path=path) from error
        lines: list[int | None] = []
    else:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            raise ConfigError(
                f"invalid YAML: {error}", path=path, line=mark.line + 1 if mark else None
            ) from error
        lines = _exclusion_lines(node)
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError("the configuration file must hold a mapping", path=path, line=1)
    return data.get("validation", {}), lines


def _exclusion_lines(node: yaml.Node | None) -> list[int | None]:
    """Return the line of each item of ``validation.exclusions`` in a composed YAML tree."""
    for key in ("validation", "exclusions"):
        if not isinstance(node, yaml.MappingNode):
            return []
        node = next((value for name, value in node.value if name.value == key), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _parse_exclusions(
    section: Any, lines: list[int | None], path: Path, known: frozenset[str]
) -> tuple[Exclusion, ...]:
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise ConfigError("'validation' must be a mapping", path=path)
    unknown_keys = sorted(set(section) - {"exclusions"})
    if unknown_keys:
        raise ConfigError(
            f"unknown key {unknown_keys[0]!r} in 'validation'",
            path=path,
            hint="the validation section takes only 'exclusions'",
        )
    entries = section.get("exclusions") or []
    if not isinstance(entries, list):
        raise ConfigError("'validation.exclusions' must be a list", path=path)
    exclusions = []
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else None
        exclusions.append(_parse_exclusion(entry, index, line, path, known))
    return tuple(exclusions)


def _parse_exclusion(
    entry: Any, index: int, line: int | None, path: Path, known: frozenset[str]
) -> Exclusion:
    where = f"exclusion {index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{where} must be a mapping with {', '.join(_EXCLUSION_KEYS)}", path=path, line=line
        )
    unknown_keys = sorted(set(entry) - set(_EXCLUSION_KEYS))
    if unknown_keys:
        raise ConfigError(
            f"unknown key {unknown_keys[0]!r} in {where}",
            path=path,
            line=line,
            hint="an exclusion takes rule, validator and reason",
        )
    values: dict[str, str] = {}
    for key in _EXCLUSION_KEYS:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            hint = "say why the validator does not apply to this rule" if key == "reason" else None
            raise ConfigError(
                f"{where} has no {key!r}, or it is not a non-empty string: {value!r}",
                path=path,
                line=line,
                hint=hint,
            )
        values[key] = value.strip()
    if known and values["validator"] not in known:
        close = difflib.get_close_matches(values["validator"], sorted(known), n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else "siemgen.validate.validator_report() lists the validator names"
        )
        raise ConfigError(
            f"{where} names unknown validator {values['validator']!r}",
            path=path,
            line=line,
            hint=hint,
        )
    return Exclusion(values["rule"], values["validator"], values["reason"], line)
