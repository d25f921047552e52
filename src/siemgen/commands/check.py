"""The `siemgen check` command: the gate a pull request must pass."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from siemgen.errors import ConfigError
from siemgen.terminal import printable

DEFAULT_GENERATED = Path("generated")


def default_cache() -> Path:
    """Return the user's cache folder for check results, outside any repository.

    A cache inside the checkout could be committed by a pull request, with forged results
    that make a broken rule pass; a folder in the user's home cannot.
    """
    configured = os.environ.get("SIEMGEN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "siemgen"


def check_command(
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules", "-r", help="Rule file or folder; repeat for several. Default: sigma/."
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Report format: text (grouped by file), json, junit, sarif (SARIF 2.1.0 for "
            "code scanning) or github (workflow commands that annotate the offending lines).",
        ),
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the report to this file instead of stdout (- for stdout)."
        ),
    ] = None,
    generated: Annotated[
        Path | None,
        typer.Option(
            help="Folder of generated queries and pages the repository commits, compared with "
            "a fresh build. Default: generated/ when it exists.",
        ),
    ] = None,
    changed_since: Annotated[
        str | None,
        typer.Option(
            help="Report only rules whose rule or test file changed against this git ref, "
            "e.g. origin/main. Checks across rules still see every rule.",
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Folder of cached per-rule results; delete it to start afresh. Default: "
            "$SIEMGEN_CACHE_DIR, else $XDG_CACHE_HOME/siemgen or ~/.cache/siemgen. Keep it "
            "outside the repository, so that a pull request cannot bring its own results.",
        ),
    ] = None,
    use_cache: Annotated[
        bool,
        typer.Option(
            "--cache-results/--no-cache-results",
            help="Reuse and store the results of unchanged rules. --no-cache-results neither "
            "reads nor writes the cache folder.",
        ),
    ] = True,
    list_validators: Annotated[
        bool,
        typer.Option(
            "--list-validators",
            help="Print every validator and how it runs offline (as-is, with shipped data, "
            "replaced by a siemgen check, or not applicable), then exit.",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug output.")] = False,
) -> None:
    """Validate rules, run their tests and check generated content for drift.

    Exit status: 0 when nothing was found, 1 when any error was found (a warning alone
    does not fail the check), 2 on a usage or configuration error.
    """
    from siemgen import findings as report
    from siemgen.check import CheckOptions, run_check
    from siemgen.cli import err, setup_logging
    from siemgen.output import check_report_path, reject_input
    from siemgen.rules import RULE_INPUT_SUFFIXES, rule_inputs

    setup_logging(verbose)
    if list_validators:
        from siemgen.validate import validator_report

        for row in validator_report():
            fields = [row.name, row.package, row.mode.value, *([row.detail] if row.detail else [])]
            # The fields are escaped one by one, so that the tabs between them stay tabs.
            typer.echo("\t".join(printable(field) for field in fields))
        raise typer.Exit(0)
    if output_format not in report.FORMATS:
        raise ConfigError(
            f"unknown format {output_format!r}; choose one of {', '.join(report.FORMATS)}"
        )
    if changed_since is not None and changed_since.startswith("-"):
        raise ConfigError(
            f"--changed-since {changed_since!r} is not a git revision, because it starts with '-'",
            hint="pass a branch, tag or commit, e.g. --changed-since origin/main",
        )
    rule_paths = rules or [Path("sigma")]
    if output == Path("-"):
        output = None
    folder = generated if generated is not None else DEFAULT_GENERATED
    if output is not None:
        check_report_path(output, "--output")
        inputs = rule_inputs(rule_paths)
        reject_input(output, "--output", inputs, RULE_INPUT_SUFFIXES, "rule and test files")
        reject_input(output, "--output", [folder], None, "generated files")
    root = Path.cwd()
    if generated is not None and not generated.is_dir():
        raise ConfigError("generated folder not found", path=generated)
    options = CheckOptions(
        root=root,
        rules=rule_paths,
        generated=folder if folder.is_dir() else None,
        changed_since=changed_since,
        cache=(cache or default_cache()) if use_cache else None,
    )
    result = run_check(options)
    count = len(result.checked)
    writers = {
        "text": lambda: report.to_text(result.findings, count),
        "json": lambda: report.to_json(result.findings, count),
        "junit": lambda: report.to_junit(result.findings, count, result.checked),
        "sarif": lambda: report.to_sarif(result.findings, count),
        "github": lambda: report.to_github(result.findings, count),
    }
    text = writers[output_format]()
    if output is None:
        typer.echo(text, nl=False)
    else:
        from siemgen.output import write_report

        write_report(output, text.encode(), "--output")
        err(report.summary_line(result.findings, count))
    raise typer.Exit(0 if result.ok else 1)
