"""Benchmark `siemgen hunt` on synthetic CloudTrail logs in the S3 layout.

The script writes N records as gzip log files of about 5,000 records each under
``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/``, then times, side by side on the same
files: DuckDB's bare ``count(*)`` over every record (the floor), a hunt with the canonical rule,
a hunt with every rule in ``sigma/``, a first hunt that writes the ``--cache`` Parquet and a
second hunt that reads it, with every rule and with the canonical rule. Each measurement runs
in a fresh Python process, so its peak memory (maximum resident set size) is that process's
alone.

    .venv/bin/python benchmarks/hunt.py --records 250000,500000,1000000 --runs 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common

REPO = common.REPO
RULES = common.RULES
CANONICAL = RULES / "aws" / "cloudtrail" / "aws_iam_policy_changed.yml"

RECORDS_PER_FILE = 5000
START = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "us-east-1", "us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2")
ROLES = ("Admin", "ReadOnly", "ci-deploy", "lambda-exec", "DataScience", "SecurityAudit")
USERS = ("alice", "bob", "carol", "build-bot")
AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.11.8",
    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.152.0",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.43.0",
    "console.amazonaws.com",
    "AWS Internal",
)


@dataclass(frozen=True)
class EventKind:
    """One API call in the synthetic mix: where it comes from and how often."""

    source: str
    name: str
    weight: float
    read_only: bool
    parameters: Callable[[random.Random], dict[str, Any] | None]


def _instance(rng: random.Random) -> str:
    return f"i-{rng.getrandbits(64):016x}"


def _no_parameters(rng: random.Random) -> None:
    return None


def _bucket(rng: random.Random) -> dict[str, Any]:
    return {"bucketName": f"data-{rng.randrange(40)}", "Host": "s3.amazonaws.com"}


def _role_session(rng: random.Random) -> dict[str, Any]:
    role = rng.choice(ROLES)
    return {
        "roleArn": f"arn:aws:iam::{ACCOUNTS[0]}:role/{role}",
        "roleSessionName": f"session-{rng.randrange(10_000)}",
        "durationSeconds": 3600,
    }


def _kms_key(rng: random.Random) -> dict[str, Any]:
    return {
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "encryptionContext": {"aws:lambda:FunctionArn": f"arn:aws:lambda:fn-{rng.randrange(50)}"},
    }


def _instances(rng: random.Random) -> dict[str, Any]:
    return {"instancesSet": {"items": [{"instanceId": _instance(rng)}]}, "filterSet": {}}


def _policy(rng: random.Random) -> dict[str, Any]:
    role = rng.choice(ROLES)
    return {
        "roleName": role,
        "policyArn": f"arn:aws:iam::{ACCOUNTS[0]}:policy/{role}-extra",
    }


def _log_stream(rng: random.Random) -> dict[str, Any]:
    return {"logGroupName": f"/aws/lambda/fn-{rng.randrange(50)}", "logStreamName": "2024/03/01"}


def _parameter(rng: random.Random) -> dict[str, Any]:
    return {"name": f"/app/config/key-{rng.randrange(200)}", "withDecryption": True}


EVENTS: tuple[EventKind, ...] = (
    EventKind("ec2.amazonaws.com", "DescribeInstances", 14, True, _instances),
    EventKind("ec2.amazonaws.com", "DescribeSecurityGroups", 6, True, _no_parameters),
    EventKind("ec2.amazonaws.com", "DescribeVolumes", 4, True, _no_parameters),
    EventKind("ec2.amazonaws.com", "RunInstances", 0.3, False, _instances),
    EventKind("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", 0.05, False, _no_parameters),
    EventKind("sts.amazonaws.com", "AssumeRole", 16, False, _role_session),
    EventKind("sts.amazonaws.com", "GetCallerIdentity", 4, True, _no_parameters),
    EventKind("kms.amazonaws.com", "Decrypt", 14, True, _kms_key),
    EventKind("kms.amazonaws.com", "GenerateDataKey", 5, True, _kms_key),
    EventKind("s3.amazonaws.com", "GetBucketAcl", 5, True, _bucket),
    EventKind("s3.amazonaws.com", "ListBuckets", 2, True, _no_parameters),
    EventKind("s3.amazonaws.com", "PutBucketPolicy", 0.02, False, _bucket),
    EventKind("logs.amazonaws.com", "CreateLogStream", 6, False, _log_stream),
    EventKind("logs.amazonaws.com", "DescribeLogGroups", 2, True, _no_parameters),
    EventKind("lambda.amazonaws.com", "ListFunctions20150331", 2, True, _no_parameters),
    EventKind("ssm.amazonaws.com", "GetParameter", 4, True, _parameter),
    EventKind("secretsmanager.amazonaws.com", "GetSecretValue", 2, True, _parameter),
    EventKind("iam.amazonaws.com", "GetRole", 3, True, _policy),
    EventKind("iam.amazonaws.com", "ListAttachedRolePolicies", 1, True, _policy),
    EventKind("iam.amazonaws.com", "AttachRolePolicy", 0.03, False, _policy),
    EventKind("iam.amazonaws.com", "PutRolePolicy", 0.02, False, _policy),
    EventKind("cloudtrail.amazonaws.com", "LookupEvents", 1, True, _no_parameters),
    EventKind("signin.amazonaws.com", "ConsoleLogin", 0.2, False, _no_parameters),
    EventKind("config.amazonaws.com", "PutEvaluations", 2, False, _no_parameters),
)
_WEIGHTS = [kind.weight for kind in EVENTS]


def _identity(rng: random.Random, account: str, when: str) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.75:
        role = rng.choice(ROLES)
        role_id = f"AROA{rng.getrandbits(60):015X}"
        session = f"session-{rng.randrange(10_000)}"
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": f"arn:aws:iam::{account}:role/{role}",
                    "accountId": account,
                    "userName": role,
                },
                "attributes": {"creationDate": when, "mfaAuthenticated": "false"},
            },
        }
    if kind < 0.92:
        user = rng.choice(USERS)
        return {
            "type": "IAMUser",
            "principalId": f"AIDA{rng.getrandbits(60):015X}",
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": f"AKIA{rng.getrandbits(64):016X}",
            "userName": user,
        }
    return {
        "type": "AWSService",
        "invokedBy": rng.choice(("ec2.amazonaws.com", "lambda.amazonaws.com")),
    }


def synthetic_record(
    rng: random.Random, account: str, region: str, when: dt.datetime
) -> dict[str, Any]:
    """Return one CloudTrail management event record with realistic fields."""
    kind = rng.choices(EVENTS, weights=_WEIGHTS)[0]
    event_time = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    identity = _identity(rng, account, event_time)
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": event_time,
        "eventSource": kind.source,
        "eventName": kind.name,
        "awsRegion": region,
        "sourceIPAddress": (
            identity["invokedBy"]
            if identity["type"] == "AWSService"
            else f"198.51.100.{rng.randrange(1, 255)}"
        ),
        "userAgent": rng.choice(AGENTS),
        "requestParameters": kind.parameters(rng),
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "readOnly": kind.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{kind.source.split('.')[0]}.{region}.amazonaws.com",
        },
    }
    if rng.random() < 0.03:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = f"User is not authorized to perform: {kind.name}"
    if kind.name == "ConsoleLogin":
        record["eventType"] = "AwsConsoleSignIn"
        record["responseElements"] = {"ConsoleLogin": "Success"}
        record["additionalEventData"] = {
            "MFAUsed": rng.choice(("Yes", "No")),
            "MobileVersion": "No",
        }
    if kind.source == "kms.amazonaws.com":
        record["resources"] = [
            {
                "accountId": account,
                "type": "AWS::KMS::Key",
                "ARN": f"arn:aws:kms:{region}:{account}:key/{uuid.UUID(int=rng.getrandbits(128))}",
            }
        ]
    return record


def _write_file(root: Path, seed: int, index: int, count: int) -> int:
    """Write log file number ``index``; return its size in bytes."""
    rng = random.Random(seed * 1_000_003 + index)
    account = ACCOUNTS[index % len(ACCOUNTS)]
    region = REGIONS[index % len(REGIONS)]
    # One file per account and region every five minutes, as a trail delivers them.
    delivered = START + dt.timedelta(minutes=5 * (index // (len(ACCOUNTS) * len(REGIONS))))
    folder = root / "AWSLogs" / account / "CloudTrail" / region / delivered.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        synthetic_record(rng, account, region, delivered - dt.timedelta(seconds=rng.randrange(300)))
        for _ in range(count)
    ]
    name = (
        f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{rng.getrandbits(64):016X}.json.gz"
    )
    path = folder / name
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as handle:
        json.dump({"Records": records}, handle, separators=(",", ":"))
    return path.stat().st_size


def generate(root: Path, records: int, seed: int = 1, workers: int | None = None) -> int:
    """Write ``records`` synthetic records under ``root`` in the S3 layout; return total bytes."""
    counts = [
        min(RECORDS_PER_FILE, records - start) for start in range(0, records, RECORDS_PER_FILE)
    ]
    if workers == 1:
        # No child process: forking a process with running threads, such as pytest with
        # DuckDB loaded, can crash the child.
        return sum(_write_file(root, seed, index, count) for index, count in enumerate(counts))
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        futures = [
            pool.submit(_write_file, root, seed, index, count) for index, count in enumerate(counts)
        ]
        return sum(future.result() for future in futures)


# Measurements.

KINDS = (
    "floor",
    "canonical",
    "all rules",
    "cache write",
    "cache read",
    "canonical cache write",
    "canonical cache read",
)
HEADERS = ("process", "median s", "min s", "max s", "median CPU s", "peak RSS MiB", "matches")
GOAL_FLOOR_RATIO = 1.5
GOAL_CACHE_RATIO = 0.1
GOAL_RSS_MIB = 2048
FLOOR_STRUCTURE = '{"Records":[{"eventID":"VARCHAR"}]}'
_RECORDS_LINE = re.compile(r"^(\d+) records in (\d+) files")


def count_records(folder: Path, read_json: bool = False) -> int:
    """Count every record under ``folder`` with one DuckDB query: the floor of a hunt.

    The default reads each file as the hunt does (``read_json_objects`` and ``from_json``)
    with a one-column structure. ``read_json`` uses ``read_json`` with an explicit column
    list instead, for comparison.
    """
    import duckdb

    pattern = str(folder / "**" / "*.json.gz").replace("'", "''")
    if read_json:
        query = (
            "SELECT count(*) FROM (SELECT unnest(Records) FROM read_json("
            f"'{pattern}', columns = {{'Records': 'STRUCT(eventID VARCHAR)[]'}}, "
            "format = 'unstructured'))"
        )
    else:
        query = (
            f"SELECT count(*) FROM (SELECT unnest(from_json(json, '{FLOOR_STRUCTURE}').Records) "
            f"FROM read_json_objects('{pattern}', format = 'unstructured'))"
        )
    con = duckdb.connect(":memory:", config={"temp_directory": ""})
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0


# The stages of a hunt that reads the cache, as ``siemgen hunt -f jsonl -o FILE`` runs them.
PHASES = (
    ("imports", "import siemgen.hunt and its output modules (DuckDB among them)"),
    ("rules", "load the converted rules from the cache"),
    ("scan", "find the files, look them up in the manifest, scan the Parquet copy"),
    ("render", "render the matches as JSON lines"),
    ("write", "write the output file"),
)


def cached_hunt_phases(logs: Path, cache: Path, output: Path) -> dict[str, float]:
    """Run a hunt over ``logs`` that reads ``cache`` in this process, timing each stage.

    The calls are those ``siemgen hunt`` makes after parsing its command line, so the stages
    add up to the hunt without the interpreter and CLI start-up.
    """
    started = time.perf_counter()
    from siemgen.hunt import Hunt, load_rules
    from siemgen.hunt.output import render_results
    from siemgen.output import write_report

    times = {"imports": time.perf_counter() - started}
    mark = time.perf_counter()
    rule_set = load_rules([RULES], cache)
    times["rules"] = time.perf_counter() - mark
    mark = time.perf_counter()
    result = Hunt(rule_set.detections, cache=cache).run([logs])
    times["scan"] = time.perf_counter() - mark
    mark = time.perf_counter()
    data = render_results(result, rule_set, "jsonl")
    times["render"] = time.perf_counter() - mark
    mark = time.perf_counter()
    write_report(output, data, "--output")
    times["write"] = time.perf_counter() - mark
    return times


@dataclass
class Sample:
    """The timed runs of one kind of process at one size."""

    runs: list[common.Run] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)
    records: list[int] = field(default_factory=list)

    def walls(self) -> list[float]:
        """Return the wall times in seconds, in run order."""
        return [run.wall for run in self.runs]


@dataclass
class SizeResult:
    """Every kind of process measured on one generated data set."""

    records: int
    files: int
    gzip_bytes: int
    samples: dict[str, Sample] = field(default_factory=dict)
    read_json_floor: common.Run | None = None
    phases: list[dict[str, float]] = field(default_factory=list)
    """Per run, the seconds of each stage in ``PHASES`` of a hunt that reads the cache."""
    startup: list[float] = field(default_factory=list)
    """Per run, the wall time of ``siemgen --version``: interpreter and CLI start-up."""

    def median(self, kind: str) -> float:
        """Return the median wall time of one kind."""
        return common.median(self.samples[kind].walls())

    def paired_ratio(self, kind: str, base: str) -> float:
        """Return the median over rounds of ``kind``'s time divided by ``base``'s time."""
        pairs = zip(self.samples[kind].walls(), self.samples[base].walls(), strict=True)
        return common.median([top / bottom for top, bottom in pairs])

    def peak_rss_mib(self) -> float:
        """Return the largest peak RSS of any hunt process, in MiB."""
        return (
            max(run.max_rss_kib for sample in self.samples.values() for run in sample.runs) / 1024
        )


def prepare_data(workdir: Path, records: int, seed: int) -> tuple[Path, int, int]:
    """Generate (or reuse) the data set of one size; return its folder, files and bytes."""
    folder = workdir / f"logs-{records}-seed{seed}"
    # The marker sits beside the folder, where no hunt reads it as a log file.
    marker = workdir / f"logs-{records}-seed{seed}.complete.json"
    if not marker.exists():
        if folder.exists():
            shutil.rmtree(folder)
        started = time.perf_counter()
        size = generate(folder, records, seed)
        print(
            f"generated {records} records ({size / 1e6:.0f} MB of gzip) in "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        marker.write_text(json.dumps({"records": records, "bytes": size}) + "\n")
    files = sum(1 for _ in folder.rglob("*.json.gz"))
    size = json.loads(marker.read_text())["bytes"]
    return folder, files, int(size)


def _hunt_command(
    siemgen: Path, logs: Path, rules: Path, out: Path, cache: Path | None
) -> list[str]:
    command = [
        str(siemgen),
        "hunt",
        str(logs),
        "--rules",
        str(rules),
        "-f",
        "jsonl",
        "-o",
        str(out),
    ]
    if cache is not None:
        command += ["--cache", str(cache)]
    return command


def _records_read(log: Path) -> int:
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        found = _RECORDS_LINE.match(line)
        if found:
            return int(found.group(1))
    return -1


def measure_size(
    workdir: Path,
    env: dict[str, str],
    records: int,
    runs: int,
    warmup: int,
    seed: int,
    read_json: bool,
) -> SizeResult:
    """Time every kind of process on one data set, all kinds in turn within each round."""
    logs, files, size = prepare_data(workdir, records, seed)
    result = SizeResult(records, files, size, {kind: Sample() for kind in KINDS})
    siemgen = common.executable("siemgen")
    python = Path(sys.executable)
    script = Path(__file__).resolve()
    scratch = workdir / f"runs-{records}"
    for round_index in range(warmup + runs):
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        cache = scratch / "cache"
        canonical_cache = scratch / "canonical-cache"
        commands = {
            "floor": [str(python), str(script), "--count", str(logs)],
            "canonical": _hunt_command(siemgen, logs, CANONICAL, scratch / "canonical.jsonl", None),
            "all rules": _hunt_command(siemgen, logs, RULES, scratch / "all.jsonl", None),
            "cache write": _hunt_command(siemgen, logs, RULES, scratch / "write.jsonl", cache),
            "cache read": _hunt_command(siemgen, logs, RULES, scratch / "read.jsonl", cache),
            "canonical cache write": _hunt_command(
                siemgen, logs, CANONICAL, scratch / "canonical-write.jsonl", canonical_cache
            ),
            "canonical cache read": _hunt_command(
                siemgen, logs, CANONICAL, scratch / "canonical-read.jsonl", canonical_cache
            ),
        }
        for kind, command in commands.items():
            log = scratch / f"{kind.replace(' ', '-')}.log"
            run = common.run_timed(command, REPO, log, env)
            common.require_exit(run, command, (0,))
            if round_index < warmup:
                continue
            sample = result.samples[kind]
            sample.runs.append(run)
            if kind == "floor":
                sample.records.append(int(log.read_text().split()[0]))
                sample.matches.append(0)
            else:
                out = Path(command[command.index("-o") + 1])
                sample.matches.append(len(out.read_text(encoding="utf-8").splitlines()))
                sample.records.append(_records_read(log))
        if round_index >= warmup:
            print(
                f"{records} records: round {round_index - warmup + 1} of {runs} done",
                file=sys.stderr,
            )
    # The last round's cache is still there: time the stages of a hunt that reads it.
    for index in range(runs):
        command = [str(python), str(script), "--phases", str(logs), "--phases-cache", str(cache)]
        log = scratch / f"phases-{index}.log"
        common.require_exit(common.run_timed(command, REPO, log, env), command, (0,))
        result.phases.append(json.loads(log.read_text(encoding="utf-8").splitlines()[-1]))
        version = [str(siemgen), "--version"]
        started = common.run_timed(version, REPO, scratch / "version.log", env)
        common.require_exit(started, version, (0,))
        result.startup.append(started.wall)
    if read_json:
        command = [str(python), str(script), "--count", str(logs), "--read-json"]
        log = scratch / "read-json-floor.log"
        result.read_json_floor = common.run_timed(command, REPO, log, env, timeout=1800)
        common.require_exit(result.read_json_floor, command, (0,))
    return result


# Reporting.


def _rows(result: SizeResult) -> list[list[str]]:
    rows = []
    for kind in KINDS:
        sample = result.samples[kind]
        walls = sample.walls()
        rows.append(
            [
                kind,
                common.seconds(common.median(walls)),
                common.seconds(min(walls)),
                common.seconds(max(walls)),
                common.seconds(common.median([run.cpu for run in sample.runs])),
                common.mebibytes(max(run.max_rss_kib for run in sample.runs)),
                str(sample.matches[0]) if kind != "floor" else "-",
            ]
        )
    return rows


def _goal(met: bool) -> str:
    return "met" if met else "NOT met"


def goal_lines(results: list[SizeResult]) -> list[str]:
    """Check the goals at the largest size and the growth across sizes."""
    largest = max(results, key=lambda result: result.records)
    all_ratio = largest.paired_ratio("all rules", "floor")
    cache_ratio = largest.paired_ratio("cache read", "cache write")
    canonical_cache_ratio = largest.paired_ratio("canonical cache read", "canonical cache write")
    rss = largest.peak_rss_mib()
    lines = [
        f"- All rules against the floor at {largest.records} records: {all_ratio:.2f} times "
        f"(goal at most {GOAL_FLOOR_RATIO}: {_goal(all_ratio <= GOAL_FLOOR_RATIO)}).",
        f"- Canonical rule against the floor: {largest.paired_ratio('canonical', 'floor'):.2f} "
        "times.",
        f"- Cached hunt against the hunt that wrote the cache, all rules: {cache_ratio:.3f} "
        f"times (goal at most {GOAL_CACHE_RATIO}: {_goal(cache_ratio <= GOAL_CACHE_RATIO)}).",
        "- The same with the canonical rule: "
        f"{canonical_cache_ratio:.3f} times (goal at most {GOAL_CACHE_RATIO}: "
        f"{_goal(canonical_cache_ratio <= GOAL_CACHE_RATIO)}).",
        f"- Peak RSS of any hunt process: {rss:.0f} MiB (goal below {GOAL_RSS_MIB} MiB: "
        f"{_goal(rss < GOAL_RSS_MIB)}).",
    ]
    if len(results) > 1:
        smallest = min(results, key=lambda result: result.records)
        per_small = smallest.median("all rules") / smallest.records
        per_large = largest.median("all rules") / largest.records
        lines.append(
            f"- Growth: seconds per record with all rules at {largest.records} records are "
            f"{per_large / per_small:.2f} times those at {smallest.records} records (1.00 is "
            "linear; fixed start-up costs push small sizes above the line)."
        )
    return lines


def growth_rows(results: list[SizeResult]) -> list[list[str]]:
    """Return one row per size: records, files, gzip MB and seconds per million records."""
    rows = []
    for result in sorted(results, key=lambda item: item.records):
        millions = result.records / 1e6
        rows.append(
            [
                str(result.records),
                str(result.files),
                f"{result.gzip_bytes / 1e6:.0f}",
                common.seconds(result.median("floor")),
                common.seconds(result.median("all rules")),
                common.seconds(result.median("floor") / millions),
                common.seconds(result.median("all rules") / millions),
                f"{result.paired_ratio('all rules', 'floor'):.2f}",
            ]
        )
    return rows


GROWTH_HEADERS = (
    "records",
    "files",
    "gzip MB",
    "floor s",
    "all rules s",
    "floor s per 1M",
    "all rules s per 1M",
    "all rules / floor",
)


def report_markdown(results: list[SizeResult], argv: list[str], runs: int, warmup: int) -> str:
    """Return the ``## hunt`` section of docs/benchmarks.md."""
    lines = [
        "`siemgen hunt` over synthetic CloudTrail logs in the S3 layout (gzip files of "
        f"{RECORDS_PER_FILE} records, a mix of {len(EVENTS)} API calls across "
        f"{len(ACCOUNTS)} accounts and {len(set(REGIONS))} regions), against DuckDB's bare "
        "`count(*)` over the same files.",
        "",
        f"- Command: `{common.display_command(argv)}`",
        *common.machine_lines(),
        f"- DuckDB {common.package_version('duckdb')}.",
        f"- Rounds: {warmup} untimed warm-up, then {runs} measured. Each round first runs the "
        "floor, a hunt with the canonical rule and a hunt with every rule in `sigma/`. It then "
        "runs a hunt with `--cache` into an empty folder and the same hunt again reading the "
        "cache, and that pair again with the canonical rule. Every process is timed by wall "
        "clock from start to exit, so hunts include Python start-up, rule loading and "
        "conversion and writing the JSON lines output.",
        "- The floor is one Python process running `SELECT count(*)` over `read_json_objects` "
        "and `from_json` with a one-column structure, the way the hunt reads files.",
        "- Ratios are medians over rounds of the ratio within each round.",
        common.isolation_line(),
        common.rss_line(),
        "",
    ]
    for result in sorted(results, key=lambda item: item.records):
        lines += [
            f"### {result.records} records ({result.files} files, "
            f"{result.gzip_bytes / 1e6:.0f} MB of gzip)",
            "",
            common.markdown_table(HEADERS, _rows(result)),
            "",
        ]
        if result.read_json_floor is not None:
            lines += [
                "The same count with `read_json` and an explicit `columns` list "
                f"(`STRUCT(eventID VARCHAR)[]`) took {result.read_json_floor.wall:.1f} s in one "
                "run, which is why the hunt reads with `read_json_objects` and `from_json`.",
                "",
            ]
    lines += [
        "### Growth with the number of records",
        "",
        common.markdown_table(GROWTH_HEADERS, growth_rows(results)),
        "",
        "### Goals",
        "",
        *goal_lines(results),
    ]
    largest = max(results, key=lambda item: item.records)
    if largest.phases:
        lines += ["", *phase_lines(largest)]
    return "\n".join(lines)


def phase_lines(result: SizeResult) -> list[str]:
    """Return the section on where a hunt that reads the cache spends its time."""
    startup = common.median(result.startup)
    medians = {name: common.median([run[name] for run in result.phases]) for name, _ in PHASES}
    table_rows = [
        ["start-up", "`siemgen --version`: interpreter, Typer and the CLI", common.seconds(startup)]
    ]
    table_rows += [[name, meaning, common.seconds(medians[name])] for name, meaning in PHASES]
    total = startup + sum(medians.values())
    fixed = startup + medians["imports"]
    write = result.median("cache write")
    return [
        "### Where the cached hunt spends its time",
        "",
        f"At {result.records} records, {len(result.phases)} runs of the stages of a hunt that "
        "reads the cache, timed inside one process each (`benchmarks/hunt.py --phases`), and "
        "as many runs of `siemgen --version`. Medians in seconds:",
        "",
        common.markdown_table(("stage", "what it does", "median s"), table_rows),
        "",
        f"The stages add up to {total:.2f} s, against {result.median('cache read'):.2f} s for "
        "the whole cached hunt above. The stages leave out the CLI's own steps around them, "
        "such as the summary, and the interpreter's exit. Start-up and imports alone take "
        f"{fixed:.2f} s, {fixed / write:.3f} of the hunt that wrote the cache, so a cached hunt "
        f"at a tenth of it leaves {0.1 * write - fixed:.2f} s for everything else.",
    ]


def report_json(results: list[SizeResult]) -> dict[str, Any]:
    """Return the raw figures, one entry per size."""
    return {
        "sizes": [
            {
                "records": result.records,
                "files": result.files,
                "gzip_bytes": result.gzip_bytes,
                "kinds": {
                    kind: {
                        "wall": sample.walls(),
                        "cpu": [run.cpu for run in sample.runs],
                        "max_rss_kib": [run.max_rss_kib for run in sample.runs],
                        "matches": sample.matches,
                        "records": sample.records,
                    }
                    for kind, sample in result.samples.items()
                },
                "phases": result.phases,
                "startup": result.startup,
                "ratios": {
                    "all_rules_to_floor": result.paired_ratio("all rules", "floor"),
                    "canonical_to_floor": result.paired_ratio("canonical", "floor"),
                    "cache_read_to_cache_write": result.paired_ratio("cache read", "cache write"),
                    "canonical_cache_read_to_cache_write": result.paired_ratio(
                        "canonical cache read", "canonical cache write"
                    ),
                },
            }
            for result in results
        ]
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records",
        default="1000000",
        help="Number of records to generate; a comma-separated list measures several sizes.",
    )
    parser.add_argument("--runs", type=int, default=5, help="Measured rounds per size.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed rounds per size first.")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the synthetic records.")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="Folder for the generated logs and the runs, kept afterwards so a later run "
        "reuses the logs. Default: a temporary folder, deleted at the end.",
    )
    parser.add_argument(
        "--read-json-floor",
        action="store_true",
        help="Also time the count with read_json and an explicit column list, once per size.",
    )
    parser.add_argument("--json", type=Path, help="Write the raw figures to this JSON file.")
    parser.add_argument(
        "--write-doc", action="store_true", help="Replace the hunt section of docs/benchmarks.md."
    )
    parser.add_argument("--count", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--phases", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--phases-cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--read-json", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_benchmark(args: argparse.Namespace, argv: list[str], workdir: Path) -> int:
    """Measure every size, print the report and write the requested files."""
    sizes = [int(part) for part in str(args.records).split(",") if part.strip()]
    env = common.isolated_environment(workdir / "isolated")
    results = [
        measure_size(workdir, env, size, args.runs, args.warmup, args.seed, args.read_json_floor)
        for size in sizes
    ]
    text = report_markdown(results, argv, args.runs, args.warmup)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(report_json(results), indent=2) + "\n", encoding="utf-8")
    if args.write_doc:
        common.update_section(common.DOC, "hunt", text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or one floor count when called with --count."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    if args.count is not None:
        print(count_records(args.count, read_json=args.read_json))
        return 0
    if args.phases is not None:
        cache = args.phases_cache
        times = cached_hunt_phases(args.phases, cache, cache.parent / "phases.jsonl")
        print(json.dumps(times))
        return 0
    if args.runs < 1:
        print("error: --runs must be at least 1", file=sys.stderr)
        return 2
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run_benchmark(args, arguments, args.workdir.resolve())
    with tempfile.TemporaryDirectory(prefix="siemgen-bench-hunt-") as folder:
        return run_benchmark(args, arguments, Path(folder))


if __name__ == "__main__":
    sys.exit(main())
