"""The siemgen command line: options in, library called, errors mapped to exit codes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer

from siemgen.errors import ConfigError, SiemgenError
from siemgen.targets import TargetOptions, all_targets
from siemgen.terminal import printable, printable_lines

app = typer.Typer(
    name="siemgen",
    help="Build Sigma rules into tested Splunk, Elastic and Athena content with pages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Typer's Rich help keeps each docstring line break and wraps the lines again,
    # which leaves one- and two-word lines on an 80-column terminal.
    rich_markup_mode=None,
)

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        "-r",
        help="Rule file or folder (searched recursively); repeat for several. Default: sigma/.",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log debug output and show tracebacks.")
]


def echo(line: str) -> None:
    """Print one line to stdout, escaped by ``printable``."""
    typer.echo(printable(line))


def err(message: str) -> None:
    """Print one line to stderr, escaped by ``printable``."""
    typer.echo(printable(message), err=True)


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
"""The ``sys.exc_info()`` tuple that ``logging.Formatter.formatException`` takes."""


class PrintableFormatter(logging.Formatter):
    """Format log records with ``printable``, since they quote paths and rule text."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: ExcInfo) -> str:
        return printable_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return printable_lines(super().formatStack(stack_info))


def setup_logging(verbose: bool) -> None:
    """Send library logs to stderr: warnings by default, everything with --verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])


def target_options(
    splunk_index: str | None,
    athena_table: str,
    athena_lookback: str | None,
    athena_profile: str = "cloudtrail",
) -> TargetOptions:
    """Collect the query settings shared by the commands that convert rules."""
    return TargetOptions(
        splunk_index=splunk_index,
        athena_table=athena_table,
        athena_lookback=athena_lookback,
        athena_profile=athena_profile,
    )


SplunkIndexOption = Annotated[
    str | None,
    typer.Option(
        help="Splunk index to search (adds index=NAME). Default: no index clause, so the "
        "search uses the user's default indexes.",
    ),
]
AthenaTableOption = Annotated[
    str, typer.Option(help="Athena table that holds the CloudTrail logs.")
]
AthenaLookbackOption = Annotated[
    str | None,
    typer.Option(
        help="Only search events this recent in the Athena queries, e.g. 24h, 7d. "
        "Default: no time window.",
    ),
]
AthenaProfileOption = Annotated[
    str,
    typer.Option(
        help="Athena table layout: 'cloudtrail' (the CloudTrail table AWS documents) or "
        "'security-lake' (Amazon Security Lake OCSF tables).",
    ),
]


@app.command()
def build(
    rules: RulesOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("dist"),
    splunk_index: SplunkIndexOption = None,
    athena_table: AthenaTableOption = "cloudtrail_logs",
    athena_lookback: AthenaLookbackOption = None,
    athena_profile: AthenaProfileOption = "cloudtrail",
    templates: Annotated[
        Path | None,
        typer.Option(help="Folder of Jinja templates to use instead of the built-in ones."),
    ] = None,
    packages: Annotated[
        bool,
        typer.Option(
            help="Also write the Splunk app, Kibana rules and CloudFormation templates. "
            "Use --no-packages for the query files and pages alone.",
        ),
    ] = True,
    verbose: VerboseOption = False,
) -> None:
    """Build every rule into query files, pages and deployable artifacts under --out.

    Exit status: 0 when every rule built for every target, 1 when any rule or target
    failed (each failure is printed as one line), 2 on a usage error.
    """
    from siemgen.build import build as run_build

    setup_logging(verbose)
    options = target_options(splunk_index, athena_table, athena_lookback, athena_profile)
    result = run_build(rules or [Path("sigma")], out, options, templates, packages)
    for error in result.errors:
        err(f"error: {error}")
    if result.report and result.report.kept:
        for kept in result.report.kept:
            err(f"warning: kept {out / kept}: it was edited after siemgen wrote it")
    err(result.summary())
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FINDINGS)


def _print_version(value: bool) -> None:
    if value:
        from siemgen import __version__

        typer.echo(f"siemgen {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Build Sigma rules into tested Splunk, Elastic and Athena content with pages."""


@app.command("targets")
def list_targets() -> None:
    """List the targets and output formats that siemgen builds."""
    for target in all_targets():
        formats = ", ".join(f"{f.name} ({f.suffix})" for f in target.formats)
        typer.echo(f"{target.name}\t{target.title}\t{formats}")
    typer.echo(
        "cloudwatch\tCIS CloudWatch filter\tin dist/aws/cis-alarms.yaml, tested by siemgen test"
    )


def _register_commands() -> None:
    from siemgen.commands.check import check_command
    from siemgen.commands.hunt import hunt_command
    from siemgen.commands.test import test_command

    app.command("check")(check_command)
    app.command("hunt")(hunt_command)
    app.command("test")(test_command)


_register_commands()


def main() -> None:
    """Run the CLI, printing siemgen errors as one line and mapping them to exit codes.

    With --verbose, and for an exception that is not a siemgen error, the traceback is printed
    instead, each line escaped by ``printable``, because exception messages quote file names.
    """
    verbose = "--verbose" in sys.argv or "-v" in sys.argv
    try:
        app()
    except SiemgenError as error:
        if verbose:
            _print_traceback()
        else:
            err(f"error: {error}")
        sys.exit(EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FINDINGS)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        _print_traceback()
        # The status Python exits with after an uncaught exception.
        sys.exit(1)


def _print_traceback() -> None:
    """Print the traceback of the exception being handled to stderr."""
    import traceback

    typer.echo(printable_lines(traceback.format_exc().rstrip("\n")), err=True)
