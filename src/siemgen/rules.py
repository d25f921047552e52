"""Find, parse and validate Sigma rule files, keeping the line of every YAML key."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siemgen.errors import ConfigError, RuleLoadError

# pySigma takes a third of a second to import and PyYAML about 10 ms. Finding rule files and
# reading the caches need neither, so both are imported where a rule is parsed.
if TYPE_CHECKING:
    import yaml
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

logger = logging.getLogger(__name__)

RULE_SUFFIXES = (".yml", ".yaml")
TESTS_SUFFIX = ".tests.json"
"""The suffix of the test events file beside a rule: ``<stem>.tests.json``."""
RULE_INPUT_SUFFIXES = (*RULE_SUFFIXES, TESTS_SUFFIX)
"""Names of the files read from rule folders: rules and their test events."""
# The file siemgen.output writes into every output folder.
OUTPUT_MANIFEST = ".siemgen-manifest.json"
# Rule files are untrusted input; a real Sigma rule is a few kilobytes.
MAX_RULE_BYTES = 2 * 1024 * 1024
# Nesting deeper than this is not a plausible rule and would exhaust the recursion limit.
MAX_YAML_DEPTH = 64
# pySigma parses and copies a condition recursively. In a measured build, nesting of about 150
# exhausted Python's default recursion limit; real rules nest a few levels.
MAX_CONDITION_DEPTH = 64

_SAFE_STEM = re.compile(r"[^A-Za-z0-9_.-]+")
_CONDITION_TOKEN = re.compile(r"\(|\)|[^\s()]+")


@functools.cache
def _loader_class() -> type[yaml.SafeLoader]:
    """Return libyaml's loader, or PyYAML's own when it was built without libyaml."""
    import yaml

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


KeyPath = tuple[str | int, ...]


@dataclass
class RuleFile:
    """One parsed rule file: its text, its data, the pySigma rule and where each key sits."""

    path: Path
    stem: str
    text: str
    data: dict[str, Any]
    rule: SigmaRule
    lines: dict[KeyPath, int] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """Return the rule title."""
        return str(self.rule.title)

    @property
    def rule_id(self) -> str:
        """Return the rule id as text, or an empty string when the rule has none."""
        return str(self.rule.id) if self.rule.id else ""

    def line_of(self, *path: str | int) -> int | None:
        """Return the 1-based line of the deepest key of ``path`` that the file contains."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def custom(self, key: str, default: Any = None) -> Any:
        """Return a custom top-level attribute of the rule (one Sigma does not define)."""
        return self.rule.custom_attributes.get(key, default)


def safe_stem(path: Path) -> str:
    """Return the rule file's stem reduced to characters that are safe in any file name."""
    stem = _SAFE_STEM.sub("_", path.stem).strip("._")
    return stem or "rule"


def rule_inputs(paths: Iterable[Path]) -> list[Path]:
    """Return the paths a command reads for ``paths``: each one, and for a rule file its tests.

    A rule folder contains its rules' test files, and a rule named alone has its test file
    beside it.
    """
    inputs = []
    for path in paths:
        inputs.append(path)
        if path.name.lower().endswith(RULE_SUFFIXES):
            inputs.append(path.with_name(path.stem + TESTS_SUFFIX))
    return inputs


def find_rule_files(paths: Iterable[Path]) -> list[Path]:
    """List the rule files under each path (a file or a folder searched recursively), sorted."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            # A siemgen output folder (it has a manifest) holds generated YAML, not rules.
            outputs = {manifest.parent for manifest in path.rglob(OUTPUT_MANIFEST)}
            for candidate in path.rglob("*"):
                if candidate.suffix.lower() not in RULE_SUFFIXES or not candidate.is_file():
                    continue
                if outputs and any(parent in outputs for parent in candidate.parents):
                    continue
                found.add(candidate)
        elif path.is_file():
            found.add(path)
        else:
            raise ConfigError(
                "rule path not found", path=path, hint="pass a rule file or a folder of rules"
            )
    return sorted(found)


def _key_lines(node: yaml.Node, path: Path) -> dict[KeyPath, int]:
    """Map every key path to its line, rejecting duplicate keys, aliases and deep nesting."""
    import yaml

    lines: dict[KeyPath, int] = {}
    seen: set[int] = set()

    def walk(current: yaml.Node, prefix: KeyPath) -> None:
        if id(current) in seen:
            raise RuleLoadError(
                "YAML anchors and aliases are not allowed in rule files",
                path=path,
                line=current.start_mark.line + 1,
                hint="write the value out in full",
            )
        seen.add(id(current))
        if len(prefix) > MAX_YAML_DEPTH:
            raise RuleLoadError(
                f"YAML nesting deeper than {MAX_YAML_DEPTH} levels",
                path=path,
                line=current.start_mark.line + 1,
            )
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in current.value:
                key = str(key_node.value)
                if key in keys:
                    raise RuleLoadError(
                        f"duplicate key {key!r}",
                        path=path,
                        line=key_node.start_mark.line + 1,
                        hint="each key may appear once in a mapping",
                    )
                keys.add(key)
                lines[(*prefix, key)] = key_node.start_mark.line + 1
                walk(value_node, (*prefix, key))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                lines[(*prefix, index)] = item.start_mark.line + 1
                walk(item, (*prefix, index))

    walk(node, ())
    return lines


def parse_yaml(text: str, path: Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Parse one YAML document into data and a key-path-to-line map."""
    # PyYAML is imported here, so that commands that only read the caches load faster.
    import yaml

    try:
        loader = _loader_class()(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise RuleLoadError(
                    "the file holds no YAML: it is empty or only comments", path=path
                )
            lines = _key_lines(node, path)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        hint = None
        if "another document" in str(error.problem):
            hint = "put each rule in a file of its own; rule collections are not supported"
        raise RuleLoadError(
            f"invalid YAML: {error.problem or error}", path=path, line=line, hint=hint
        ) from error
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise RuleLoadError(
            f"invalid YAML: character U+{int(error.character):04X} is not allowed in YAML",
            path=path,
            line=line,
            hint="remove control characters such as NUL from the file",
        ) from error
    except yaml.YAMLError as error:
        raise RuleLoadError(f"invalid YAML: {error}", path=path) from error
    if not isinstance(data, dict):
        kinds = {list: "a list", str: "a single text value", type(None): "nothing"}
        kind = kinds.get(type(data), "a single value")
        raise RuleLoadError(
            f"a rule file must hold a YAML mapping of keys, but this one holds {kind}",
            path=path,
            line=1,
        )
    return data, lines


def read_text(path: Path) -> str:
    """Read a rule file as UTF-8, rejecting oversized files and other encodings."""
    try:
        size = path.stat().st_size
        if size > MAX_RULE_BYTES:
            raise RuleLoadError(
                f"file is {size} bytes, more than the limit of {MAX_RULE_BYTES}",
                path=path,
                hint="a Sigma rule is a few kilobytes; split value lists into several rules",
            )
        raw = path.read_bytes()
    except OSError as error:
        raise RuleLoadError(f"cannot read file: {error.strerror}", path=path) from error
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise RuleLoadError(
            f"file is not valid UTF-8 (at byte offset {error.start}, counting from 0)",
            path=path,
            line=line,
            hint="save the rule as UTF-8",
        ) from error


def load_rule(path: Path) -> RuleFile:
    """Load one rule file, raising RuleLoadError with the file and line on any problem."""
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    text = read_text(path)
    data, lines = parse_yaml(text, path)
    if "correlation" in data or "filter" in data and "detection" not in data:
        raise RuleLoadError(
            "correlation and filter rules are not supported",
            path=path,
            hint="siemgen builds detection rules",
        )
    try:
        rule = SigmaRule.from_dict(data)
    except SigmaError as error:
        raise RuleLoadError(
            f"invalid Sigma rule: {error.args[0] if error.args else error}",
            path=path,
            line=_error_line(error, lines),
        ) from error
    except RecursionError as error:
        raise RuleLoadError("condition nested too deeply to parse", path=path) from error
    _check_condition_depth(data, path, lines)
    rule.source = None
    return RuleFile(path=path, stem=safe_stem(path), text=text, data=data, rule=rule, lines=lines)


def condition_depth(condition: str) -> int:
    """Return how deeply a Sigma condition nests: parentheses plus a run of ``not``."""
    deepest = 0
    depth = 0
    nots = 0
    for token in _CONDITION_TOKEN.findall(condition):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token.lower() == "not":
            nots += 1
        else:
            nots = 0
        deepest = max(deepest, depth + nots)
    return deepest


def _check_condition_depth(data: dict[str, Any], path: Path, lines: dict[KeyPath, int]) -> None:
    detection = data.get("detection")
    condition = detection.get("condition") if isinstance(detection, dict) else None
    conditions = condition if isinstance(condition, list) else [condition]
    for text in conditions:
        if isinstance(text, str) and "|" in text:
            raise RuleLoadError(
                "the aggregation syntax ('| count() ...') in conditions is no longer Sigma",
                path=path,
                line=lines.get(("detection", "condition")),
                hint="write the aggregation as a Sigma correlation rule; siemgen builds "
                "detection rules only",
            )
        if isinstance(text, str) and condition_depth(text) > MAX_CONDITION_DEPTH:
            raise RuleLoadError(
                f"condition nests {condition_depth(text)} levels deep, more than the limit "
                f"of {MAX_CONDITION_DEPTH}",
                path=path,
                line=lines.get(("detection", "condition")),
                hint="split the condition into named selections",
            )


def _error_line(error: SigmaError, lines: dict[KeyPath, int]) -> int | None:
    message = str(error.args[0]) if error.args else ""
    for key in ("condition", "detection", "logsource", "tags", "status", "level", "id", "date"):
        if key in message.lower():
            return (
                lines.get(("detection", "condition")) if key == "condition" else lines.get((key,))
            )
    return None


@dataclass
class Collection:
    """Rules loaded from disk plus the files that failed, each with its error."""

    rules: list[RuleFile]
    errors: list[RuleLoadError]

    def __iter__(self) -> Iterator[RuleFile]:
        return iter(self.rules)


def load_collection(paths: Iterable[Path]) -> Collection:
    """Load every rule under ``paths``; a broken file is recorded and the others still load."""
    rules: list[RuleFile] = []
    errors: list[RuleLoadError] = []
    stems: dict[str, Path] = {}
    for path in find_rule_files(paths):
        try:
            rule_file = load_rule(path)
        except RuleLoadError as error:
            logger.debug("rule file %s failed to load: %s", path, error)
            errors.append(error)
            continue
        if rule_file.stem in stems:
            errors.append(
                RuleLoadError(
                    f"output name {rule_file.stem!r} is already used by {stems[rule_file.stem]}",
                    path=path,
                    hint="rename one of the two rule files",
                )
            )
            continue
        stems[rule_file.stem] = path
        rules.append(rule_file)
    return Collection(rules=rules, errors=errors)
