"""Package the rules as a Splunk app: one scheduled alert per rule and a data-selection macro.

The app goes to ``splunk/app/<app id>/`` and, packed, to ``splunk/<app id>.tar.gz``. Settings
(app id, label, schedule) come from ``templates/splunk/app.yml``; the .conf files are laid out
by the templates beside it, with every value escaped by ``siemgen.packages.conf``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import jinja2
from sigma.exceptions import SigmaError

import siemgen
from siemgen.attack import load_attack
from siemgen.backends.splunk import SplunkBackend
from siemgen.convert import RuleBuild, fresh_rule
from siemgen.errors import ConversionError, SiemgenError
from siemgen.packages.common import deterministic_tar_gz, one_line, package_data, rule_level
from siemgen.packages.conf import Stanza, stanza_name
from siemgen.pages import compliance
from siemgen.pipelines.splunk import SOURCETYPE, splunk_pipeline
from siemgen.render import render
from siemgen.targets import TargetOptions

logger = logging.getLogger(__name__)

SETTINGS = "splunk/app.yml"

# savedsearches.conf alert.severity: 1 debug, 2 info, 3 warn, 4 error, 5 severe, 6 fatal.
ALERT_SEVERITY = {"informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}

_APP_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
_MACRO_NAME = re.compile(r"[A-Za-z0-9_]+")
_SEMVER = re.compile(r"\d+\.\d+\.\d+")

Files = dict[str, bytes]


@dataclass(frozen=True)
class AppSettings:
    """The Splunk app's identity and alert schedule, read from ``splunk/app.yml``."""

    id: str
    label: str
    author: str
    description: str
    license_name: str
    license_uri: str
    macro: str
    search_prefix: str
    schedule: dict[str, str]
    version: str

    @classmethod
    def load(cls, env: jinja2.Environment) -> AppSettings:
        """Read and check the settings file."""
        data = package_data(env, SETTINGS)
        try:
            settings = cls(
                id=str(data["id"]),
                label=str(data["label"]),
                author=str(data["author"]),
                description=str(data["description"]),
                license_name=str(data["license"]["name"]),
                license_uri=str(data["license"]["uri"]),
                macro=str(data["macro"]),
                search_prefix=str(data.get("search_prefix", "")),
                schedule={
                    key: str(data["schedule"][key])
                    for key in ("cron", "earliest", "latest", "suppress_fields", "suppress_period")
                },
                version=siemgen.__version__,
            )
        except (KeyError, TypeError) as error:
            raise SiemgenError(
                f"{SETTINGS} is missing the setting {error}",
                hint="compare it with siemgen's own templates/splunk/app.yml",
            ) from error
        if not _APP_ID.fullmatch(settings.id):
            raise SiemgenError(
                f"invalid Splunk app id {settings.id!r} in {SETTINGS}",
                hint="use a letter, then letters, digits or underscores (at most 80)",
            )
        if not _MACRO_NAME.fullmatch(settings.macro):
            raise SiemgenError(
                f"invalid macro name {settings.macro!r} in {SETTINGS}",
                hint="use letters, digits and underscores",
            )
        if not _SEMVER.fullmatch(settings.version):
            raise SiemgenError(f"siemgen version {settings.version!r} is not MAJOR.MINOR.PATCH")
        return settings


def spl_string(value: str) -> str:
    """Quote a value as an SPL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def macro_definition(options: TargetOptions) -> str:
    """Return the search that selects CloudTrail events: the index option and the sourcetype."""
    clauses = [f"sourcetype={spl_string(SOURCETYPE)}"]
    if options.splunk_index:
        clauses.insert(0, f"index={spl_string(options.splunk_index)}")
    return " ".join(clauses)


def macro_search(build: RuleBuild) -> str:
    """Convert a rule to SPL without the index and sourcetype clauses, which the macro adds."""
    rule_file = build.rule
    backend = SplunkBackend(splunk_pipeline(source_clause=False))
    try:
        result = backend.convert_rule(fresh_rule(rule_file))
    except SiemgenError as error:
        error.path = error.path or rule_file.path
        error.target = error.target or "splunk app"
        raise
    except (SigmaError, NotImplementedError) as error:
        message = str(error.args[0]) if error.args else str(error)
        raise ConversionError(
            message, path=rule_file.path, rule=rule_file.title, target="splunk app"
        ) from error
    if len(result) != 1 or not isinstance(result[0], str):
        raise ConversionError(
            f"the Splunk backend returned {len(result)} queries where one was expected",
            path=rule_file.path,
            rule=rule_file.title,
            target="splunk app",
        )
    return result[0]


def annotation_json(build: RuleBuild) -> str:
    """Return the rule's ATT&CK techniques and compliance controls as an annotations JSON."""
    rule_file = build.rule
    resolved = load_attack().resolve_tags(
        rule_file.rule.tags, path=rule_file.path, rule=rule_file.title
    )
    frameworks: dict[str, list[str]] = {}
    techniques = [technique.id for technique in resolved.techniques]
    if techniques:
        frameworks["mitre_attack"] = techniques
    for item in compliance(rule_file):
        key = item.framework.replace("-", "_")
        control = f"{item.version} {item.control}" if item.version else item.control
        frameworks.setdefault(key, []).append(control)
    return json.dumps(frameworks, sort_keys=True, ensure_ascii=False)


def saved_search(build: RuleBuild, settings: AppSettings, name: str) -> Stanza:
    """Build the savedsearches.conf stanza of one rule."""
    rule_file = build.rule
    rule = rule_file.rule
    level = rule_level(rule_file)
    schedule = settings.schedule
    description = one_line(rule.description or rule.title)
    if rule_file.rule_id:
        description += f" (Sigma rule {rule_file.rule_id})"

    stanza = Stanza(name)
    try:
        stanza.set("description", description)
        stanza.set("search", f"`{settings.macro}` {macro_search(build)}", multiline=True)
        stanza.set("enableSched", 1)
        stanza.set("cron_schedule", schedule["cron"])
        stanza.set("schedule_window", "auto")
        stanza.set("dispatch.earliest_time", schedule["earliest"])
        stanza.set("dispatch.latest_time", schedule["latest"])
        stanza.set("counttype", "number of events")
        stanza.set("relation", "greater than")
        stanza.set("quantity", 0)
        stanza.set("alert.track", 1)
        stanza.set("alert.severity", ALERT_SEVERITY[level])
        stanza.set("alert.digest_mode", 0)
        stanza.set("alert.suppress", 1)
        stanza.set("alert.suppress.fields", schedule["suppress_fields"])
        stanza.set("alert.suppress.period", schedule["suppress_period"])
        stanza.set("action.correlationsearch.enabled", 1)
        stanza.set("action.correlationsearch.label", one_line(rule.title))
        stanza.set("action.correlationsearch.annotations", annotation_json(build))
    except SiemgenError as error:
        error.path = error.path or rule_file.path
        error.rule = error.rule or rule_file.title
        error.target = error.target or "splunk app"
        raise
    return stanza


def _unique_names(builds: list[RuleBuild], settings: AppSettings) -> list[str]:
    """Name each saved search after its rule, adding the file stem to a repeated name."""
    names = [stanza_name(settings.search_prefix + build.rule.title) for build in builds]
    seen: dict[str, int] = {}
    for name in names:
        seen[name.lower()] = seen.get(name.lower(), 0) + 1
    return [
        f"{name} ({build.rule.stem})" if seen[name.lower()] > 1 else name
        for name, build in zip(names, builds, strict=True)
    ]


def _app_conf(settings: AppSettings) -> list[Stanza]:
    install = Stanza("install")
    install.set("is_configured", 0)
    install.set("build", 1)
    ui = Stanza("ui")
    ui.set("is_visible", 0)
    ui.set("label", one_line(settings.label))
    launcher = Stanza("launcher")
    launcher.set("author", one_line(settings.author))
    launcher.set("description", one_line(settings.description))
    launcher.set("version", settings.version)
    package = Stanza("package")
    package.set("id", settings.id)
    package.set("check_for_updates", 0)
    identity = Stanza("id")
    identity.set("name", settings.id)
    identity.set("version", settings.version)
    return [install, ui, launcher, package, identity]


def _manifest(settings: AppSettings) -> str:
    """Return app.manifest (schema 2.0.0), which Splunk Cloud vetting reads."""
    manifest: dict[str, Any] = {
        "schemaVersion": "2.0.0",
        "info": {
            "title": settings.label,
            "id": {"group": None, "name": settings.id, "version": settings.version},
            "author": [{"name": settings.author, "email": None, "company": None}],
            "releaseDate": None,
            "description": settings.description,
            "classification": {
                "intendedAudience": "Security",
                "categories": ["Security, Fraud & Compliance"],
                "developmentStatus": "Production/Stable",
            },
            "commonInformationModels": None,
            "license": {"name": settings.license_name, "text": None, "uri": settings.license_uri},
            "privacyPolicy": {"name": None, "text": None, "uri": None},
            "releaseNotes": {"name": None, "text": None, "uri": None},
        },
        "dependencies": None,
        "tasks": None,
        "inputGroups": None,
        "incompatibleApps": None,
        "platformRequirements": None,
        "supportedDeployments": ["_standalone", "_distributed", "_search_head_clustering"],
        "targetWorkloads": ["_search_heads"],
    }
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def app_files(
    builds: list[RuleBuild], options: TargetOptions, env: jinja2.Environment
) -> tuple[AppSettings, Files]:
    """Render the app's files, keyed by their path inside the app folder.

    A rule that failed the Splunk conversion is left out, because the build reports it already.
    """
    settings = AppSettings.load(env)
    built = [build for build in builds if build.query("splunk", "spl") is not None]
    names = _unique_names(built, settings)
    searches = [
        saved_search(build, settings, name) for build, name in zip(built, names, strict=True)
    ]
    macro = Stanza(settings.macro)
    macro.set("definition", macro_definition(options))
    macro.set("description", "Selects the AWS CloudTrail events that every siemgen alert searches.")
    meta = Stanza("")
    meta.set("access", "read : [ * ], write : [ admin, sc_admin ]")
    meta.set("export", "system")

    context = {"siemgen_version": siemgen.__version__, "macro": settings.macro}
    files = {
        "default/app.conf": render(
            env, "splunk/app.conf.j2", stanzas=_app_conf(settings), **context
        ),
        "default/savedsearches.conf": render(
            env, "splunk/savedsearches.conf.j2", stanzas=searches, **context
        ),
        "default/macros.conf": render(env, "splunk/macros.conf.j2", stanzas=[macro], **context),
        "metadata/default.meta": render(env, "splunk/default.meta.j2", stanzas=[meta], **context),
        "app.manifest": _manifest(settings),
        "README.md": render(
            env,
            "splunk/README.md.j2",
            app={**vars(settings)},
            macro_definition=macro_definition(options),
            searches=[
                {"name": name, "level": rule_level(build.rule), "rule_id": build.rule.rule_id}
                for build, name in zip(built, names, strict=True)
            ],
            **context,
        ),
    }
    logger.debug("Splunk app %s: %d saved searches", settings.id, len(searches))
    return settings, {name: text.encode() for name, text in files.items()}


def build_splunk_app(
    builds: list[RuleBuild], options: TargetOptions, env: jinja2.Environment
) -> Files:
    """Build the Splunk app folder and its tarball under ``splunk/``."""
    settings, files = app_files(builds, options, env)
    folder = f"splunk/app/{settings.id}"
    output = {f"{folder}/{name}": data for name, data in files.items()}
    output[f"splunk/{settings.id}.tar.gz"] = deterministic_tar_gz(
        {f"{settings.id}/{name}": data for name, data in files.items()}
    )
    return output
