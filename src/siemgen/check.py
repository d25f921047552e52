"""`siemgen check`: validation, rule tests and drift in one pass, with a result cache.

The cache holds, per rule file, the findings of the per-rule stages (validation and tests),
keyed by the rule's text, its test file, the configuration and a fingerprint of siemgen's own
code, templates and dependencies. A run where no key changed reads everything from the cache
without importing pySigma; any change re-validates and re-tests only the changed rules, and
rebuilds the generated content for the drift check. Checks across rules (unique ids and
titles) always run on every rule.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siemgen.errors import ConfigError
from siemgen.findings import Finding, relative_path
from siemgen.rules import TESTS_SUFFIX
from siemgen.targets import TargetOptions

logger = logging.getLogger(__name__)

CACHE_VERSION = "check-1"
# Validators whose findings depend on other rules. Their results are never cached per rule;
# _cross_rule_findings computes the same checks over every rule on each run.
CROSS_RULE_CODES = frozenset({"identifier_uniqueness", "duplicate_title", "duplicate_filename"})
_DEPENDENCIES = (
    "pySigma",
    "pySigma-backend-splunk",
    "pySigma-backend-elasticsearch",
    "pySigma-validators-sigmahq",
    "duckdb",
    "eql",
    "sqlglot",
    "luqum",
    "Jinja2",
)


@dataclass
class CheckOptions:
    """What `siemgen check` looks at and how."""

    root: Path
    rules: list[Path]
    generated: Path | None = None
    changed_since: str | None = None
    cache: Path | None = None
    targets: TargetOptions = field(default_factory=TargetOptions)
    templates: Path | None = None


@dataclass
class CheckResult:
    """The findings of one check and what was looked at."""

    findings: list[Finding]
    checked: list[str]
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def ok(self) -> bool:
        """Tell whether the check found no error."""
        return not any(finding.severity == "error" for finding in self.findings)


def tests_path(rule_path: Path) -> Path:
    """Return the test-events file that belongs to a rule file."""
    return rule_path.with_name(rule_path.name.rsplit(".", 1)[0] + TESTS_SUFFIX)


def code_fingerprint(templates: Path | None) -> str:
    """Hash siemgen's own code, data and templates and its dependencies' versions."""
    from siemgen.fingerprint import code_fingerprint as fingerprint
    from siemgen.locations import DEFAULT_TEMPLATES

    return fingerprint(CACHE_VERSION, [templates or DEFAULT_TEMPLATES], _DEPENDENCIES)


def _rule_key(fingerprint: str, rule_path: Path, root: Path, config_text: str, options: str) -> str:
    digest = hashlib.sha256(fingerprint.encode())
    digest.update(config_text.encode())
    digest.update(options.encode())
    # Findings name the file by its path in the repository, so the path is part of the key.
    # Python keeps the bytes of a name that is not UTF-8 as surrogates, and surrogateescape
    # encodes them back.
    digest.update(relative_path(rule_path, root).encode("utf-8", "surrogateescape"))
    digest.update(rule_path.read_bytes())
    tests = tests_path(rule_path)
    digest.update(tests.read_bytes() if tests.exists() else b"\0no tests")
    return digest.hexdigest()


def changed_files(root: Path, ref: str) -> set[Path]:
    """List files changed against a git ref: committed since it, staged, unstaged, untracked.

    ``root`` may be any folder inside the repository. git lists paths from the top of the
    repository, so the paths are resolved against it, not against ``root``.
    """
    top = _git(["git", "rev-parse", "--show-toplevel"], root, ref)
    # rev-parse ends the path with a newline, and a path may itself end in one.
    top_level = Path(os.fsdecode(top[:-1] if top.endswith(b"\n") else top))
    # --end-of-options (git 2.24 and later) makes git read the ref as a revision even when it
    # starts with "-", so that a ref such as --output=FILE cannot make git write a file.
    # -z lists each name as it is, ended by NUL. Without it, git quotes a name that has a
    # control character or a byte above 0x7f ("caf\303\251.yml"), which then matches no file.
    diff = ["git", "diff", "--name-only", "--no-renames", "-z"]
    commands = [
        [*diff, "--end-of-options", f"{ref}...HEAD", "--"],
        [*diff, "HEAD", "--"],
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
    ]
    changed: set[Path] = set()
    for command in commands:
        output = _git(command, top_level, ref)
        changed.update(
            (top_level / os.fsdecode(name)).resolve() for name in output.split(b"\0") if name
        )
    return changed


def _git(command: list[str], folder: Path, ref: str) -> bytes:
    """Run a git command in ``folder`` and return its output, raising ConfigError on failure."""
    try:
        return subprocess.run(
            command, cwd=folder, check=True, capture_output=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        stderr = getattr(error, "stderr", None)
        detail = stderr.decode("utf-8", "replace") if stderr else str(error)
        raise ConfigError(
            f"cannot list the files changed since {ref!r}: {detail.strip()}",
            path=folder,
            hint="pass a branch, tag or commit that exists, e.g. --changed-since origin/main",
        ) from error


class Cache:
    """A folder of JSON files, one per key; deleting the folder clears it."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder / CACHE_VERSION if folder else None

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the entry stored under ``key``, or None."""
        if self.folder is None:
            return None
        path = self.folder / f"{key}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` under ``key``; a cache that cannot be written is skipped."""
        if self.folder is None:
            return
        from siemgen.output import atomic_write

        try:
            data = json.dumps(entry, sort_keys=True).encode()
            atomic_write(self.folder / f"{key}.json", data)
        except OSError as error:
            logger.warning("cannot write the check cache in %s: %s", self.folder, error)


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return asdict(finding)


def _finding_from(data: dict[str, Any]) -> Finding:
    return Finding(**data)


def run_check(options: CheckOptions) -> CheckResult:
    """Validate, test and drift-check the rules, reusing cached per-rule results."""
    from siemgen.rules import find_rule_files

    rule_paths = [path for path in find_rule_files(options.rules)]
    config_path = _config_path(options.root)
    config_text = config_path.read_text(encoding="utf-8") if config_path else ""
    fingerprint = code_fingerprint(options.templates)
    option_text = json.dumps(asdict(options.targets), sort_keys=True)
    keys = {
        path: _rule_key(fingerprint, path, options.root, config_text, option_text)
        for path in rule_paths
    }
    cache = Cache(options.cache)

    cached = {path: cache.get(key) for path, key in keys.items()}
    misses = [path for path, entry in cached.items() if entry is None]
    combined = hashlib.sha256("".join(sorted(keys.values())).encode()).hexdigest()
    generated_key = f"generated-{combined}"
    generated_entry = cache.get(generated_key) if options.generated else None

    fresh_entries: dict[Path, dict[str, Any]] = {}
    generated_files: dict[str, str] | None = None
    if misses or (options.generated and generated_entry is None):
        fresh_entries, generated_files = _evaluate(options, rule_paths, misses, config_path)
        for path, entry in fresh_entries.items():
            cache.put(keys[path], entry)
        if options.generated and generated_files is not None:
            cache.put(generated_key, {"files": generated_files})
    elif generated_entry is not None:
        generated_files = generated_entry["files"]

    entries = {path: fresh_entries.get(path) or cached[path] or {} for path in rule_paths}
    findings: list[Finding] = []
    for path in rule_paths:
        findings.extend(_finding_from(item) for item in entries[path].get("findings", []))
    findings.extend(_cross_rule_findings(entries, options.root))
    if options.generated and generated_files is not None:
        from siemgen.drift import REFRESH, drift_findings

        refresh = REFRESH.format(
            rules=" --rules ".join(relative_path(p, options.root) for p in options.rules),
            folder=relative_path(options.generated, options.root),
        )
        findings.extend(
            drift_findings(
                {name: text.encode() for name, text in generated_files.items()},
                options.generated,
                options.root,
                refresh,
            )
        )

    checked = [relative_path(path, options.root) for path in rule_paths]
    if options.changed_since:
        changed = changed_files(options.root, options.changed_since)
        chosen = [
            path
            for path in rule_paths
            if path.resolve() in changed or tests_path(path).resolve() in changed
        ]
        # A rule's findings sit on the rule file or, for its tests, on its test file.
        selected = {relative_path(path, options.root) for path in chosen}
        selected |= {relative_path(tests_path(path), options.root) for path in chosen}
        findings = [f for f in findings if f.path in selected or f.stage == "drift"]
        checked = sorted(relative_path(path, options.root) for path in chosen)
    findings.sort(key=lambda f: (f.path, f.line or 0, f.stage, f.code, f.message))
    hits = len(rule_paths) - len(misses)
    return CheckResult(findings, checked, cache_hits=hits, cache_misses=len(misses))


def _config_path(root: Path) -> Path | None:
    from siemgen.locations import find_config

    return find_config(root)


def _cross_rule_findings(entries: dict[Path, dict[str, Any]], root: Path) -> list[Finding]:
    """Report rule ids and titles that more than one rule file uses."""
    findings = []
    checks = (
        ("id", "identifier_uniqueness", "id"),
        ("title", "duplicate_title", "title"),
        ("stem", "duplicate_filename", "file name"),
    )
    for key, code, label in checks:
        owners: dict[str, list[Path]] = {}
        for path, entry in entries.items():
            value = entry.get("meta", {}).get(key)
            if value:
                owners.setdefault(value, []).append(path)
        for value, paths in owners.items():
            if len(paths) < 2:
                continue
            for path in paths:
                others = ", ".join(relative_path(p, root) for p in paths if p != path)
                meta = entries[path].get("meta", {})
                findings.append(
                    Finding(
                        relative_path(path, root),
                        meta.get(f"{key}_line"),
                        "validation",
                        code,
                        f"rule {label} {value!r} is also used by {others}",
                        rule_id=meta.get("id", ""),
                        title=meta.get("title", ""),
                    )
                )
    return findings


def _evaluate(
    options: CheckOptions,
    rule_paths: list[Path],
    misses: Iterable[Path],
    config_path: Path | None,
) -> tuple[dict[Path, dict[str, Any]], dict[str, str] | None]:
    """Run the per-rule stages on the rules that missed the cache, and build for drift."""
    from siemgen.build import generate
    from siemgen.rules import Collection, load_collection

    collection = load_collection(rule_paths)
    by_path = {rule.path: rule for rule in collection.rules}
    missing = set(misses)
    entries: dict[Path, dict[str, Any]] = {}
    for path in rule_paths:
        if path not in missing:
            continue
        rule = by_path.get(path)
        meta: dict[str, Any] = {}
        if rule is not None:
            meta = {
                "id": rule.rule_id,
                "title": rule.title,
                "stem": path.name,
                "id_line": rule.line_of("id"),
                "title_line": rule.line_of("title"),
            }
        entries[path] = {"meta": meta, "findings": []}

    for error in collection.errors:
        if error.path in entries:
            entries[error.path]["findings"].append(
                _finding_dict(
                    Finding(
                        relative_path(error.path, options.root),
                        error.line,
                        "load",
                        "invalid_rule_file",
                        error.message + (f" ({error.hint})" if error.hint else ""),
                    )
                )
            )

    subset = Collection(
        rules=[by_path[p] for p in rule_paths if p in missing and p in by_path], errors=[]
    )
    for finding in _validation_findings(subset, config_path, options.root):
        if finding.code in CROSS_RULE_CODES:
            continue
        entries[_entry_path(finding.path, options.root, entries)]["findings"].append(
            _finding_dict(finding)
        )
    for finding in _test_findings(subset, options):
        entries[_entry_path(finding.path, options.root, entries)]["findings"].append(
            _finding_dict(finding)
        )

    generated: dict[str, str] | None = None
    if options.generated:
        result = generate(collection, options.targets, options.templates, artifacts=())
        generated = {name: data.decode() for name, data in sorted(result.files.items())}
    return entries, generated


def _entry_path(shown: str, root: Path, entries: dict[Path, dict[str, Any]]) -> Path:
    for path in entries:
        if relative_path(path, root) == shown or relative_path(tests_path(path), root) == shown:
            return path
    raise KeyError(shown)


def _validation_findings(collection: Any, config_path: Path | None, root: Path) -> list[Finding]:
    from siemgen.validate import load_config, validate_collection

    config = load_config(config_path or root)
    results = []
    for item in validate_collection(collection, config, partial=True):
        # A missing key has no line of its own; line 1 puts the annotation on the file.
        results.append(
            Finding(
                relative_path(item.path, root),
                item.line or 1,
                "validation",
                item.validator,
                item.message,
                severity=item.severity,
                rule_id=item.rule_id,
                title=item.title,
            )
        )
    return results


def _test_findings(collection: Any, options: CheckOptions) -> list[Finding]:
    """Run the rule tests and turn every failed group and rule problem into a finding."""
    from siemgen.ruletest import run_tests

    report = run_tests(collection, options.targets)
    findings: list[Finding] = []
    for error in report.errors:
        findings.append(
            Finding(
                relative_path(error.path, options.root),
                error.line or 1,
                "test",
                "invalid_tests",
                error.message + (f" ({error.hint})" if error.hint else ""),
            )
        )
    for rule in report.rules:
        tests_file = rule.tests_path if rule.tests_path and rule.tests_path.exists() else None
        shown = relative_path(tests_file or rule.path, options.root)
        text = tests_file.read_text(encoding="utf-8") if tests_file else ""
        for problem in rule.problems:
            findings.append(Finding(shown, 1, "test", "rule_tests", problem, title=rule.title))
        for target in rule.targets:
            for problem in target.problems:
                findings.append(Finding(shown, 1, "test", target.target, problem, title=rule.title))
            for group in target.groups:
                if group.ok:
                    continue
                failures = group.failures
                message = (
                    f"{target.target}: group {group.name!r} has {len(failures)} record(s) "
                    "with an unexpected verdict"
                )
                detail = "\n".join(record.describe() for record in failures)
                findings.append(
                    Finding(
                        shown,
                        _line_of_text(text, f'"{group.name}"'),
                        "test",
                        target.target,
                        message,
                        title=rule.title,
                        detail=detail,
                    )
                )
    return findings


def _line_of_text(text: str, needle: str) -> int:
    """Return the 1-based line where ``needle`` first appears, or 1."""
    index = text.find(needle)
    return text[:index].count("\n") + 1 if index >= 0 else 1
