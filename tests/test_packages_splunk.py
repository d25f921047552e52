"""The Splunk app: .conf escaping, saved-search settings, the tarball and splunk-appinspect."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from siemgen.build import generate
from siemgen.packages.common import ARCHIVE_MTIME, deterministic_tar_gz, one_line
from siemgen.packages.conf import ConfValueError, Stanza, conf_value, stanza_name
from siemgen.packages.splunk_app import build_splunk_app
from siemgen.rules import load_collection
from siemgen.targets import TargetOptions

from paths import CANONICAL, RULES

configuration_file = pytest.importorskip("splunk_appinspect.configuration_file")
configuration_parser = pytest.importorskip("splunk_appinspect.configuration_parser")

PACKAGE_DATA = Path(__file__).resolve().parent / "data" / "packages"
TEST_RULES = PACKAGE_DATA / "rules"
APP = "siemgen_cloudtrail"
FOLDER = f"splunk/app/{APP}"
TARBALL = f"splunk/{APP}.tar.gz"
APP_FILES = [
    "README.md",
    "app.manifest",
    "default/app.conf",
    "default/macros.conf",
    "default/savedsearches.conf",
    "metadata/default.meta",
]
SAVED_SEARCH_KEYS = {
    "description",
    "search",
    "enableSched",
    "cron_schedule",
    "schedule_window",
    "dispatch.earliest_time",
    "dispatch.latest_time",
    "counttype",
    "relation",
    "quantity",
    "alert.track",
    "alert.severity",
    "alert.digest_mode",
    "alert.suppress",
    "alert.suppress.fields",
    "alert.suppress.period",
    "action.correlationsearch.enabled",
    "action.correlationsearch.label",
    "action.correlationsearch.annotations",
}


def splunk_files(paths: list[Path], options: TargetOptions | None = None) -> dict[str, bytes]:
    result = generate(load_collection(paths), options, artifacts=[build_splunk_app])
    assert result.ok, [str(error) for error in result.errors]
    return result.files


def parse_conf(data: bytes) -> object:
    conf = configuration_file.ConfigurationFile()
    configuration_parser.parse(
        data.decode().split("\n"), conf, configuration_parser.configuration_lexer
    )
    return conf


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return splunk_files([CANONICAL, TEST_RULES])


def test_app_has_every_file(files: dict[str, bytes]) -> None:
    written = sorted(name[len(FOLDER) + 1 :] for name in files if name.startswith(FOLDER))
    assert written == APP_FILES
    for name in written:
        assert files[f"{FOLDER}/{name}"].endswith(b"\n"), name
        assert not files[f"{FOLDER}/{name}"].endswith(b"\n\n"), name


def test_tarball_holds_the_app_folder(files: dict[str, bytes]) -> None:
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(files[TARBALL]), mode="r:gz") as archive:
        members = archive.getmembers()
        for member in members:
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                contents[member.name[len(APP) + 1 :]] = extracted.read()
    names = [member.name for member in members]
    assert names == sorted(names)
    assert {name.split("/")[0] for name in names} == {APP}
    for member in members:
        assert member.mtime == ARCHIVE_MTIME, member.name
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.pax_headers == {}, member.name
        assert member.mode == (0o755 if member.isdir() else 0o644), member.name
    for relative, data in contents.items():
        assert data == files[f"{FOLDER}/{relative}"], relative
    assert sorted(name[len(APP) + 1 :] for name in names if "." in name) == APP_FILES


def test_tarball_gzip_header_has_no_time_or_name(files: dict[str, bytes]) -> None:
    header = files[TARBALL][:10]
    assert header[:3] == b"\x1f\x8b\x08"
    # The FLG byte has no FNAME (0x08) field, and the MTIME bytes 4-7 are zero.
    assert header[3] & 0x08 == 0
    assert header[4:8] == b"\x00\x00\x00\x00"


def test_tarball_is_byte_identical_across_builds(files: dict[str, bytes]) -> None:
    again = splunk_files([CANONICAL, TEST_RULES])
    assert again[TARBALL] == files[TARBALL]
    assert sorted(again) == sorted(files)


def test_tarball_depends_only_on_contents() -> None:
    first = deterministic_tar_gz({"b/x.conf": b"1\n", "a/y.conf": b"2\n"})
    second = deterministic_tar_gz({"a/y.conf": b"2\n", "b/x.conf": b"1\n"})
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as archive:
        members = archive.getmembers()
    assert [member.name for member in members] == ["a", "a/y.conf", "b", "b/x.conf"]
    assert [member.isdir() for member in members] == [True, False, True, False]
    # A plain ustar archive has no pax header blocks ("././@PaxHeader").
    assert b"PaxHeader" not in gzip.decompress(first)


def test_injected_title_stays_one_stanza(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/savedsearches.conf"])
    names = sorted(conf.section_names())  # type: ignore[attr-defined]
    assert names == [
        "siemgen - AWS IAM Policy Changed",
        "siemgen - Access key created for another user",
        "siemgen - Injected title (injected stanza) search = | delete",
    ]
    assert conf.errors == []  # type: ignore[attr-defined]


def test_injected_values_stay_in_their_keys(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/savedsearches.conf"])
    for section in conf.sections():  # type: ignore[attr-defined]
        assert set(section.settings_names()) == SAVED_SEARCH_KEYS, section.name
    stanza = conf.get_section(  # type: ignore[attr-defined]
        "siemgen - Injected title (injected stanza) search = | delete"
    )
    description = stanza.get_option("description").value
    assert description == (
        "First line [evil] disabled = 1 enableSched = 0 "
        "(Sigma rule 5d1f6a0e-3c2b-4e8f-9a7d-1b2c3d4e5f60)"
    )
    assert stanza.get_option("enableSched").value == "1"
    search = stanza.get_option("search").value
    assert search == (
        '`siemgen_cloudtrail_events` eventName="CreateUser" '
        'userAgent="agent ] [stanza in a value] key = value"'
    )


def test_saved_search_schedule_overlaps(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/savedsearches.conf"])
    stanza = conf.get_section("siemgen - AWS IAM Policy Changed")  # type: ignore[attr-defined]

    def value(key: str) -> str:
        return str(stanza.get_option(key).value)

    assert value("enableSched") == "1"
    assert value("cron_schedule") == "*/10 * * * *"
    # Runs every 10 minutes over the last 15, so consecutive windows overlap by 5 minutes,
    # and the overlap is suppressed per event.
    assert value("dispatch.earliest_time") == "-15m@m"
    assert value("dispatch.latest_time") == "now"
    assert value("alert.suppress.fields") == "eventID"
    assert value("alert.severity") == "4"


def test_saved_search_uses_macro_not_sourcetype(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/savedsearches.conf"])
    stanza = conf.get_section("siemgen - AWS IAM Policy Changed")  # type: ignore[attr-defined]
    search = stanza.get_option("search").value
    assert search.startswith('`siemgen_cloudtrail_events` eventSource="iam.amazonaws.com" ')
    assert "sourcetype" not in search
    assert "index=" not in search


def test_annotations_list_attack_and_controls(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/savedsearches.conf"])
    stanza = conf.get_section("siemgen - AWS IAM Policy Changed")  # type: ignore[attr-defined]
    annotations = json.loads(stanza.get_option("action.correlationsearch.annotations").value)
    assert annotations["mitre_attack"] == ["T1098", "T1098.003", "T1484"]
    assert annotations["cis_aws_foundations"] == ["1.2.0 3.4", "1.4.0 4.4"]
    assert annotations["aws_security_hub"] == ["CloudWatch.4"]


def test_severity_follows_rule_level(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/savedsearches.conf"])
    levels = {
        "siemgen - Injected title (injected stanza) search = | delete": "5",
        "siemgen - Access key created for another user": "2",
    }
    for name, severity in levels.items():
        stanza = conf.get_section(name)  # type: ignore[attr-defined]
        assert stanza.get_option("alert.severity").value == severity, name


def test_macro_selects_sourcetype(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/macros.conf"])
    definition = conf.get("siemgen_cloudtrail_events", "definition")  # type: ignore[attr-defined]
    assert definition == 'sourcetype="aws:cloudtrail"'


def test_macro_takes_index_option() -> None:
    files = splunk_files([CANONICAL], TargetOptions(splunk_index='aws "prod"'))
    conf = parse_conf(files[f"{FOLDER}/default/macros.conf"])
    definition = conf.get("siemgen_cloudtrail_events", "definition")  # type: ignore[attr-defined]
    assert definition == 'index="aws \\"prod\\"" sourcetype="aws:cloudtrail"'


def test_app_conf_names_app_and_version(files: dict[str, bytes]) -> None:
    conf = parse_conf(files[f"{FOLDER}/default/app.conf"])
    assert conf.get("package", "id") == APP  # type: ignore[attr-defined]
    assert conf.get("id", "name") == APP  # type: ignore[attr-defined]
    assert conf.get("launcher", "version") == conf.get("id", "version")  # type: ignore[attr-defined]
    manifest = json.loads(files[f"{FOLDER}/app.manifest"])
    assert manifest["info"]["id"]["name"] == APP


def test_repeated_titles_get_distinct_names(tmp_path: Path) -> None:
    for name, rule_id in (
        ("first", "1a2b3c4d-0000-4000-8000-000000000001"),
        ("second", "1a2b3c4d-0000-4000-8000-000000000002"),
    ):
        text = CANONICAL.read_text(encoding="utf-8").replace(
            "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60", rule_id
        )
        (tmp_path / f"{name}.yml").write_text(text, encoding="utf-8")
    files = splunk_files([tmp_path])
    conf = parse_conf(files[f"{FOLDER}/default/savedsearches.conf"])
    assert sorted(conf.section_names()) == [  # type: ignore[attr-defined]
        "siemgen - AWS IAM Policy Changed (first)",
        "siemgen - AWS IAM Policy Changed (second)",
    ]


def test_cased_rule_search_matches_its_spl(tmp_path: Path) -> None:
    text = CANONICAL.read_text(encoding="utf-8")
    detection_start = text.index("detection:")
    condition = text.index("    condition:", detection_start)
    cased = (
        text[:detection_start]
        + "detection:\n    selection:\n        userIdentity.userName|cased: Admin\n"
        + text[condition:]
    )
    (tmp_path / "cased.yml").write_text(cased, encoding="utf-8")
    files = splunk_files([tmp_path])
    conf = files[f"{FOLDER}/default/savedsearches.conf"].decode("utf-8")
    assert "userIdentity.userName=CASE(Admin)" in conf


def test_conf_value_continues_lines() -> None:
    assert conf_value("a\r\nb\rc", key="search", multiline=True) == "a\\\nb\\\nc"


@pytest.mark.parametrize(
    ("value", "multiline", "message"),
    [
        ("two\nlines", False, "must be one line"),
        ("ends with \\", False, "ends with a backslash"),
        ("line one \\\nline two", True, "ends with a backslash"),
        ("bell \x07", False, "control character"),
    ],
)
def test_conf_value_rejects_unsafe_text(value: str, multiline: bool, message: str) -> None:
    with pytest.raises(ConfValueError, match=message):
        conf_value(value, key="search", multiline=multiline)


def test_stanza_name_removes_brackets_and_breaks() -> None:
    assert stanza_name("a [b]\n[c] \\") == "a (b) (c)"
    assert one_line(" a\tb\x00\nc ") == "a b c"
    with pytest.raises(ConfValueError, match="empty"):
        stanza_name(" \n\t\\")


def test_stanza_set_escapes_value() -> None:
    stanza = Stanza("s")
    stanza.set("quantity", 0)
    with pytest.raises(ConfValueError, match="'description'"):
        stanza.set("description", "x\ny")
    assert stanza.settings == [("quantity", "0")]


def _appinspect() -> str:
    script = Path(sys.executable).with_name("splunk-appinspect")
    found = str(script) if script.exists() else shutil.which("splunk-appinspect")
    if found is None:
        pytest.skip("splunk-appinspect is not installed (pip install -e '.[test]')")
    return found


def test_appinspect_passes_offline(tmp_path: Path) -> None:
    files = splunk_files([RULES, TEST_RULES])
    tarball = tmp_path / f"{APP}.tar.gz"
    tarball.write_bytes(files[TARBALL])
    report = tmp_path / "appinspect.json"
    # Precert mode runs every check with every tag. The trusted-libraries update is the one
    # step that downloads (metadata of known Python libraries), so it is skipped. The
    # sitecustomize on PYTHONPATH makes any other network use raise.
    environment = {**os.environ, "PYTHONPATH": str(PACKAGE_DATA / "offline")}
    completed = subprocess.run(
        [
            _appinspect(),
            "inspect",
            str(tarball),
            "--mode",
            "precert",
            "--skip-trusted-libraries-update",
            "--data-format",
            "json",
            "--output-file",
            str(report),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]

    summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
    problems = [
        (check["name"], check["result"], check["messages"])
        for report_entry in json.loads(report.read_text(encoding="utf-8"))["reports"]
        for group in report_entry["groups"]
        for check in group["checks"]
        if check["result"] in ("failure", "error", "future_failure", "warning")
    ]
    assert summary["failure"] == 0, problems
    assert summary["error"] == 0, problems
    assert summary["future_failure"] == 0, problems
    assert summary["success"] > 50, summary
