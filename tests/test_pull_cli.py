"""`auditor pull` and `auditor unread` on the command line: output, clean errors, no secret
anywhere, and a pull killed with SIGKILL that resumes to the same bytes."""

import gzip
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.sources.pull import JOURNAL

SECRET = "Sx-7f3k-never-print-me"
START = DEFAULT_START_MS  # 2026-11-01T00:00Z, where the emulator's history begins
WINDOW = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T03:00Z"]
SUBPROCESS_FAULTS = {
    "fail_rate": 0.2,
    "rate_limit_rate": 0.1,
    "slow_rate": 0.02,
    "slow_seconds": 0.05,
    "duplicate_rate": 0.05,
    "conflict_rate": 0.02,
    "truncate_rate": 0.15,
    "garbage_rate": 0.05,
}


@pytest.fixture(scope="module")
def emu():
    with run_emulator(EmulatorOptions(messages=1200, client_secret=SECRET)) as emulator:
        yield emulator


def connection(emu, **changes):
    flags = {"--base-url": emu.base_url, "--org": "demo-org", "--app": "demo-app"}
    flags.update({"--client-id": "demo-client", "--retries": "1", **changes})
    return [part for flag, value in flags.items() for part in (flag, value)]


def invoke(args, secret=SECRET):
    env = {"EASEMOB_CLIENT_SECRET": secret, "EASEMOB_CLIENT_SECRET_FILE": None}
    env.update({name: None for name in ("EASEMOB_BASE_URL", "EASEMOB_ORG", "EASEMOB_APP")})
    return CliRunner().invoke(main, args, env=env)


def one_error_line(result, code):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor: error: "), result.stderr
    return lines[0].removeprefix("auditor: error: ")


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("api", ["hourfiles", "legacy"])
def test_pull_prints_each_hour_and_a_total(emu, tmp_path, api):
    result = invoke(["pull", *WINDOW, "--out", str(tmp_path), "--api", api, *connection(emu)])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [
        ["2026110100", "pulled"],
        ["2026110101", "pulled"],
        ["2026110102", "pulled"],
    ]
    assert lines[3] == f"total: 150 records in 3 hours (3 pulled, 0 already done) in {tmp_path}"


def test_unread_prints_a_count_per_user(emu):
    result = invoke(["unread", "user0001", "user0002", *connection(emu)])

    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["user0001", "user0002"]
    assert all(line.split("\t")[1].isdigit() for line in result.stdout.splitlines())


def test_an_unreachable_server_is_one_line_and_exit_3(tmp_path):
    port = closed_port()
    args = ["pull", *WINDOW, "--out", str(tmp_path)]
    args += ["--base-url", f"http://127.0.0.1:{port}", "--org", "o", "--app", "a"]
    result = invoke([*args, "--client-id", "c", "--retries", "0"])

    assert one_error_line(result, 3) == (
        f"POST http://127.0.0.1:{port}/o/a/token failed after 1 attempt (Connection refused); "
        f"check that http://127.0.0.1:{port} is reachable and serves o/a"
    )


def test_wrong_credentials_are_one_line_and_exit_2(emu, tmp_path):
    result = invoke(
        ["pull", *WINDOW, "--out", str(tmp_path), *connection(emu)], secret="not-the-app-secret"
    )

    assert one_error_line(result, 2) == (
        f"wrong client id or secret for demo-org/demo-app at {emu.base_url} (check "
        "--client-id and the client secret, from EASEMOB_CLIENT_SECRET, "
        "EASEMOB_CLIENT_SECRET_FILE, or the config's client_secret_file, or an app's "
        "client_secret_env "
        "under apps:)"
    )


def test_an_unknown_org_or_app_is_one_line_and_exit_2(emu, tmp_path):
    result = invoke(["pull", *WINDOW, "--out", str(tmp_path), *connection(emu, **{"--org": "x"})])

    assert one_error_line(result, 2) == (
        f"no application x/demo-app at {emu.base_url}; check --org and --app"
    )


def test_a_malformed_since_is_one_line_and_exit_2(emu, tmp_path):
    args = ["pull", "--since", "yesterday-ish", "--until", "2026-11-02"]
    result = invoke([*args, "--out", str(tmp_path), *connection(emu)])

    assert one_error_line(result, 2).startswith("--since: 'yesterday-ish' is not a date or time")


@pytest.mark.parametrize("source", ["emulator", "local files"])
def test_an_hour_zone_of_some_minutes_is_one_line_and_exit_2(emu, tmp_path, source):
    """Hour labels in such a zone would not name UTC hours (`partitions.parse_hour_timezone`)."""
    (tmp_path / "h.jsonl").write_text("")
    where = connection(emu) if source == "emulator" else ["--from", str(tmp_path / "h.jsonl")]
    args = ["pull", *WINDOW, "--out", str(tmp_path / "out"), "--hour-timezone", "-05:30"]
    result = invoke([*args, *where])

    assert one_error_line(result, 2) == (
        "hour time zone '-05:30' is not a whole number of hours from UTC; Easemob names hour "
        "files in whole-hour zones (+8 on China clusters, UTC overseas)"
    )


def test_missing_settings_are_named_and_exit_2(tmp_path):
    result = invoke(["pull", *WINDOW, "--out", str(tmp_path), "--org", "o"])

    assert one_error_line(result, 2) == (
        "missing connection settings: --base-url or EASEMOB_BASE_URL; --app or EASEMOB_APP; "
        "--client-id or EASEMOB_CLIENT_ID"
    )


def test_a_corrupt_local_file_names_file_and_line(tmp_path):
    export = tmp_path / "2026110100.jsonl"
    export.write_text('{"msg_id": "1", "timestamp": 1793491200000}\n{"msg_id": \n')
    result = invoke(["pull", *WINDOW, "--out", str(tmp_path / "out"), "--from", str(export)])

    assert one_error_line(result, 2).startswith(f"{export}, line 2: not JSON")


def test_a_corrupt_local_gzip_names_the_file(tmp_path):
    export = tmp_path / "2026110100.gz"
    export.write_bytes(gzip.compress(b'{"msg_id": "1"}\n' * 50)[:-20])
    result = invoke(["pull", *WINDOW, "--out", str(tmp_path / "out"), "--from", str(export)])

    assert one_error_line(result, 2).startswith(f"{export}: corrupt gzip data")


AROUND_MIDNIGHT = ["--since", "2026-10-31T23:00Z", "--until", "2026-11-01T01:00Z"]


def emulator_at(hours_into_history):
    """An emulator whose clock starts this many hours into its history (2026-11-01T00:00Z):
    2026103123, before the history, is refused, as not ready while it is younger than the 3
    days the source keeps hour files, as expired after."""
    start = START + hours_into_history * HOUR_MS
    return run_emulator(
        EmulatorOptions(messages=1200, client_secret=SECRET, clock_start=start / 1000)
    )


def test_hours_not_ready_are_listed_with_the_sources_clock_and_exit_3_after_the_ready_ones(
    tmp_path,
):
    """The emulator's clock reads 2026-11-01T06:00Z, weeks behind this machine's: by it the
    refused hour is young, which is why it waits; both the hour's line and the error say so."""
    with emulator_at(6) as emu:
        result = invoke(["pull", *AROUND_MIDNIGHT, "--out", str(tmp_path), *connection(emu)])

    clocks = r"the source's clock reads 2026-11-01T06:00:\d\dZ, [\d.]+ days behind this machine's"
    assert re.fullmatch(
        rf"1 hour\(s\) not ready yet at the source \(2026103123\); {clocks}, and an hour counts "
        "as expired only when both clocks say so; run the same pull again later, completed hours "
        "are kept",
        one_error_line(result, 3),
    )
    assert re.fullmatch(
        rf"2026103123  not ready  \(.*history is expired or unstored; {clocks}\)",
        result.stdout.splitlines()[0],
    )
    assert (tmp_path / "2026110100.jsonl").exists()


def test_expired_hours_are_listed_recorded_and_exit_0_with_a_warning_each_pull(tmp_path):
    with emulator_at(4 * 24) as emu:
        first = invoke(["pull", *AROUND_MIDNIGHT, "--out", str(tmp_path), *connection(emu)])
        asked = sum(emu.stats.by_route("hour").values())
        second = invoke(["pull", *AROUND_MIDNIGHT, "--out", str(tmp_path), *connection(emu)])
        asked_again = sum(emu.stats.by_route("hour").values()) - asked

    expired = (
        "2026103123  expired  (older than the source's retention of 3 days; it answered: "
        "illegal arguments: appkey: demo-org#demo-app, time: 2026103123, maybe chat message "
        "history is expired or unstored)"
    )
    warning = (
        "auditor: warning: 1 hour(s) expired at the source (2026103123): it no longer keeps "
        "them, so their records are lost to this pull unless an export holds them; recorded as "
        "expired, not asked for again (--refetch asks)"
    )
    assert [first.exit_code, second.exit_code] == [0, 0], first.output + second.output
    assert first.stdout.splitlines() == [
        expired,
        "2026110100  pulled         50 records",
        f"total: 50 records in 2 hours (1 pulled, 0 already done, 1 expired) in {tmp_path}",
    ]
    assert second.stdout.splitlines() == [
        expired,
        "2026110100  done           50 records",
        f"total: 50 records in 2 hours (0 pulled, 1 already done, 1 expired) in {tmp_path}",
    ]
    assert first.stderr.splitlines() == second.stderr.splitlines() == [warning]
    assert asked_again == 0


def test_more_expired_hours_than_a_line_shows_are_named_first_and_last(tmp_path):
    window = ["--since", "2026-10-31T12:00Z", "--until", "2026-11-01T00:00Z"]
    with emulator_at(4 * 24) as emu:
        result = invoke(["pull", *window, "--out", str(tmp_path), *connection(emu)])

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "auditor: warning: 12 hour(s) expired at the source (2026103112, 2026103113, "
        "2026103114, 2026103115, 2026103116, ... 2026103123): "
    )


def test_the_secret_and_tokens_never_reach_output_or_logs_even_at_debug(emu, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    runs = [
        invoke(["-vv", "pull", *WINDOW, "--out", str(tmp_path), *connection(emu)]),
        invoke(["-vv", "unread", "user0001", *connection(emu)]),
        invoke(["-vv", "pull", *WINDOW, "--out", str(tmp_path / "x"), *connection(emu)], "bad"),
    ]
    emu.clock.advance(61 * 24 * 3600)
    runs.append(invoke(["-vv", "unread", "user0002", *connection(emu)]))

    assert [run.exit_code for run in runs] == [0, 0, 2, 0]
    assert "hour 2026110100: pulled" in caplog.text
    client_log = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("auditor.emulator")
    )
    assert set(re.findall(r"Signature=([^&\s\"]+)", client_log)) == {"<redacted>"}
    for shown in [caplog.text, *(run.output for run in runs)]:
        assert SECRET not in shown
        assert "YWMt" not in shown


# -- SIGKILL ------------------------------------------------------------------------------------


def auditor_command():
    script = Path(sys.executable).with_name("auditor")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from auditor.cli import main; main()"]


def start_pull(emu, config, out, crash_at="", *extra):
    args = ["pull", "--since", "2026-11-01", "--until", "2026-11-02", "--out", str(out), *extra]
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    env["AUDITOR_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [*auditor_command(), *args, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def folder_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def config_for(emu, folder):
    config = folder / "auditor.yaml"
    config.write_text(
        orjson.dumps(
            {
                "source": {
                    "base_url": emu.base_url,
                    "org": "demo-org",
                    "app": "demo-app",
                    "client_id": "demo-client",
                    "backoff_base": 0.001,
                    "backoff_cap": 0.01,
                }
            }
        ).decode()
    )
    return config


# Killed from outside (after N hour lines, or 20 ms later) and from inside at the crash points
# of `auditor.sources.pull`: in the middle of writing an hour, after an hour's rename (its journal
# line written before it; tests/test_pull_journal32.py kills between the two), after the hour is
# recorded (before the checkpoint is saved, past the first 8 hours), and between the checkpoint
# and conflicts.jsonl.
KILLS = [
    ("lines", 9),
    ("lines+20ms", 3),
    ("pull.writing", 700),
    ("pull.renamed", 5),
    ("pull.journaled", 10),
    ("pull.checkpointed", 12),
]


def test_a_pull_killed_at_any_point_resumes_to_the_bytes_of_an_uninterrupted_pull(tmp_path):
    """Every fault but late records, which by design differ between a first and a later look."""
    options = EmulatorOptions(messages=1200, client_secret=SECRET, **SUBPROCESS_FAULTS)
    with run_emulator(options) as emu:
        config = config_for(emu, tmp_path)
        reference = start_pull(emu, config, tmp_path / "reference")
        assert reference.wait(60) == 0, reference.stderr.read()
        expected = folder_bytes(tmp_path / "reference")
        assert len(expected) == 26

        for point, (how, when) in enumerate(KILLS):
            out = tmp_path / f"killed-{point}"
            victim = start_pull(
                emu, config, out, f"{how}:{when}" if how.startswith("pull.") else ""
            )
            if how.startswith("lines"):
                for _ in range(when):
                    assert victim.stdout.readline()
                time.sleep(0.02 if how == "lines+20ms" else 0)
                victim.send_signal(signal.SIGKILL)
            assert victim.wait(30) == -signal.SIGKILL, f"{how}:{when} was not reached"

            resumed = start_pull(emu, config, out)
            assert resumed.wait(60) == 0, resumed.stderr.read()
            assert folder_bytes(out) == expected, f"differs after a kill at {how}:{when}"


def test_a_refetch_killed_midway_leaves_no_hour_to_fetch_again(tmp_path):
    """An hour that `--refetch` changed is journaled once renamed, so the pull after a kill
    trusts its new file. Before the journal, every hour changed since the checkpoint's last
    save no longer matched it and was fetched again: up to an eighth of the window."""
    with run_emulator(EmulatorOptions(messages=1200, client_secret=SECRET, late_rate=0.3)) as emu:
        config = config_for(emu, tmp_path)
        out = tmp_path / "out"
        assert start_pull(emu, config, out).wait(60) == 0
        first = folder_bytes(out)
        # 24 hours listed: the refetch saves after every third hour, so its 19th and 20th
        # (18:00 and 19:00) are journaled and not yet saved when it is killed.
        refetch = start_pull(emu, config, out, "pull.journaled:20", "--refetch")
        assert refetch.wait(60) == -signal.SIGKILL
        assert (out / JOURNAL).exists()
        hour_requests = sum(emu.stats.by_route("hour").values())

        resumed = start_pull(emu, config, out)
        assert resumed.wait(60) == 0, resumed.stderr.read()

        assert b"does not match its checkpoint" not in resumed.stderr.read()
        assert sum(emu.stats.by_route("hour").values()) == hour_requests
        after = folder_bytes(out)
        changed = {name for name in first if name[:10].isdigit() and first[name] != after[name]}
        assert {"2026110118.jsonl", "2026110119.jsonl"} <= changed
        assert max(changed) == "2026110119.jsonl"
        assert JOURNAL not in after


def test_a_long_window_rewrites_its_checkpoint_a_few_dozen_times_not_once_an_hour(tmp_path):
    """Saving the whole checkpoint after every hour wrote N²/2 entries for N hours: 13 s for
    three months of a small export, nearly all of it rewriting the checkpoint."""
    export = tmp_path / "export.jsonl"
    export.write_text('{"msg_id": "1", "timestamp": 1793491200000}\n')
    args = ["pull", "--since", "2026-10-01T00:00Z", "--until", "2026-11-11T16:00Z"]
    args += ["--out", str(tmp_path / "out"), "--from", str(export)]
    env = {**os.environ, "AUDITOR_CRASH_AT": "pull.checkpointed:60"}
    finished = subprocess.run([*auditor_command(), *args], env=env, capture_output=True)

    assert finished.returncode == 0, finished.stderr.decode()
    checkpoint = orjson.loads((tmp_path / "out" / "checkpoint.json").read_bytes())
    assert len(checkpoint["hours"]) == 1000
    assert sum(entry["records"] for entry in checkpoint["hours"].values()) == 1


def test_an_empty_user_is_a_usage_error_before_any_request(tmp_path):
    result = invoke(["unread", "user0001", " ", "--base-url", "http://127.0.0.1:9"])

    assert one_error_line(result, 2) == (
        "a USER is empty: name each user whose unread count you want"
    )


def test_a_pull_from_an_export_killed_leaves_no_copy_of_it_behind(tmp_path):
    """`pull --from` sorted the export into TMPDIR, and a pull killed there (OOM killer, kill -9)
    left the copy for good, one more each kill (probe 20 #7): it now sorts beside the pull,
    where the next pull removes what a killed one left."""
    export = tmp_path / "export.jsonl"
    hour = 1793491200000
    export.write_bytes(
        b"".join(
            orjson.dumps({"msg_id": str(n), "timestamp": hour + n * 60_000}) + b"\n"
            for n in range(150)
        )
    )
    temporary, out = tmp_path / "tmp", tmp_path / "out"
    temporary.mkdir()
    command = [sys.executable, "-m", "auditor", "pull", *WINDOW, "--out", str(out)]
    command += ["--from", str(export)]
    env = {**os.environ, "TMPDIR": str(temporary), "AUDITOR_CRASH_AT": "pull.renamed:1"}

    killed = subprocess.run(command, env=env, capture_output=True)
    left = list((out / ".work").iterdir())
    env.pop("AUDITOR_CRASH_AT")
    done = subprocess.run(command, env=env, capture_output=True, text=True)

    assert killed.returncode == -signal.SIGKILL
    assert len(left) == 1 and left[0].name.startswith("local-")
    assert done.returncode == 0, done.stderr
    assert not (out / ".work").exists()
    assert list(temporary.iterdir()) == []
    assert sorted(path.name for path in out.glob("2026*.jsonl")) == [
        "2026110100.jsonl",
        "2026110101.jsonl",
        "2026110102.jsonl",
    ]


@pytest.mark.parametrize("between", [False, True], ids=["next", "after another hour's pull"])
def test_a_refetch_killed_before_its_journal_line_keeps_the_records_no_longer_served_counted(
    tmp_path, between
):
    """A `--refetch` that kept records the source no longer serves (and got one that arrived
    late), killed between renaming the hour file and journaling it: the next pull of the hour
    took the file for one edited since its checkpoint and fetched it again, losing those
    records; so did one after a pull of another hour, whose checkpoint dropped the journal.
    Each journal line holds the hour's whole `entry`, which an auditor from before `renaming`
    lines (56a4a85 to 42b6105) asks of every line: it refused the folder without."""
    hour = 1793491200000
    records = [orjson.dumps({"msg_id": str(n), "timestamp": hour + n}) + b"\n" for n in range(4)]
    first, fewer, out = tmp_path / "first.jsonl", tmp_path / "fewer.jsonl", tmp_path / "out"
    first.write_bytes(b"".join(records[:3]))
    fewer.write_bytes(records[2] + records[3])
    window = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z"]
    command = [sys.executable, "-m", "auditor", "pull", *window, "--out", str(out)]
    env = {**os.environ, "AUDITOR_CRASH_AT": "pull.renamed:1"}
    pulled = CliRunner().invoke(main, ["pull", *window, "--out", str(out), "--from", str(first)])
    assert pulled.exit_code == 0, pulled.output
    killed = subprocess.run([*command, "--from", str(fewer), "--refetch"], env=env)
    journal = (out / "checkpoint.journal").read_bytes().splitlines()
    if between:  # its checkpoint lists the renamed hour as the journal line describes it
        later = ["--since", "2026-11-01T01:00Z", "--until", "2026-11-01T02:00Z"]
        other = CliRunner().invoke(main, ["pull", *later, "--out", str(out), "--from", str(fewer)])
        assert other.exit_code == 0, other.output
        listed = orjson.loads((out / "checkpoint.json").read_bytes())["hours"]["2026110100"]
        assert (listed["records"], listed.get("earlier")) == (4, 2)

    again = CliRunner().invoke(main, ["pull", *window, "--out", str(out), "--from", str(fewer)])

    assert killed.returncode == -signal.SIGKILL
    assert again.exit_code == 0, again.output
    entry = orjson.loads((out / "checkpoint.json").read_bytes())["hours"]["2026110100"]
    assert (entry["records"], entry.get("earlier")) == (4, 2)
    assert [orjson.loads(line)["entry"] for line in journal] == [entry]
    assert (out / "2026110100.jsonl").read_bytes() == b"".join(records)
    assert "2026110100  done            4 records  (2 no longer served)" in again.stdout
    assert "does not match its checkpoint" not in again.output


def test_a_pull_killed_before_the_journal_line_of_an_hour_served_as_different_files_keeps_them(
    tmp_path,
):
    """The next pull adopted the hour file from disk as served once (`files` 1): `run --from`
    the folder lost the hour-files-differ finding."""
    options = EmulatorOptions(messages=200, client_secret=SECRET, shifting_rate=1.0)
    out = tmp_path / "out"
    window = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z"]
    with run_emulator(options) as shifting:
        config = config_for(shifting, tmp_path)
        args = [*auditor_command(), "pull", *window, "--out", str(out), "--config", str(config)]
        args += ["--retries", "1"]
        env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
        killed = subprocess.run(args, env={**env, "AUDITOR_CRASH_AT": "pull.renamed:1"})
        again = subprocess.run(args, env=env, capture_output=True, text=True)

    assert killed.returncode == -signal.SIGKILL
    assert again.returncode == 0, again.stderr
    entry = orjson.loads((out / "checkpoint.json").read_bytes())["hours"]["2026110100"]
    assert entry.get("files") == 2
    assert "2 different files)" in again.stdout


def test_a_pull_onto_a_full_disk_names_the_file_it_could_not_write(emu, tmp_path, full_disk):
    """The write refused named no file, and the checkpoint saved on the way out failed on the
    same disk and replaced that error (probe 20 #8)."""
    out = full_disk / "out"
    result = invoke(["pull", *connection(emu), *WINDOW, "--out", str(out)])

    message = one_error_line(result, 2)
    assert re.fullmatch(
        rf"\[Errno 28\] No space left on device: '{re.escape(str(out))}/[^']+'", message
    ), message
    assert not list(out.glob(".*.tmp"))


def killed_pull_with_a_journal(emu, tmp_path):
    """A reference pull's bytes, and a folder whose pull was killed with two journal lines."""
    config = config_for(emu, tmp_path)
    assert start_pull(emu, config, tmp_path / "reference").wait(60) == 0
    out = tmp_path / "out"
    # The checkpoint is saved after each of the first 8 hours, then after the 10th: killed
    # after the 10th hour's journal line, the journal holds the 9th's and the 10th's.
    assert start_pull(emu, config, out, "pull.journaled:10").wait(60) == -signal.SIGKILL
    assert len((out / JOURNAL).read_bytes().splitlines()) == 2
    return config, out, folder_bytes(tmp_path / "reference")


def test_a_journal_line_cut_short_then_a_kill_leaves_a_folder_the_next_pull_completes(
    emu, tmp_path
):
    """A crash or a full disk can cut the journal's last append short; the next pull's first
    line was glued to it, and after one more kill every pull of the folder stopped with exit 2
    (probe 20 #6). The cut line is now dropped when the journal is read, in one line."""
    config, out, expected = killed_pull_with_a_journal(emu, tmp_path)
    journal = out / JOURNAL
    whole = journal.read_bytes()
    journal.write_bytes(whole[: len(whole) - 40])

    again = start_pull(emu, config, out, "pull.journaled:1")
    assert again.wait(60) == -signal.SIGKILL
    warned = again.stderr.read().decode()
    assert "checkpoint.journal: its last line (2) was cut short by a crash" in warned
    assert warned.count("cut short") == 1
    assert journal.read_bytes().startswith(whole.splitlines(keepends=True)[0])
    assert all(orjson.loads(line) for line in journal.read_bytes().splitlines())

    resumed = start_pull(emu, config, out)
    assert resumed.wait(60) == 0, resumed.stderr.read()
    assert b"cut short" not in resumed.stderr.read()
    assert folder_bytes(out) == expected


def test_a_damaged_journal_line_before_the_last_is_refused_with_the_remedy(emu, tmp_path):
    """Not the shape a crash leaves: refused in one line, exit 2, saying that removing the
    journal is safe (its hours are adopted from their files), which the test then does."""
    config, out, expected = killed_pull_with_a_journal(emu, tmp_path)
    journal = out / JOURNAL
    first, second = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(first[:30] + b"\n" + second)

    refused = start_pull(emu, config, out)
    assert refused.wait(60) == 2
    lines = refused.stderr.read().decode().strip().splitlines()
    assert lines == [
        f"auditor: error: {journal}: line 1 of 2 is damaged (not a journal entry of auditor "
        "pull, and not a last line cut short by a crash); remove the journal and pull again: "
        "the hours it lists are read again from their files"
    ]
    assert journal.read_bytes() == first[:30] + b"\n" + second

    journal.unlink()
    resumed = start_pull(emu, config, out)
    assert resumed.wait(60) == 0, resumed.stderr.read()
    assert folder_bytes(out) == expected


def quick(emu, folder: Path) -> list[str]:
    """`connection` with Easemob's six retries, backed off briefly (a config has no flag for it)."""
    config = folder / "auditor.yaml"
    config.write_text("source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n")
    return ["--config", str(config), *connection(emu, **{"--retries": "6"})]


def test_a_token_that_dies_again_within_one_calls_retries_is_renewed_again(tmp_path, caplog):
    """Each token serves one request (Easemob's are short-lived; the retries' waits add up), and
    a third of the requests fail: a call renews its token, fails, and finds the new one dead
    too. That ended the pull with "refused a token it had just issued" (exit 3)."""
    options = EmulatorOptions(messages=300, client_secret=SECRET, token_requests=1, fail_rate=0.4)
    with run_emulator(options) as emu, caplog.at_level(logging.INFO, logger="auditor"):
        window = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T06:00Z"]
        result = invoke(["pull", *window, "--out", str(tmp_path / "out"), *quick(emu, tmp_path)])
        expected = emu.expected_records(START, START + 6 * HOUR_MS)

    assert result.exit_code == 0, result.output
    pulled = [
        orjson.loads(line)
        for path in sorted((tmp_path / "out").glob("*.jsonl"))
        for line in path.open("rb")
    ]
    assert len(pulled) == len(expected) > 0
    assert any("again (renewal 2 of this call)" in message for message in caplog.messages)


def test_a_server_that_refuses_every_token_it_issues_is_one_line_and_exit_3(tmp_path):
    with run_emulator(
        EmulatorOptions(messages=300, client_secret=SECRET, token_expire_early=0)
    ) as emu:
        result = invoke(["pull", *WINDOW, "--out", str(tmp_path / "out"), *quick(emu, tmp_path)])
        issued = emu.stats.tokens_issued

    assert one_error_line(result, 3) == (
        f"{emu.base_url} refused a token it had just issued for demo-org/demo-app (unauthorized)"
    )
    assert issued == 2
