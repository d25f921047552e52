"""Convert loaded rules into queries for each target and format; no file I/O here."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sigma.conversion.base import Backend
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from siemgen.errors import ConversionError, SiemgenError
from siemgen.rules import RuleFile
from siemgen.targets import OutputFormat, Target, TargetOptions, all_targets, get_target

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    """One generated query: a rule in one target's format."""

    target: str
    format: str
    text: str


@dataclass
class RuleBuild:
    """Everything generated for one rule, and the targets that failed."""

    rule: RuleFile
    queries: list[Query] = field(default_factory=list)
    errors: list[ConversionError] = field(default_factory=list)

    def query(self, target: str, format_name: str) -> str | None:
        """Return the query text for ``target`` and ``format_name``, or None if it failed."""
        for query in self.queries:
            if query.target == target and query.format == format_name:
                return query.text
        return None


def fresh_rule(rule_file: RuleFile) -> SigmaRule:
    """Parse a new SigmaRule from the file's data, because conversion modifies the rule."""
    return SigmaRule.from_dict(rule_file.data)


class Converter:
    """Convert rules with one backend instance per target format, reused across rules."""

    def __init__(self, options: TargetOptions | None = None) -> None:
        self.options = options or TargetOptions()
        self._backends: dict[tuple[str, str], Backend] = {}

    def backend(self, target: Target, output_format: OutputFormat) -> Backend:
        """Return the backend for one target format, creating it on first use."""
        key = (target.name, output_format.name)
        if key not in self._backends:
            self._backends[key] = output_format.make_backend(self.options)
        return self._backends[key]

    def convert(
        self,
        rule_file: RuleFile,
        target_name: str,
        format_name: str | None = None,
        backend_format: str | None = None,
    ) -> str:
        """Convert one rule to one target format, raising ConversionError on failure."""
        target = get_target(target_name)
        output_format = target.format(format_name) if format_name else target.formats[0]
        _check_logsource(rule_file, target.name)
        backend = self.backend(target, output_format)
        try:
            result = backend.convert_rule(
                fresh_rule(rule_file), backend_format or output_format.backend_format
            )
        except SiemgenError as error:
            raise _located(error, rule_file, target.name) from error
        except SigmaError as error:
            message = str(error.args[0]) if error.args else str(error)
            raise ConversionError(
                message, path=rule_file.path, rule=rule_file.title, target=target.name
            ) from error
        except RecursionError as error:
            raise ConversionError(
                "condition nested too deeply to convert",
                path=rule_file.path,
                rule=rule_file.title,
                target=target.name,
            ) from error
        # A backend bug must not stop the other rules and targets from building; the
        # traceback is kept in the log for --verbose.
        except Exception as error:
            logger.debug("backend failed on %s", rule_file.path, exc_info=True)
            raise ConversionError(
                f"internal error in the {target.name} backend: {type(error).__name__}: {error}",
                path=rule_file.path,
                rule=rule_file.title,
                target=target.name,
            ) from error
        if len(result) != 1 or not isinstance(result[0], str):
            raise ConversionError(
                f"the backend returned {len(result)} queries where one was expected",
                path=rule_file.path,
                rule=rule_file.title,
                target=target.name,
            )
        return result[0]

    def build(self, rule_file: RuleFile, targets: Iterable[Target] | None = None) -> RuleBuild:
        """Convert one rule to every format of every target, collecting failures."""
        build = RuleBuild(rule_file)
        for target in targets or all_targets():
            for output_format in target.formats:
                try:
                    text = self.convert(rule_file, target.name, output_format.name)
                except ConversionError as error:
                    if len(target.formats) > 1:
                        error.target = f"{target.name}/{output_format.name}"
                    build.errors.append(error)
                    continue
                build.queries.append(Query(target.name, output_format.name, text))
        return build


def _check_logsource(rule_file: RuleFile, target: str) -> None:
    logsource = rule_file.rule.logsource
    if logsource.product != "aws" or logsource.service != "cloudtrail":
        raise ConversionError(
            f"log source product={logsource.product!r} service={logsource.service!r} is not "
            "supported; siemgen's pipelines cover product 'aws', service 'cloudtrail'",
            path=rule_file.path,
            line=rule_file.line_of("logsource"),
            rule=rule_file.title,
            target=target,
        )


def _located(error: SiemgenError, rule_file: RuleFile, target: str) -> SiemgenError:
    error.path = error.path or rule_file.path
    error.rule = error.rule or rule_file.title
    error.target = error.target or target
    return error
