"""Package the rules as Kibana detection rules in an NDJSON file for the rule import.

Each Sigma rule gives one Kibana rule per query language: Lucene (``type: query``), EQL
(``type: eql``) and ES|QL (``type: esql``). Field names and types follow the detection rule
schema of Kibana's detection engine API. The ATT&CK ``threat`` mapping is built from the
ATT&CK data siemgen ships (``siemgen.attack``), so nothing is downloaded. pySigma's Elastic
``siem_rule`` formats are not used, because they download ATT&CK data.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import jinja2

import siemgen
from siemgen.attack import AttackData, Tactic, Technique, load_attack
from siemgen.convert import RuleBuild
from siemgen.errors import SiemgenError
from siemgen.packages.common import RULE_ID_NAMESPACE, one_line, package_data, rule_level
from siemgen.pages import compliance
from siemgen.render import render
from siemgen.rules import RuleFile
from siemgen.targets import TargetOptions

logger = logging.getLogger(__name__)

SETTINGS = "kibana/rules.yml"
OUTPUT = "elastic/rules.ndjson"
FRAMEWORK = "MITRE ATT&CK"

# Elastic's prebuilt rules use these risk scores. Kibana has no informational severity.
SEVERITY = {
    "informational": ("low", 21),
    "low": ("low", 21),
    "medium": ("medium", 47),
    "high": ("high", 73),
    "critical": ("critical", 99),
}


@dataclass(frozen=True)
class Language:
    """One Kibana rule flavour: the siemgen format it takes its query from and its type."""

    format: str
    rule_type: str
    language: str
    label: str
    has_index: bool


LANGUAGES = (
    Language("lucene", "query", "lucene", "Lucene", True),
    Language("eql", "eql", "eql", "EQL", True),
    # An ES|QL query names its indices in FROM, and the rule schema has no index for it.
    Language("esql", "esql", "esql", "ES|QL", False),
)


def kibana_rule_id(rule_file: RuleFile, language: Language) -> str:
    """Derive a stable rule_id from the Sigma id (or the file stem) and the language."""
    source = rule_file.rule_id or f"stem:{rule_file.stem}"
    return str(uuid.uuid5(RULE_ID_NAMESPACE, f"{source}:{language.language}"))


def _technique_entry(technique: Technique, subtechniques: list[Technique]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": technique.id,
        "name": technique.name,
        "reference": technique.url,
    }
    if subtechniques:
        entry["subtechnique"] = [
            {"id": sub.id, "name": sub.name, "reference": sub.url} for sub in subtechniques
        ]
    return entry


def threat(rule_file: RuleFile, attack: AttackData | None = None) -> list[dict[str, Any]]:
    """Build the ``threat`` array from the rule's ``attack.*`` tags.

    Each tagged tactic gets one entry with the tagged techniques that belong to it, and a
    sub-technique is listed under its parent. A technique whose tactics the rule does not tag
    is listed under its own tactics from the ATT&CK data. An unknown tag raises SiemgenError.
    """
    data = attack or load_attack()
    resolved = data.resolve_tags(rule_file.rule.tags, path=rule_file.path, rule=rule_file.title)
    tactics: list[Tactic] = []
    for tactic in resolved.tactics:
        if tactic not in tactics:
            tactics.append(tactic)

    parents: list[Technique] = []
    subtechniques: dict[str, list[Technique]] = {}
    for technique in resolved.techniques:
        parent = data.technique(technique.parent) if technique.parent else technique
        if parent not in parents:
            parents.append(parent)
        if technique.parent:
            subs = subtechniques.setdefault(parent.id, [])
            if technique not in subs:
                subs.append(technique)

    placed: dict[str, list[dict[str, Any]]] = {tactic.id: [] for tactic in tactics}
    for parent in parents:
        subs = subtechniques.get(parent.id, [])
        shortnames: list[str] = []
        for technique in (parent, *subs):
            shortnames.extend(name for name in technique.tactics if name not in shortnames)
        homes = [tactic for tactic in tactics if tactic.shortname in shortnames]
        if not homes:
            homes = [data.tactics[name] for name in shortnames if name in data.tactics]
            for tactic in homes:
                if tactic not in tactics:
                    tactics.append(tactic)
                    placed[tactic.id] = []
        for tactic in homes:
            placed[tactic.id].append(_technique_entry(parent, subs))

    entries = []
    for tactic in tactics:
        entry: dict[str, Any] = {
            "framework": FRAMEWORK,
            "tactic": {"id": tactic.id, "name": tactic.name, "reference": tactic.url},
        }
        if placed[tactic.id]:
            entry["technique"] = placed[tactic.id]
        entries.append(entry)
    return entries


def _tags(
    rule_file: RuleFile, settings: dict[str, Any], threats: list[dict[str, Any]], label: str
) -> list[str]:
    tags = [str(tag) for tag in settings.get("tags", [])]
    tags.extend(f"Tactic: {entry['tactic']['name']}" for entry in threats)
    tags.extend(f"Compliance: {item.label}" for item in compliance(rule_file))
    tags.append(f"Language: {label}")
    unique: list[str] = []
    for tag in tags:
        if tag not in unique:
            unique.append(tag)
    return unique


def _note(rule_file: RuleFile, env: jinja2.Environment) -> str:
    return render(
        env,
        "kibana/note.md.j2",
        triage=[str(step) for step in rule_file.custom("triage", []) or []],
        notes=[str(note) for note in rule_file.custom("notes", []) or []],
        title=rule_file.title,
        rule_id=rule_file.rule_id,
        siemgen_version=siemgen.__version__,
    )


def kibana_rules(
    build: RuleBuild, options: TargetOptions, env: jinja2.Environment, settings: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return the Kibana rule objects of one Sigma rule, one per language that built.

    A language whose conversion failed is left out, because the build reports it already.
    """
    rule_file = build.rule
    rule = rule_file.rule
    severity, risk_score = SEVERITY[rule_level(rule_file)]
    threats = threat(rule_file)
    note = _note(rule_file, env)
    license_text = str(rule.license or settings["license"])
    objects = []
    for language in LANGUAGES:
        query = build.query("elastic", language.format)
        if query is None:
            continue
        body: dict[str, Any] = {
            "rule_id": kibana_rule_id(rule_file, language),
            "name": f"{one_line(rule.title)} ({language.label})",
            "description": (rule.description or rule.title).strip(),
            "type": language.rule_type,
            "language": language.language,
            "query": query,
            "severity": severity,
            "risk_score": risk_score,
            "interval": str(settings["interval"]),
            "from": str(settings["from"]),
            "to": "now",
            "enabled": bool(settings["enabled"]),
            "max_signals": int(settings["max_signals"]),
            "timestamp_override": str(settings["timestamp_override"]),
            "references": [str(url) for url in rule.references],
            "false_positives": [str(item) for item in rule.falsepositives],
            "tags": _tags(rule_file, settings, threats, language.label),
            "author": [rule.author] if rule.author else [],
            "license": license_text,
            "version": 1,
            "threat": threats,
            "note": note,
        }
        if language.has_index:
            body["index"] = [options.elastic_index]
        objects.append(body)
    return objects


def _load_settings(env: jinja2.Environment) -> dict[str, Any]:
    settings = package_data(env, SETTINGS)
    missing = [
        key
        for key in ("interval", "from", "enabled", "max_signals", "timestamp_override", "license")
        if key not in settings
    ]
    if missing:
        raise SiemgenError(
            f"{SETTINGS} is missing the settings {', '.join(missing)}",
            hint="compare it with siemgen's own templates/kibana/rules.yml",
        )
    return settings


def build_kibana_rules(
    builds: list[RuleBuild], options: TargetOptions, env: jinja2.Environment
) -> dict[str, bytes]:
    """Write every rule's Kibana detection rules into ``elastic/rules.ndjson``."""
    settings = _load_settings(env)
    lines: list[str] = []
    for build in builds:
        try:
            objects = kibana_rules(build, options, env, settings)
        except SiemgenError as error:
            error.path = error.path or build.rule.path
            error.line = error.line or build.rule.line_of("tags")
            error.target = error.target or "kibana rules"
            raise
        lines.extend(json.dumps(body, sort_keys=True, ensure_ascii=False) for body in objects)
    logger.debug("Kibana rules: %d rule objects", len(lines))
    return {OUTPUT: ("\n".join(lines) + "\n").encode() if lines else b""}
