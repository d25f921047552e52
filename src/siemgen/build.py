"""Load rules, convert them, render query files and pages, and write the output folder."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from siemgen import pages
from siemgen.convert import Converter, RuleBuild
from siemgen.errors import SiemgenError
from siemgen.output import OutputTree, WriteReport
from siemgen.render import environment, load_template_data, render
from siemgen.rules import Collection, load_collection
from siemgen.targets import Target, TargetOptions, all_targets

logger = logging.getLogger(__name__)

Files = dict[str, bytes]
# An artifact builder turns the converted rules into extra files (a Splunk app, Kibana rules...).
ArtifactBuilder = Callable[[list[RuleBuild], TargetOptions, jinja2.Environment], Files]


@dataclass
class TargetCount:
    """How many rules one target built and how many failed."""

    built: int = 0
    failed: int = 0


@dataclass
class BuildResult:
    """The outcome of one build: what was generated, what failed, and what was written."""

    builds: list[RuleBuild]
    collection: Collection
    files: Files
    counts: dict[str, TargetCount]
    errors: list[SiemgenError] = field(default_factory=list)
    report: WriteReport | None = None

    @property
    def ok(self) -> bool:
        """Tell whether every rule loaded and built for every target."""
        return not self.errors

    def summary(self) -> str:
        """Return one line of counts per target."""
        parts = [
            f"{name} {count.built} built, {count.failed} failed"
            for name, count in self.counts.items()
        ]
        loaded = len(self.collection.rules)
        broken = len(self.collection.errors)
        head = f"{loaded} rules loaded" + (f", {broken} files rejected" if broken else "")
        return f"{head}; " + "; ".join(parts)


def _attack_context(build: RuleBuild) -> dict[str, list[dict[str, str]]]:
    from siemgen.attack import load_attack

    resolved = load_attack().resolve_tags(build.rule.rule.tags)
    return {
        "tactics": [{"id": t.id, "name": t.name, "url": t.url} for t in resolved.tactics],
        "techniques": [{"id": t.id, "name": t.name, "url": t.url} for t in resolved.techniques],
    }


def _page(build: RuleBuild, env: jinja2.Environment, targets: Iterable[Target]) -> str:
    sources = load_template_data(env, "logsources.yml")
    service = build.rule.rule.logsource.service or ""
    source = sources.get(service, {"title": service, "link": "", "image": ""})
    queries = []
    failures = []
    failed = {error.target: error for error in build.errors}
    for target in targets:
        for output_format in target.formats:
            text = build.query(target.name, output_format.name)
            if text is not None:
                queries.append(
                    {"title": output_format.title, "language": output_format.language, "text": text}
                )
        for label, error in failed.items():
            if label and label.split("/")[0] == target.name:
                failures.append({"title": target.title, "reason": error.message})
    try:
        attack = _attack_context(build)
    except SiemgenError as error:
        error.path = error.path or build.rule.path
        error.line = error.line or build.rule.line_of("tags")
        raise
    context = pages.page_context(build.rule, queries, failures, attack, source)
    return render(env, "page.md.j2", **context)


def _framework_label(item: pages.Compliance) -> str:
    return pages.Compliance(item.framework, "", item.version).label.strip()


def _index(builds: list[RuleBuild], env: jinja2.Environment, targets: list[Target]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    ungrouped: list[dict[str, Any]] = []
    mapped: list[tuple[list[pages.Compliance], dict[str, Any]]] = []
    for build in builds:
        failed = {(error.target or "").split("/")[0] for error in build.errors}
        rule: dict[str, Any] = {
            "title": build.rule.title,
            "page": f"{build.rule.stem}.md",
            "level": build.rule.rule.level.name.lower() if build.rule.rule.level else "unset",
            "built": [t.title for t in targets if t.name not in failed],
        }
        items = pages.compliance(build.rule)
        if not items:
            ungrouped.append(rule)
            continue
        mapped.append((items, rule))
        for item in items:
            groups.setdefault(_framework_label(item), []).append(
                {"control": item.control, "rule": rule}
            )

    columns = sorted({_framework_label(item) for items, _ in mapped for item in items})
    rows = []
    for items, rule in mapped:
        by_column = {_framework_label(item): item.control for item in items}
        rows.append({"cells": [by_column.get(column, "") for column in columns], "rule": rule})
    rows.sort(key=lambda row: [_control_key(cell) for cell in row["cells"]])

    return render(
        env,
        "index.md.j2",
        rules=builds,
        targets=targets,
        groups=[
            {"title": title, "entries": sorted(entries, key=lambda e: _control_key(e["control"]))}
            for title, entries in sorted(groups.items())
        ],
        ungrouped=ungrouped,
        control_map={"columns": columns, "rows": rows} if rows else None,
    )


def _control_key(control: str) -> tuple[Any, ...]:
    """Sort control ids such as 3.10 after 3.9 and CloudWatch.10 after CloudWatch.9."""
    parts: list[Any] = []
    for piece in control.replace("-", ".").split("."):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return tuple(parts) if control else ((2, 0, ""),)


def _safe_page(
    build: RuleBuild, env: jinja2.Environment, targets: list[Target]
) -> tuple[str | None, SiemgenError | None]:
    """Render a rule's page, turning any failure into an error that names the rule file."""
    from sigma.exceptions import SigmaError

    rule_file = build.rule
    try:
        return _page(build, env, targets), None
    except SiemgenError as error:
        error.path = error.path or rule_file.path
        error.target = error.target or "docs"
        return None, error
    except SigmaError as error:
        message = str(error.args[0]) if error.args else str(error)
        return None, SiemgenError(message, path=rule_file.path, target="docs")
    except RecursionError:
        return None, SiemgenError(
            "condition nested too deeply to render the page", path=rule_file.path, target="docs"
        )


def _duplicate_ids(builds: list[RuleBuild]) -> list[SiemgenError]:
    """Report every rule that reuses the id of an earlier rule (packages key rules by id)."""
    first: dict[str, RuleBuild] = {}
    errors = []
    for build in builds:
        rule_id = build.rule.rule_id
        if not rule_id:
            continue
        if rule_id in first:
            errors.append(
                SiemgenError(
                    f"rule id {rule_id} is already used by {first[rule_id].rule.path}",
                    path=build.rule.path,
                    line=build.rule.line_of("id"),
                    target="packages",
                    hint="give each rule its own id; the rule is left out of the packages",
                )
            )
        else:
            first[rule_id] = build
    return errors


def _packages(
    builds: list[RuleBuild],
    artifacts: Iterable[ArtifactBuilder],
    options: TargetOptions,
    env: jinja2.Environment,
    errors: list[SiemgenError],
) -> Files:
    """Run each artifact builder, leaving out a rule that makes it fail and trying again."""
    files: Files = {}
    for builder in artifacts:
        rules = list(builds)
        while rules:
            try:
                files.update(builder(rules, options, env))
                break
            except SiemgenError as error:
                errors.append(error)
                remaining = [b for b in rules if error.path is None or b.rule.path != error.path]
                if len(remaining) == len(rules):
                    break
                rules = remaining
    return files


def generate(
    collection: Collection,
    options: TargetOptions | None = None,
    templates: Path | None = None,
    artifacts: Iterable[ArtifactBuilder] = (),
) -> BuildResult:
    """Convert and render every rule into an in-memory map of output files."""
    options = options or TargetOptions()
    env = environment(templates)
    converter = Converter(options)
    targets = list(all_targets())
    counts = {target.name: TargetCount() for target in targets}
    counts["docs"] = TargetCount()
    builds = []
    files: Files = {}
    errors: list[SiemgenError] = list(collection.errors)
    # A rule whose page fails (an unknown ATT&CK tag, say) would fail every package that
    # carries its metadata, so it is left out of the packages and reported once.
    unpackaged: set[Path] = set()
    for rule_file in collection.rules:
        build = converter.build(rule_file, targets)
        builds.append(build)
        errors.extend(build.errors)
        failed = {(error.target or "").split("/")[0] for error in build.errors}
        for target in targets:
            counts[target.name].failed += target.name in failed
            counts[target.name].built += target.name not in failed
        for query in build.queries:
            output_format = next(t for t in targets if t.name == query.target).format(query.format)
            files[f"{query.target}/{rule_file.stem}{output_format.suffix}"] = render(
                env, "queries/query.j2", query=query.text
            ).encode()
        page, page_error = _safe_page(build, env, targets)
        if page is not None:
            files[f"docs/{rule_file.stem}.md"] = page.encode()
            counts["docs"].built += 1
        if page_error is not None:
            errors.append(page_error)
            counts["docs"].failed += 1
            unpackaged.add(rule_file.path)

    duplicates = _duplicate_ids(builds)
    errors.extend(duplicates)
    unpackaged.update(error.path for error in duplicates if error.path)
    files["docs/index.md"] = _index(builds, env, targets).encode()
    packaged = [build for build in builds if build.rule.path not in unpackaged]
    files.update(_packages(packaged, artifacts, options, env, errors))
    return BuildResult(
        builds=builds, collection=collection, files=files, counts=counts, errors=errors
    )


def build(
    rule_paths: Iterable[Path],
    out: Path,
    options: TargetOptions | None = None,
    templates: Path | None = None,
    packages: bool = True,
) -> BuildResult:
    """Build every rule under ``rule_paths`` and write the results into ``out``.

    ``packages=False`` writes only query files and pages, the content a repository commits.
    """
    collection = load_collection(rule_paths)
    artifacts = default_artifacts() if packages else []
    result = generate(collection, options, templates, artifacts)
    result.report = OutputTree(out).write(result.files)
    return result


def default_artifacts() -> list[ArtifactBuilder]:
    """Return the artifact builders that every build runs: the deployable packages."""
    from siemgen.packages import package_builders

    return list(package_builders())
