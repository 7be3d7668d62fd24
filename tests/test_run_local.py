"""`auditor run --from`: the whole run (validate, policies, signed bag, report) over local files,
a folder `auditor pull` wrote or plain exports, instead of the network."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
import run_support
from click.testing import CliRunner
from test_archive_support import openssl_verify, ssh_verify

from auditor.archive import layout
from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.archive.verify import verify_bag
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS, SyntheticHistory
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import InputError
from auditor.partitions import HOUR_MS, Partition
from auditor.pipeline import RunSettings, run_audit
from auditor.resources import example_policy
from auditor.sources.settings import local_settings

SECRET = "local-run-secret"
WINDOW = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T06:00Z"]
FAULTS = dict(
    fail_rate=0.1,
    duplicate_rate=0.05,
    conflict_rate=0.03,
    mangled_rate=0.02,
    garbage_rate=0.05,
    truncate_rate=0.05,
)
H0 = Partition(DEFAULT_START_MS)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="auditor@test")


@pytest.fixture(scope="module")
def pulled_and_network(tmp_path_factory, keys):
    """A window pulled from the emulator into a folder, and the bag of a run of the same window
    from the same emulator over the network."""
    folder = tmp_path_factory.mktemp("network")
    config = folder / "auditor.yaml"
    config.write_text("source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n")
    options = EmulatorOptions(messages=1200, days=1, client_secret=SECRET, **FAULTS)
    with run_emulator(options) as emulator:
        connection = [
            *("--config", config, "--base-url", emulator.base_url, "--org", "demo-org"),
            *("--app", "demo-app", "--client-id", "demo-client"),
        ]
        pulled = invoke("pull", *WINDOW, "--out", folder / "pulled", *connection)
        assert pulled.exit_code == 0, pulled.output
        ran = invoke("run", *WINDOW, *connection, *audit_args(keys, folder / "archive"))
        assert ran.exit_code == 0, ran.output
    return folder / "pulled", only_bag(folder / "archive")


def invoke(*args):
    return CliRunner().invoke(
        main, [str(arg) for arg in args], env={"EASEMOB_CLIENT_SECRET": SECRET}
    )


def audit_args(keys, out: Path, *extra) -> list:
    """A run's settings apart from its source: judged as of the window's end, findings never
    failing it, into `out` with its state beside it."""
    return [
        *("--policies", example_policy(), "--key", keys.private_key, "--out", out),
        *("--state", out.with_suffix(".db"), "--as-of", "2026-11-01T06:00Z", "--fail-on", "none"),
        *("--attachments", "skip", "--quiet", *extra),
    ]


def only_bag(archive: Path) -> Path:
    (bag,) = [entry for entry in archive.iterdir() if entry.name.startswith("run-")]
    return bag


def bag_info(bag: Path) -> dict[str, str]:
    lines = (bag / layout.BAG_INFO).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines)


def payload(bag: Path, folder: str) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((bag / "data" / folder).glob("*"))}


def findings(bag: Path) -> list[dict]:
    return [json.loads(line) for line in (bag / "data" / "findings.jsonl").read_text().splitlines()]


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor: error: "), result.stderr
    return lines[0].removeprefix("auditor: error: ")


def write_export(path: Path, hours: int = 3, messages: int = 240) -> list[dict]:
    """An export of the first `hours` of a synthetic history, its hours interleaved."""
    history = SyntheticHistory(messages=messages, days=1)
    records = [
        history.record(i) for i in history.index_range(H0.start_ms, H0.start_ms + hours * HOUR_MS)
    ]
    mixed = records[::2] + records[1::2]
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in mixed))
    return records


def ids_by_hour(bag: Path) -> dict[str, list[str]]:
    return {
        path.stem: sorted(
            json.loads(line)["record"]["msg_id"] for line in path.read_text().splitlines()
        )
        for path in sorted((bag / "data" / "records").glob("*.jsonl"))
    }


# -- a pulled folder: the bytes of the network run ---------------------------------------------


def test_a_run_from_a_pulled_folder_archives_the_bytes_of_the_run_from_the_network(
    pulled_and_network, keys, tmp_path
):
    pulled, network = pulled_and_network

    result = invoke(
        "run", "--from", pulled, *audit_args(keys, tmp_path / "archive", "--workers", "2")
    )

    local = only_bag(tmp_path / "archive")
    assert result.exit_code == 0, result.output
    assert payload(local, "records") == payload(network, "records")
    assert payload(local, "unreadable") == payload(network, "unreadable") != {}
    assert bag_info(local)[layout.MERKLE_ROOT] == bag_info(network)[layout.MERKLE_ROOT]
    # The pull keeps an unreadable piece's bytes, not its line in the served file: `where` (and
    # the message quoting it) says the line of the pull's `.unreadable.txt` instead.
    assert without_where(findings(local)) == without_where(findings(network))
    wheres = [f["details"]["where"] for f in findings(local) if f["rule"] == "unreadable"]
    assert wheres and all(re.fullmatch(r"\d{10}\.unreadable\.txt:\d+", where) for where in wheres)


def without_where(found: list[dict]) -> list[dict]:
    return [
        {**f, "details": {**f["details"], "where": "?"}, "message": "?"}
        if f["rule"] == "unreadable"
        else f
        for f in found
    ]


def test_the_bag_of_a_pulled_folder_verifies_with_openssl_ssh_keygen_and_the_auditor(
    pulled_and_network, keys, tmp_path
):
    pulled, _network = pulled_and_network
    invoke("run", "--from", pulled, *audit_args(keys, tmp_path / "archive"))
    bag = only_bag(tmp_path / "archive")

    assert verify_bag(bag, load_public_key(keys.public_key)).problems == ()
    assert openssl_verify(bag, keys.public_key).returncode == 0
    assert ssh_verify(bag, keys.allowed_signers).returncode == 0
    info = bag_info(bag)
    assert info["Source-API"] == "local"
    files = len([p for p in pulled.iterdir() if p.name[:10].isdigit()])
    assert info["Source-Base-URL"].startswith(f"local files pulled ({files} files, stat sha256 ")
    assert str(tmp_path) not in (bag / layout.BAG_INFO).read_text()  # names, not paths


def test_an_hour_of_the_window_the_pull_did_not_complete_is_refused_in_one_line(
    pulled_and_network, keys, tmp_path
):
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    (pulled / "2026110103.jsonl").unlink()

    message = one_error_line(invoke("run", "--from", pulled, *audit_args(keys, tmp_path / "a")))

    assert message == (
        f"{pulled}: 1 hour(s) of the window were not pulled (2026110103; not ready at the "
        "source, or the pull was stopped): pull them, or audit a window of pulled hours"
    )
    assert not (tmp_path / "a.db").exists()


def test_a_pulled_file_changed_after_the_run_began_stops_it_in_one_line(
    pulled_and_network, keys, tmp_path
):
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    hour = pulled / "2026110102.jsonl"

    with local_settings([pulled], {}, None, tmp_path / "work") as (source, prepared):
        with hour.open("ab") as handle:  # `auditor pull --refetch` meanwhile
            handle.write(hour.read_bytes().splitlines(keepends=True)[0])
        with pytest.raises(InputError) as caught:
            run_audit(settings_of(source, prepared, keys, tmp_path))

    assert str(caught.value) == (
        f"{hour}: the file changed while being read (since the run began); run again once "
        "nothing writes to it"
    )


def settings_of(source, prepared, keys, folder: Path, **overrides) -> RunSettings:
    since, until = prepared.window(None, None)
    values = dict(
        source=source,
        policy_path=example_policy(),
        key_path=keys.private_key,
        out_dir=folder / "archive",
        state_path=folder / "state.db",
        since_ms=since,
        until_ms=until,
        attachments="skip",
        as_of_ms=until,
    )
    return RunSettings(**(values | overrides))


def test_a_file_of_a_pulled_folder_is_refused_in_one_line_naming_the_folder(
    pulled_and_network, keys, tmp_path
):
    pulled = pulled_and_network[0]
    hour = pulled / "2026110100.jsonl"

    message = one_error_line(invoke("run", "--from", hour, *audit_args(keys, tmp_path / "a")))

    assert message == (
        f"{hour} is in a folder auditor pull wrote: give --from the folder ({pulled}), and "
        "--since and --until for some of its hours"
    )


@pytest.mark.parametrize("name", ["extra.jsonl", "EXTRA.JSONL", "late.Json.Gz"])
def test_a_record_file_added_to_a_pulled_folder_is_refused_whatever_the_case_of_its_name(
    pulled_and_network, keys, tmp_path, name
):
    """A file named in capitals was read past without a word, its records never audited."""
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    (pulled / name).write_bytes(b'{"msg_id":"x","timestamp":1793491200001}\n')

    message = one_error_line(invoke("run", "--from", pulled, *audit_args(keys, tmp_path / "a")))

    assert message == (
        f"{pulled.resolve() / name}: not a file auditor pull writes, in the folder it pulled "
        "into; move it out, or audit it in a run of its own"
    )


def test_a_pull_named_in_beijing_time_is_read_in_its_zone_and_another_zone_is_refused(
    keys, tmp_path
):
    write_export(tmp_path / "export.jsonl", hours=2)
    pulled = tmp_path / "pulled"
    since, until = "2026-11-01T08:00+08:00", "2026-11-01T10:00+08:00"
    args = ("--since", since, "--until", until, "--out", pulled, "--hour-timezone", "+8")
    assert invoke("pull", "--from", tmp_path / "export.jsonl", *args).exit_code == 0

    ran = invoke("run", "--from", pulled, *audit_args(keys, tmp_path / "a"))
    refused = invoke(
        "run", "--from", pulled, "--hour-timezone", "UTC", *audit_args(keys, tmp_path / "b")
    )

    assert ran.exit_code == 0, ran.output
    assert sorted(ids_by_hour(only_bag(tmp_path / "a"))) == ["2026110108", "2026110109"]
    assert one_error_line(refused) == (
        f"{pulled} holds hours named in +08:00, not UTC: give the pull's --hour-timezone, or none"
    )


# -- plain exports -------------------------------------------------------------------------------


def test_an_export_with_mixed_hours_is_audited_hour_by_hour_over_the_hours_it_holds(keys, tmp_path):
    records = write_export(tmp_path / "export.jsonl")

    result = invoke(
        "run",
        "--from",
        tmp_path / "export.jsonl",
        *audit_args(keys, tmp_path / "a", "--workers", "2"),
    )

    bag = only_bag(tmp_path / "a")
    expected: dict[str, list[str]] = {}
    for record in records:
        expected.setdefault(Partition.containing(record["timestamp"]).label(), []).append(
            record["msg_id"]
        )
    assert result.exit_code == 0, result.output
    assert ids_by_hour(bag) == {label: sorted(ids) for label, ids in expected.items()}
    assert (bag_info(bag)["Window-Since"], bag_info(bag)["Window-Until"]) == (
        "2026-11-01T00:00:00Z",
        "2026-11-01T03:00:00Z",
    )
    assert bag_info(bag)["Source-Base-URL"].startswith("local files export.jsonl (1 files, ")
    assert verify_bag(bag, load_public_key(keys.public_key)).problems == ()


def test_a_malformed_line_is_archived_verbatim_with_a_finding_naming_file_and_line(keys, tmp_path):
    path = tmp_path / "export.jsonl"
    write_export(path, hours=1)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:2], b'{"msg_id": "cut-short",\n', *lines[2:]]))

    result = invoke("run", "--from", path, *audit_args(keys, tmp_path / "a"))

    bag = only_bag(tmp_path / "a")
    (unreadable,) = [f for f in findings(bag) if f["rule"] == "unreadable"]
    assert result.exit_code == 0, result.output
    assert payload(bag, "unreadable") == {"2026110100.txt": b'{"msg_id": "cut-short",\n'}
    assert unreadable["severity"] == "high"
    assert unreadable["details"]["where"] == "export.jsonl:3"
    assert unreadable["details"]["error"].startswith("not JSON: ")
    assert sum(len(ids) for ids in ids_by_hour(bag).values()) == len(lines)


def test_the_workers_read_the_hours_sorted_once_never_the_exports(keys, tmp_path):
    export = tmp_path / "export.jsonl"
    records = write_export(export)

    with local_settings([export], {}, None, tmp_path / "work") as (source, prepared):
        export.unlink()  # sorted before any worker starts: no worker can read it again
        outcome = run_audit(settings_of(source, prepared, keys, tmp_path, workers=2))

    assert outcome.records == len(records)
    assert list((tmp_path / "work").iterdir()) == []  # the sorted hours removed after the run


def test_the_same_files_again_are_already_done_and_edited_files_are_a_new_run(keys, tmp_path):
    export = tmp_path / "export.jsonl"
    write_export(export)
    args = ("run", "--from", export, *audit_args(keys, tmp_path / "a", "--json"))

    first, again = invoke(*args), invoke(*args)
    with export.open("ab") as handle:
        handle.write(orjson.dumps({"msg_id": "late", "timestamp": H0.start_ms + 5}) + b"\n")
    edited = invoke(*args)

    outcomes = [json.loads(result.stdout) for result in (first, again, edited)]
    assert [(o["sequence"], o["already_done"]) for o in outcomes] == [
        (1, False),
        (1, True),
        (2, False),
    ]
    assert outcomes[2]["records"] == 1  # the rest was archived by run 1


def test_a_run_from_files_killed_midway_resumes_to_the_bag_of_an_uninterrupted_run(keys, tmp_path):
    export = tmp_path / "export.jsonl"
    write_export(export)
    args = ["run", "--from", export, *audit_args(keys, tmp_path / "a")]
    crash = {**os.environ, "AUDITOR_CRASH_AT": "spool.partition:2"}

    killed = subprocess.run([sys.executable, "-m", "auditor", *map(str, args)], env=crash)
    left = sorted(path.name[:4] for path in (tmp_path / "a" / layout.SPOOL_FOLDER).iterdir())
    resumed = invoke(*args)
    uninterrupted = invoke("run", "--from", export, *audit_args(keys, tmp_path / "b"))

    assert killed.returncode == -signal.SIGKILL
    assert left == ["loca", "run-"]  # its sorted files, and the spool of the hour it finished
    assert (resumed.exit_code, uninterrupted.exit_code) == (0, 0)
    assert run_support.payload(only_bag(tmp_path / "a")) == run_support.payload(
        only_bag(tmp_path / "b")
    )
    assert list((tmp_path / "a" / layout.SPOOL_FOLDER).iterdir()) == []


def test_a_work_folder_a_killed_run_left_is_removed_by_the_next(keys, tmp_path):
    write_export(tmp_path / "export.jsonl", hours=1)
    left = tmp_path / "a" / layout.SPOOL_FOLDER / "local-killed"
    (left / "auditor-local-x").mkdir(parents=True)

    result = invoke("run", "--from", tmp_path / "export.jsonl", *audit_args(keys, tmp_path / "a"))

    assert result.exit_code == 0, result.output
    assert not left.exists()


# -- refused in one line -------------------------------------------------------------------------


def test_a_missing_path_is_one_line_and_exit_2(keys, tmp_path):
    missing = tmp_path / "no-such-export.jsonl"
    assert one_error_line(invoke("run", "--from", missing, *audit_args(keys, tmp_path / "a"))) == (
        f"{missing}: no such file or folder"
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--incremental"], "--incremental runs up to the newest hour Easemob has ready"),
        (["--attachments", "fetch"], "--attachments fetch downloads from Easemob"),
        (["--api", "legacy"], "--from reads local files, not an Easemob server: drop --api"),
    ],
)
def test_what_needs_the_network_is_refused_with_from_in_one_line(keys, tmp_path, extra, says):
    write_export(tmp_path / "export.jsonl", hours=1)
    args = [arg for arg in audit_args(keys, tmp_path / "a") if arg not in ("--attachments", "skip")]

    message = one_error_line(invoke("run", "--from", tmp_path / "export.jsonl", *args, *extra))

    assert message.startswith(says)


def test_hours_of_an_export_outside_the_window_given_are_named_in_a_warning(keys, tmp_path, caplog):
    write_export(tmp_path / "export.jsonl")

    result = invoke(
        "run",
        "--from",
        tmp_path / "export.jsonl",
        *("--since", "2026-11-01T01:00Z", "--until", "2026-11-01T02:00Z"),
        *audit_args(keys, tmp_path / "a"),
    )

    assert result.exit_code == 0, result.output
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert (
        "2 hour(s) the inputs hold lie outside the window (2026-11-01T00:00:00Z .. "
        "2026-11-01T03:00:00Z) and are not audited by this run"
    ) in warning.getMessage()


def test_a_window_given_backwards_with_from_is_one_line_and_no_warning(keys, tmp_path, caplog):
    """Its hours all lay outside the window, and their warning came before the one line that
    names the mistake."""
    write_export(tmp_path / "export.jsonl")

    result = invoke(
        "run",
        "--from",
        tmp_path / "export.jsonl",
        *("--since", "2026-11-01T02:00Z", "--until", "2026-11-01T01:00Z"),
        *audit_args(keys, tmp_path / "a"),
    )

    assert one_error_line(result) == (
        "the window is empty: --until 2026-11-01T01:00:00Z is not after "
        "--since 2026-11-01T02:00:00Z"
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


def test_a_folder_pulled_through_the_legacy_api_runs_into_the_chain_of_hour_file_runs(
    keys, tmp_path
):
    """Neither a pull folder nor an export says which API it came from; the legacy API's
    entity fields are left out when its records are compared with what hour-file runs archived."""
    config = tmp_path / "auditor.yaml"
    config.write_text("source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n")
    options = EmulatorOptions(messages=600, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        connection = [
            *("--config", config, "--base-url", emulator.base_url, "--org", "demo-org"),
            *("--app", "demo-app", "--client-id", "demo-client"),
        ]
        pulled = invoke(
            "pull", *WINDOW, "--out", tmp_path / "pulled", *connection, "--api", "legacy"
        )
        ran = invoke("run", *WINDOW, *connection, *audit_args(keys, tmp_path / "archive"))
    assert (pulled.exit_code, ran.exit_code) == (0, 0), pulled.output + ran.output
    first_hour = min((tmp_path / "pulled").glob("[0-9]*.jsonl"))  # not conflicts.jsonl
    legacy_line = first_hour.read_bytes().splitlines()[0]
    assert b'"uuid"' in legacy_line and b'"modified"' in legacy_line

    again = invoke(
        "run", "--from", tmp_path / "pulled", *WINDOW, *audit_args(keys, tmp_path / "archive")
    )

    assert again.exit_code == 0, again.output
    (bag,) = sorted((tmp_path / "archive").glob("run-000002-*"))
    rules = {finding["rule"] for finding in findings(bag)}
    assert "content-changed-at-source" not in rules and "archived-earlier" in rules
    assert not any(path.stat().st_size for path in (bag / "data" / "records").glob("*.jsonl"))


def test_an_hour_the_pull_recorded_as_expired_is_archived_as_lost_with_its_finding(keys, tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text("source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n")
    window = ["--since", "2026-10-31T23:00Z", "--until", "2026-11-01T01:00Z"]
    start = (DEFAULT_START_MS + 4 * 24 * HOUR_MS) / 1000  # the source keeps hour files 3 days
    with run_emulator(
        EmulatorOptions(messages=1200, client_secret=SECRET, clock_start=start)
    ) as emu:
        connection = [
            *("--config", config, "--base-url", emu.base_url, "--org", "demo-org"),
            *("--app", "demo-app", "--client-id", "demo-client"),
        ]
        pulled = invoke("pull", *window, "--out", tmp_path / "pulled", *connection)
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "pulled" / "2026103123.expired.txt").exists()

    result = invoke(
        "run", "--from", tmp_path / "pulled", *window, *audit_args(keys, tmp_path / "a")
    )

    assert result.exit_code == 0, result.output
    bag = only_bag(tmp_path / "a")
    (lost,) = [f for f in findings(bag) if f["rule"] == "hour-expired"]
    assert (lost["severity"], lost["details"]["label"]) == ("high", "2026103123")
    assert "keeps hour files 3 days" in lost["message"]
    assert "maybe chat message history is expired or unstored" in lost["details"]["answer"]
    held = ids_by_hour(bag)
    assert (held["2026103123"], len(held["2026110100"])) == ([], 50)


@pytest.fixture(scope="module")
def shifting_pull(tmp_path_factory):
    """Two hours pulled from a server that cuts another line short on each download, so the
    pull kept what the different files held together (`files` in its checkpoint)."""
    folder = tmp_path_factory.mktemp("shifting")
    config = folder / "auditor.yaml"
    config.write_text("source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n  max_retries: 1\n")
    window = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T02:00Z"]
    options = EmulatorOptions(messages=200, client_secret=SECRET, shifting_rate=1.0)
    with run_emulator(options) as emu:
        connection = [
            *("--config", config, "--base-url", emu.base_url, "--org", "demo-org"),
            *("--app", "demo-app", "--client-id", "demo-client"),
        ]
        pulled = invoke("pull", *window, "--out", folder / "pulled", *connection)
    assert pulled.exit_code == 0, pulled.output
    hours = json.loads((folder / "pulled" / "checkpoint.json").read_bytes())["hours"]
    assert {label: hour.get("files") for label, hour in hours.items()} == {
        "2026110100": 2,
        "2026110101": 2,
    }
    return folder / "pulled"


def test_an_hour_the_pull_was_served_as_different_broken_files_keeps_its_finding_in_the_run(
    shifting_pull, keys, tmp_path
):
    """A run from the network reports such an hour with a medium `hour-files-differ` finding; a
    run from the pull's folder lost it."""
    result = invoke("run", "--from", shifting_pull, *audit_args(keys, tmp_path / "a"))

    assert result.exit_code == 0, result.output
    differ = [f for f in findings(only_bag(tmp_path / "a")) if f["rule"] == "hour-files-differ"]
    assert [(f["severity"], f["details"]) for f in differ] == [
        ("medium", {"hour": "2026-11-01T00:00:00Z", "files": 2}),
        ("medium", {"hour": "2026-11-01T01:00:00Z", "files": 2}),
    ]


def test_an_hour_file_edited_since_its_pull_loses_the_finding_with_a_warning(
    shifting_pull, keys, tmp_path, caplog
):
    pulled = shutil.copytree(shifting_pull, tmp_path / "pulled")
    hour = pulled / "2026110101.jsonl"
    hour.write_bytes(hour.read_bytes().splitlines(keepends=True)[0])

    result = invoke("run", "--from", pulled, *audit_args(keys, tmp_path / "a"))

    assert result.exit_code == 0, result.output
    reported = findings(only_bag(tmp_path / "a"))
    differ = [f for f in reported if f["rule"] == "hour-files-differ"]
    assert [f["details"]["hour"] for f in differ] == ["2026-11-01T00:00:00Z"]
    altered = [f for f in reported if f["rule"] == "pull-file-altered"]
    assert [(f["details"]["hour"], f["details"]["found"]["lines"]) for f in altered] == [
        ("2026-11-01T01:00:00Z", 1)
    ]
    assert (
        f"{hour}: not the file the pull's checkpoint describes, so the 2 different files the "
        "source served for the hour go unreported; pull the hour again with --refetch"
    ) in caplog.messages


def altered_findings(pulled: Path, keys, out: Path) -> list[dict]:
    """The `pull-file-altered` findings of a run from the pull folder `pulled`, which completes:
    the folder is archived as found, and said to be altered."""
    result = invoke("run", "--from", pulled, *audit_args(keys, out))
    assert result.exit_code == 0, result.output
    return [f for f in findings(only_bag(out)) if f["rule"] == "pull-file-altered"]


def test_an_hour_file_cut_short_since_its_pull_is_archived_with_a_warning_and_a_high_finding(
    pulled_and_network, keys, tmp_path, caplog
):
    """The run archives what the folder holds, and says that it is not what the pull wrote: a
    legal reader of the report sees the folder was altered after the pull."""
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    hour = pulled / "2026110102.jsonl"
    described = json.loads((pulled / "checkpoint.json").read_bytes())["hours"]["2026110102"]
    hour.write_bytes(b"".join(hour.read_bytes().splitlines(keepends=True)[:10]))

    altered = altered_findings(pulled, keys, tmp_path / "a")

    assert [(f["severity"], f["details"]) for f in altered] == [
        (
            "high",
            {
                "hour": "2026-11-01T02:00:00Z",
                "file": "2026110102.jsonl",
                "checkpoint": {"records": described["records"], "sha256": described["sha256"]},
                "found": {"lines": 10, "sha256": hashlib.sha256(hour.read_bytes()).hexdigest()},
            },
        )
    ]
    assert described["records"] > 10
    assert (
        f"{hour}: not the file the pull's checkpoint describes ({described['records']} records, "
        "10 lines found); archived as it is now, with a high finding"
    ) in caplog.messages


def pieces_altered(described: dict, pieces: int, found_sha256: str | None = None) -> dict:
    """The details of hour 02's `pull-file-altered` finding when only its unreadable pieces
    changed: `pieces` found, hashed as `found_sha256` (None: a checkpoint of an earlier version,
    which kept no hash of them, so neither side names one)."""
    said = {"records": described["records"], "sha256": described["sha256"], "pieces": 2}
    seen = {"lines": described["records"], "sha256": described["sha256"], "pieces": pieces}
    if found_sha256 is not None:
        said["pieces_sha256"] = described["unreadable_sha256"]
        seen["pieces_sha256"] = found_sha256
    return {
        "hour": "2026-11-01T02:00:00Z",
        "file": "2026110102.jsonl",
        "checkpoint": said,
        "found": seen,
    }


def test_an_unreadable_piece_removed_since_the_pull_is_reported_by_the_count_the_pull_kept(
    pulled_and_network, keys, tmp_path, caplog
):
    """The checkpoint counts an hour's unreadable pieces: one fewer is reported."""
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    described = json.loads((pulled / "checkpoint.json").read_bytes())["hours"]["2026110102"]
    pieces = pulled / "2026110102.unreadable.txt"
    pieces.write_bytes(pieces.read_bytes().splitlines(keepends=True)[0])
    found = hashlib.sha256(pieces.read_bytes()).hexdigest()

    altered = altered_findings(pulled, keys, tmp_path / "a")

    assert [f["details"] for f in altered] == [pieces_altered(described, 1, found)]
    assert (
        f"{pieces}: not the file the pull's checkpoint describes (2 unreadable pieces, 1 found); "
        "archived as it is now, with a high finding"
    ) in caplog.messages


def test_an_unreadable_piece_changed_since_the_pull_is_reported_though_they_are_as_many(
    pulled_and_network, keys, tmp_path, caplog
):
    """The pull records its unreadable file's size and sha256: a piece's bytes changed, their
    number kept, is reported; counted only, it passed unseen."""
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    described = json.loads((pulled / "checkpoint.json").read_bytes())["hours"]["2026110102"]
    pieces = pulled / "2026110102.unreadable.txt"
    kept = pieces.read_bytes()
    assert (described["unreadable_bytes"], described["unreadable_sha256"]) == (
        len(kept),
        hashlib.sha256(kept).hexdigest(),
    )
    pieces.write_bytes(kept.replace(b"{", b"[", 1))
    found = hashlib.sha256(pieces.read_bytes()).hexdigest()

    altered = altered_findings(pulled, keys, tmp_path / "a")

    assert [(f["severity"], f["details"]) for f in altered] == [
        ("high", pieces_altered(described, 2, found))
    ]
    assert f"sha256 {found}" in altered[0]["message"]
    assert (
        f"{pieces}: not the file the pull's checkpoint describes (its 2 unreadable pieces, "
        f"sha256 {described['unreadable_sha256']}; sha256 {found} found); archived as it is "
        "now, with a high finding"
    ) in caplog.messages


def test_a_checkpoint_from_before_the_pieces_sha256_has_them_checked_by_their_count(
    pulled_and_network, keys, tmp_path
):
    """A folder pulled by an earlier version: its checkpoint counts the pieces only."""
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    document = json.loads((pulled / "checkpoint.json").read_bytes())
    for entry in document["hours"].values():
        entry.pop("unreadable_bytes", None)
        entry.pop("unreadable_sha256", None)
    (pulled / "checkpoint.json").write_bytes(orjson.dumps(document))
    described = document["hours"]["2026110102"]
    pieces = pulled / "2026110102.unreadable.txt"
    pieces.write_bytes(pieces.read_bytes().splitlines(keepends=True)[0])

    altered = altered_findings(pulled, keys, tmp_path / "a")

    assert [f["details"] for f in altered] == [pieces_altered(described, 1)]


def test_an_hour_file_the_pull_never_recorded_is_archived_with_a_high_finding(
    pulled_and_network, keys, tmp_path, caplog
):
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    added = pulled / "2026110106.jsonl"
    added.write_bytes((pulled / "2026110105.jsonl").read_bytes())
    lines = len(added.read_bytes().splitlines())

    altered = altered_findings(pulled, keys, tmp_path / "a")

    assert [(f["severity"], f["details"]) for f in altered] == [
        (
            "high",
            {
                "hour": "2026-11-01T06:00:00Z",
                "file": "2026110106.jsonl",
                "checkpoint": None,
                "found": {"lines": lines, "sha256": hashlib.sha256(added.read_bytes()).hexdigest()},
            },
        )
    ]
    assert any(
        message.startswith(f"{added}: an hour file the pull's checkpoint does not describe")
        for message in caplog.messages
    )


IN_OPEN, IN_CLOSE_NOWRITE, IN_Q_OVERFLOW = 0x20, 0x10, 0x4000


@contextmanager
def opens_counted(folder: Path) -> Iterator[Counter[str]]:
    """The opens of each file of `folder` while the block runs, as the kernel saw them
    (inotify), by any process. Closes are watched too: two opens of a file in a row, with no
    event between, would be coalesced into one event."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    assert descriptor >= 0, os.strerror(ctypes.get_errno())
    opened: Counter[str] = Counter()
    try:
        watch = libc.inotify_add_watch(descriptor, bytes(folder), IN_OPEN | IN_CLOSE_NOWRITE)
        assert watch >= 0, os.strerror(ctypes.get_errno())
        yield opened
        data = b""
        while True:
            try:
                data += os.read(descriptor, 1 << 16)
            except BlockingIOError:
                break
        offset = 0
        while offset < len(data):
            _watch, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            assert not mask & IN_Q_OVERFLOW
            name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
            if mask & IN_OPEN and name:
                opened[name] += 1
            offset += 16 + length
    finally:
        os.close(descriptor)


def test_a_run_from_a_pull_folder_reads_each_hour_file_of_its_window_once_and_no_other(
    pulled_and_network, keys, tmp_path
):
    """Each hour file is checked against the pull's checkpoint as the run reads it: hashed first
    by the coordinator, every file of the folder was read before any work began, those of the
    window twice (a terabyte folder: 17 minutes at 1 GB/s), hours outside the window too."""
    pulled = shutil.copytree(pulled_and_network[0], tmp_path / "pulled")
    window = ["--since", "2026-11-01T02:00Z", "--until", "2026-11-01T04:00Z"]
    audited = [path.name for path in pulled.glob("202611010[23].*")]
    assert "2026110102.unreadable.txt" in audited

    with opens_counted(pulled) as opened:
        result = invoke("run", "--from", pulled, *window, *audit_args(keys, tmp_path / "a"))

    assert result.exit_code == 0, result.output
    read = {name: count for name, count in opened.items() if re.fullmatch(r"\d{10}\..*", name)}
    assert read == dict.fromkeys(audited, 1)


def test_a_damaged_journal_of_the_pull_costs_only_the_finding_with_a_warning(
    shifting_pull, keys, tmp_path, caplog
):
    pulled = shutil.copytree(shifting_pull, tmp_path / "pulled")
    (pulled / "checkpoint.journal").write_bytes(b"not json\n{}\n")

    result = invoke("run", "--from", pulled, *audit_args(keys, tmp_path / "a"))

    assert result.exit_code == 0, result.output
    rules = {f["rule"] for f in findings(only_bag(tmp_path / "a"))}
    assert "hour-files-differ" not in rules
    assert any(
        "line 1 of 2 is damaged" in message and message.endswith("go unreported")
        for message in caplog.messages
    )


def test_records_only_an_earlier_pull_of_the_hour_got_are_reported_by_the_run(keys, tmp_path):
    """A `--refetch` served fewer records than the pull before it keeps the others, and says so
    in its checkpoint (`earlier`); the run from its folder reports them with a medium finding."""
    records = write_export(tmp_path / "first.jsonl", hours=1)
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records[2:]))
    window = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z"]
    folder = tmp_path / "pulled"
    assert (
        invoke("pull", *window, "--from", tmp_path / "first.jsonl", "--out", folder).exit_code == 0
    )
    refetched = invoke("pull", *window, "--from", fewer, "--out", folder, "--refetch")
    assert refetched.exit_code == 0, refetched.output

    result = invoke("run", "--from", folder, *window, *audit_args(keys, tmp_path / "a"))

    assert result.exit_code == 0, result.output
    bag = only_bag(tmp_path / "a")
    gone = [f for f in findings(bag) if f["rule"] == "hour-records-no-longer-served"]
    assert [(f["severity"], f["details"]) for f in gone] == [
        ("medium", {"hour": "2026-11-01T00:00:00Z", "records": 2}),
    ]
    assert ids_by_hour(bag)["2026110100"] == sorted(record["msg_id"] for record in records)


def test_an_hour_file_a_killed_refetch_renamed_is_taken_as_its_journal_describes_it(keys, tmp_path):
    """A `--refetch` killed between renaming the hour file and journaling its entry leaves the
    checkpoint's older entry, and the `renaming` line that names the new file's sha256 and
    entry: the run took the pull's own file for one altered since (a high finding) and lost
    what the entry says (records no longer served)."""
    records = write_export(tmp_path / "all.jsonl", hours=1)
    first, fewer = tmp_path / "first.jsonl", tmp_path / "fewer.jsonl"
    first.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records[:-1]))
    fewer.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records[2:]))
    window = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z"]
    folder = tmp_path / "pulled"
    assert invoke("pull", *window, "--from", first, "--out", folder).exit_code == 0
    pull = [sys.executable, "-m", "auditor", "pull", *window, "--out", folder, "--from", fewer]
    killed = subprocess.run(
        [*map(str, pull), "--refetch"], env={**os.environ, "AUDITOR_CRASH_AT": "pull.renamed:1"}
    )
    assert killed.returncode == -signal.SIGKILL
    assert b'"renaming"' in (folder / "checkpoint.journal").read_bytes()

    result = invoke("run", "--from", folder, *window, *audit_args(keys, tmp_path / "a"))

    assert result.exit_code == 0, result.output
    bag = only_bag(tmp_path / "a")
    reported = {f["rule"]: f["details"] for f in findings(bag) if f["msg_id"] is None}
    assert "pull-file-altered" not in reported
    assert reported["hour-records-no-longer-served"]["records"] == 2
    assert ids_by_hour(bag)["2026110100"] == sorted(record["msg_id"] for record in records)
