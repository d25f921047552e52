"""Deployable packages built from the converted rules: a Splunk app, Kibana rules, AWS stacks.

Each builder has the artifact builder signature of ``siemgen.build``: it takes the rule builds,
the target options and the Jinja environment and returns files keyed by their path in the
output folder.
"""

from __future__ import annotations

from collections.abc import Callable

import jinja2

from siemgen.convert import RuleBuild
from siemgen.targets import TargetOptions

PackageBuilder = Callable[[list[RuleBuild], TargetOptions, jinja2.Environment], dict[str, bytes]]


def package_builders() -> list[PackageBuilder]:
    """Return the builders of every deployable package, in output order."""
    from siemgen.packages.cloudformation import build_cis_alarms, build_named_queries
    from siemgen.packages.kibana import build_kibana_rules
    from siemgen.packages.splunk_app import build_splunk_app

    return [build_splunk_app, build_kibana_rules, build_named_queries, build_cis_alarms]
