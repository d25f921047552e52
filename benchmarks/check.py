"""Benchmark `siemgen check` with an empty result cache, an unchanged one and one rule changed.

The rules (the project rules in ``sigma/`` plus the community SigmaHQ CloudTrail corpus) are
copied into a temporary folder, and ``siemgen check --rules rules`` runs there, so its cache
is that folder's ``.siemgen-cache/``. Each round deletes the cache, then runs the check three
times: on the empty cache, again with no change, and after appending a comment line to one
project rule. Every process is timed by wall clock from start to exit. With ``--drift`` the
folder also contains a ``generated/`` build, so each check compares the generated content too.

    .venv/bin/python benchmarks/check.py --runs 7 --write-doc
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _common as common

from siemgen.errors import ConfigError, SiemgenError

GOAL = 0.25
CACHE = ".siemgen-cache"
GENERATED = "generated"
# `siemgen check` exits 1 when it reports findings, which the corpus rules may have.
CHECK_EXIT_CODES = (0, 1)
HEADERS = (
    "run",
    "median s",
    "min s",
    "max s",
    "median CPU s",
    "peak RSS MiB",
    "exit codes",
    "cache files written",
)


@dataclass(frozen=True)
class Scenario:
    """One kind of check run measured in every round."""

    key: str
    title: str


SCENARIOS = (
    Scenario("first", "first run (empty cache)"),
    Scenario("unchanged", "no change (warm cache)"),
    Scenario("one_changed", "one rule changed"),
)


@dataclass
class Measurements:
    """The timed runs of each scenario, and the cache files each run added."""

    runs: dict[str, list[common.Run]] = field(default_factory=dict)
    written: dict[str, list[int]] = field(default_factory=dict)
    summary: str = ""

    def median_wall(self, key: str) -> float:
        """Return the median wall time of one scenario."""
        return common.median([run.wall for run in self.runs[key]])

    def median_cpu(self, key: str) -> float:
        """Return the median CPU time of one scenario."""
        return common.median([run.cpu for run in self.runs[key]])

    def ratio(self, key: str) -> float:
        """Return one scenario's median wall time divided by the first run's."""
        return self.median_wall(key) / self.median_wall("first")

    def cpu_ratio(self, key: str) -> float:
        """Return one scenario's median CPU time divided by the first run's."""
        return self.median_cpu(key) / self.median_cpu("first")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="Measured rounds (default 7).")
    parser.add_argument(
        "--warmup", type=int, default=1, help="Untimed rounds before measuring (default 1)."
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help=f"Folder of extra Sigma rules (default {common.CORPUS} when it exists).",
    )
    parser.add_argument(
        "--no-corpus", action="store_true", help="Check the project rules in sigma/ only."
    )
    parser.add_argument(
        "--drift",
        action="store_true",
        help="Build a generated/ folder first, so each check also compares generated content.",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="Seconds before a process is killed."
    )
    parser.add_argument(
        "--write-doc", action="store_true", help="Update the check section of the doc page."
    )
    parser.add_argument(
        "--doc", type=Path, default=common.DOC, help="Doc page that --write-doc updates."
    )

    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    return args


def count_cache_files(work: Path) -> int:
    """Count the entry files in the check's cache folder."""
    folder = work / CACHE
    return sum(1 for path in folder.rglob("*.json") if path.is_file()) if folder.is_dir() else 0


def check_command(drift: bool) -> list[str | Path]:
    """Return the check command line, run from the temporary folder."""
    command: list[str | Path] = [
        common.executable("siemgen"),
        "check",
        "--rules",
        "rules",
        "--cache",
        CACHE,
    ]
    if drift:
        command += ["--generated", GENERATED]
    return command


def build_generated(work: Path, env: dict[str, str], timeout: float) -> None:
    """Write the generated/ folder a repository commits, as `siemgen check` expects it."""
    command: list[str | Path] = [
        common.executable("siemgen"),
        "build",
        "--rules",
        "rules",
        "--out",
        GENERATED,
        "--no-packages",
    ]
    run = common.run_timed(
        command,
        work,
        work / "logs" / "build-generated.log",
        env,
        timeout,
    )
    common.require_exit(run, command, allowed=(0,))


def edit_rule(rule: Path, index: int) -> None:
    """Append a YAML comment to a rule, which changes its cache key but not its meaning."""
    text = rule.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    rule.write_text(text + f"# edit {index}\n", encoding="utf-8")


def measure(
    staged: common.StagedRules, work: Path, env: dict[str, str], args: argparse.Namespace
) -> tuple[Measurements, Path]:
    """Run the warm-up rounds, then the measured rounds of the three scenarios."""
    results = Measurements(
        runs={s.key: [] for s in SCENARIOS}, written={s.key: [] for s in SCENARIOS}
    )
    command = check_command(args.drift)
    edited = common.rule_files(staged.folder / "project")[0]
    total_rounds = args.warmup + args.runs
    for index in range(total_rounds):
        measured = index >= args.warmup
        shutil.rmtree(work / CACHE, ignore_errors=True)
        for scenario in SCENARIOS:
            if scenario.key == "one_changed":
                edit_rule(edited, index)
            before = count_cache_files(work)
            log = work / "logs" / f"check-{scenario.key}.log"
            run = common.run_timed(command, work, log, env, args.timeout)
            common.require_exit(run, command, allowed=CHECK_EXIT_CODES)
            if measured:
                results.runs[scenario.key].append(run)
                results.written[scenario.key].append(count_cache_files(work) - before)
            if scenario.key == "first":
                tail = common.log_tail(log, 1)
                results.summary = tail[0] if tail else ""
        kind = "measured" if measured else "warm-up"
        print(f"round {index + 1}/{total_rounds} ({kind}) done", file=sys.stderr)
    return results, edited


def table_rows(results: Measurements) -> list[list[str]]:
    """Summarize each scenario as table cells."""
    rows = []
    for scenario in SCENARIOS:
        runs = results.runs[scenario.key]
        walls = [run.wall for run in runs]
        codes = sorted({run.returncode for run in runs})
        written = sorted(set(results.written[scenario.key]))
        rows.append(
            [
                scenario.title,
                common.seconds(common.median(walls)),
                common.seconds(min(walls)),
                common.seconds(max(walls)),
                common.seconds(common.median([run.cpu for run in runs])),
                common.mebibytes(max(run.max_rss_kib for run in runs)),
                ", ".join(str(code) for code in codes),
                ", ".join(str(count) for count in written),
            ]
        )
    return rows


def verdict(results: Measurements) -> str:
    """State the ratios of medians and whether the unchanged run meets the goal."""
    unchanged = results.ratio("unchanged")
    met = "met" if unchanged <= GOAL else "not met"
    return (
        f"no-change run / first run = {unchanged:.2f} by median wall time, so the goal of at "
        f"most {GOAL:g} is {met}. One-rule-changed run / first run = "
        f"{results.ratio('one_changed'):.2f}. By median CPU time the two ratios are "
        f"{results.cpu_ratio('unchanged'):.2f} and {results.cpu_ratio('one_changed'):.2f}"
    )


def cache_warning(results: Measurements, rule_count: int) -> str | None:
    """Describe rounds whose unchanged run wrote cache files, which means it missed the cache."""
    missed = [count for count in results.written["unchanged"] if count]
    if not missed:
        return None
    return (
        f"{len(missed)} of {len(results.written['unchanged'])} no-change runs wrote cache files "
        f"(of {rule_count} rules), so they missed the cache. The cache key includes siemgen's "
        "source files, so an edit to the installed siemgen during the benchmark causes this."
    )


def doc_section(
    staged: common.StagedRules,
    results: Measurements,
    edited: Path,
    args: argparse.Namespace,
    argv: list[str],
) -> str:
    """Write the Markdown body of the check section."""
    rules = f"{staged.total} rules ({staged.project} project rules from `sigma/`"
    rules += f" and {staged.corpus} SigmaHQ CloudTrail rules)" if staged.corpus else ")"
    drift = (
        "with a `generated/` folder built by `siemgen build --no-packages`, so every run "
        "also checks the generated content for drift"
        if args.drift
        else "without a `generated/` folder, so the drift stage does not run"
    )
    per_scenario = []
    for scenario in SCENARIOS:
        walls = ", ".join(common.seconds(run.wall) for run in results.runs[scenario.key])
        per_scenario.append(f"{scenario.title} {walls}")
    lines = [
        f"`siemgen check --rules rules` on {rules}, run in a temporary folder {drift}.",
        "",
        f"- Command: `{common.display_command(argv)}`",
        *common.machine_lines(),
        f"- Rounds: {args.warmup} untimed warm-up, then {args.runs} measured. Each round "
        "deletes `.siemgen-cache/`, then runs the check on the empty cache, again with no "
        f"change, and after appending a comment line to `{edited.name}`. Each process is timed "
        "by wall clock from start to exit.",
        common.isolation_line(),
        common.rss_line(),
        "- `siemgen check` exits 1 when it reports an error finding. The first run's last "
        f"output line: `{results.summary}`.",
        "",
        common.markdown_table(HEADERS, table_rows(results)),
        "",
        f"**{verdict(results)}.**",
        "",
        f"Per-round wall times in seconds: {'. '.join(per_scenario)}.",
    ]
    warning = cache_warning(results, staged.total)
    if warning:
        lines += ["", f"Warning: {warning}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print its table and optionally update the doc page.

    Exit status: 0 after measuring, 1 when a timed process failed, 2 on a usage error.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    try:
        corpus = common.corpus_folder(args.corpus, not args.no_corpus)
        with tempfile.TemporaryDirectory(prefix="siemgen-bench-check-") as tmp:
            work = Path(tmp)
            staged = common.stage_rules(work / "rules", corpus)
            env = common.isolated_environment(work)
            if args.drift:
                build_generated(work, env, args.timeout)
            print(
                f"checking {staged.total} rules ({staged.project} project, "
                f"{staged.corpus} corpus): {args.warmup} warm-up and {args.runs} measured rounds",
                file=sys.stderr,
            )
            results, edited = measure(staged, work, env, args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SiemgenError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    print(common.format_table(HEADERS, table_rows(results)))
    print(verdict(results))
    warning = cache_warning(results, staged.total)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if args.write_doc:
        section = doc_section(staged, results, edited, args, arguments)
        common.update_section(args.doc, "check", section)
        print(f"updated the check section of {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
