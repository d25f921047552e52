"""The table of pySigma and SigmaHQ validators that siemgen runs, and of those it replaces.

pySigma 1.5.1 and pysigma-validators-sigmahq 0.21 install 80 validators. With the network
blocked, seven of them fail because they download data: attacktag, d3_fendtag,
sigmahq_fieldname_cast, sigmahq_invalid_fieldname, sigmahq_logsource_unknown,
sigmahq_redundant_field and sigmahq_tags_techniques_without_tactics. siemgen runs each
validator in one of four ways, and ``validator_report`` lists them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from sigma.plugins import InstalledSigmaPlugins
from sigma.validators.base import SigmaRuleValidator

from siemgen.validation.checks import CHECKS
from siemgen.validation.findings import Severity

logger = logging.getLogger(__name__)


class Mode(StrEnum):
    """The way siemgen runs a validator."""

    AS_IS = "as-is"
    SHIPPED_DATA = "shipped-data"
    REPLACED = "replaced"
    NOT_APPLICABLE = "not-applicable"
    SIEMGEN = "siemgen"


@dataclass(frozen=True)
class ValidatorStatus:
    """One row of the validator report."""

    name: str
    package: str
    mode: Mode
    detail: str


_ATTACK_DATA = "siemgen's pinned ATT&CK table (siemgen/data/attack)"
_TAXONOMY = "SigmaHQ taxonomy 20251205, aws/cloudtrail entry (siemgen/data/sigmahq)"

# Validators that read data which install_offline_data() replaces with shipped tables.
SHIPPED_DATA: dict[str, str] = {
    "attacktag": f"{_ATTACK_DATA}, with a hint that names the current tag",
    "sigmahq_tags_techniques_without_tactics": f"{_ATTACK_DATA}: technique to tactic map",
    "sigmahq_logsource_unknown": f"{_TAXONOMY}; other log sources are reported, "
    "because siemgen builds CloudTrail rules only",
    "sigmahq_redundant_field": f"{_TAXONOMY}, which lists no redundant CloudTrail field",
    "sigmahq_filename_prefix": "SigmaHQ filename prefixes 20240809, aws entry ('aws')",
    "sigmahq_category_event_id": "an empty table, because only Windows rules consult it",
    "sigmahq_category_windows_provider_name": "an empty table, because only Windows rules "
    "consult it",
}

# Validators whose data siemgen does not ship or whose convention does not fit siemgen rules,
# with the siemgen check that does the job instead.
REPLACED: dict[str, tuple[str, str]] = {
    "d3_fendtag": (
        "siemgen_d3fend_tag",
        "no D3FEND technique list is shipped, so D3FEND tactics are checked and other D3FEND "
        "tags are reported as unverified",
    ),
    "sigmahq_invalid_fieldname": (
        "siemgen_unknown_field",
        "SigmaHQ's taxonomy lists no CloudTrail fields, while siemgen's field table "
        "(siemgen/fields.py) is what every target converts with",
    ),
    "sigmahq_fieldname_cast": (
        "siemgen_field_case",
        "the case check uses siemgen's field table, for the same reason",
    ),
    "sigmahq_unknown_field": (
        "siemgen_custom_attributes",
        "SigmaHQ allows only regression_tests_path and simulation, and siemgen rules add the "
        "keys docs/rule-format.md defines (compliance, cloudwatch, notes, triage, tests)",
    ),
}

# Validators that do not fit siemgen rules at all.
NOT_APPLICABLE: dict[str, str] = {
    "sigmahq_status_to_high": (
        "it compares the rule date with today's date, so `siemgen check` would change its "
        "result overnight with no change to the repository; siemgen proves each rule with "
        "test events instead of an age"
    ),
    "tlpv1_tag": "tlptag accepts TLP 1.0 and 2.0 tags, and running the per-version "
    "validators as well would reject every TLP tag in one of them",
    "tlpv2_tag": "tlptag accepts TLP 1.0 and 2.0 tags, and running the per-version "
    "validators as well would reject every TLP tag in one of them",
}

# Project policy makes these required, so their findings are errors whatever pySigma's rating.
SEVERITY_OVERRIDES: dict[str, Severity] = {
    "attacktag": "error",
    "identifier_existence": "error",
    "sigmahq_author_existence": "error",
    "sigmahq_date_existence": "error",
    "sigmahq_description_existence": "error",
    "sigmahq_level_existence": "error",
}


@cache
def installed_validators() -> dict[str, type[SigmaRuleValidator]]:
    """Return every validator class that pySigma's plugin discovery finds, by name."""
    plugins = InstalledSigmaPlugins.autodiscover(include_backends=False, include_pipelines=False)
    # pySigma annotates the mapping's values as instances, but it contains the classes.
    found: dict[str, type[SigmaRuleValidator]] = plugins.validators  # type: ignore[assignment]
    return dict(sorted(found.items()))


def _package(validator: type[SigmaRuleValidator]) -> str:
    module = validator.__module__
    if module.startswith("sigma.validators.sigmahq"):
        return "pysigma-validators-sigmahq"
    if module.startswith("sigma.validators.core"):
        return "pySigma"
    return module.split(".")[0]


def active_validators() -> dict[str, type[SigmaRuleValidator]]:
    """Return the pySigma and SigmaHQ validators that siemgen runs, by name."""
    return {
        name: validator
        for name, validator in installed_validators().items()
        if name not in REPLACED and name not in NOT_APPLICABLE
    }


def validator_report() -> list[ValidatorStatus]:
    """List every installed validator and siemgen check, with how siemgen runs it."""
    rows = []
    for name, validator in installed_validators().items():
        if name in SHIPPED_DATA:
            mode, detail = Mode.SHIPPED_DATA, SHIPPED_DATA[name]
        elif name in REPLACED:
            replacement, reason = REPLACED[name]
            mode, detail = Mode.REPLACED, f"by {replacement}: {reason}"
        elif name in NOT_APPLICABLE:
            mode, detail = Mode.NOT_APPLICABLE, NOT_APPLICABLE[name]
        else:
            mode, detail = Mode.AS_IS, ""
        if name in SEVERITY_OVERRIDES:
            detail = (detail + "; " if detail else "") + "findings are errors by siemgen policy"
        rows.append(ValidatorStatus(name, _package(validator), mode, detail))
    for check in CHECKS:
        for name in (check.name, *check.also_reports):
            rows.append(ValidatorStatus(name, "siemgen", Mode.SIEMGEN, check.description))
    return rows


def validator_names() -> list[str]:
    """Return every name an exclusion may give: installed validators and siemgen checks."""
    return [row.name for row in validator_report()]
