"""Local input files that are not what they should be (probe12): a FIFO, a device, a gzip bomb,
a line past the cap, a file cut short between the passes of the local source, a name holding
terminal escapes. Each gives one line naming the file, or one unreadable line; never a hang,
unbounded memory, or hours recorded as pulled with no records."""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from auditor import jsonl
from auditor.archive import untrusted
from auditor.cli import main
from auditor.errors import InputError
from auditor.jsonl import read_file
from auditor.partitions import Partition
from auditor.sources import local
from auditor.sources.folder import prepared_inputs
from auditor.sources.local import LocalFileSource
from auditor.sources.pull import CHECKPOINT, pull

H0 = Partition(1_793_491_200_000)  # 2026-11-01T00:00Z
WINDOW = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T03:00Z"]
POLICY = "version: 1\nretention:\n  default: {keep_for: 1y, then: delete}\n"


def records(hour: int, count: int) -> list[dict]:
    start = H0.start_ms + hour * 3_600_000
    return [
        {"msg_id": f"{hour}-{n}", "timestamp": start + n, "chat_type": "chat", "from": "a"}
        for n in range(count)
    ]


def write_lines(path, items) -> os.PathLike:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def one_error_line(result, code=2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    return line.removeprefix("auditor: error: ")


@contextlib.contextmanager
def unblocking(fifo):
    """Opens the FIFO's write end whenever a reader waits on it, so that a regression that
    opens it blocking reads an empty file and fails its assertions instead of hanging."""
    stop = threading.Event()

    def writer():
        while not stop.wait(0.02):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as error:
                if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield fifo
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo.jsonl"
    os.mkfifo(path)
    with unblocking(path):
        yield path


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "policies.yaml"
    path.write_text(POLICY)
    return path


# 1: FIFOs


def test_validate_refuses_a_fifo_named_as_input(fifo):
    assert one_error_line(invoke("validate", fifo)) == (
        f"{fifo}: is a FIFO, not a regular file, so not a local input file"
    )


def test_scan_refuses_a_fifo_named_as_input(fifo, policy):
    assert one_error_line(invoke("scan", "--policies", policy, fifo)) == (
        f"{fifo}: is a FIFO, not a regular file, so not a local input file"
    )


def test_pull_from_refuses_a_fifo_named_as_input(fifo, tmp_path):
    result = invoke("pull", "--from", fifo, *WINDOW, "--out", tmp_path / "out")
    assert one_error_line(result) == (
        f"{fifo}: is a FIFO, not a regular file, so not a local input file"
    )


def test_a_device_named_as_input_is_refused():
    assert one_error_line(invoke("validate", os.devnull)) == (
        f"{os.devnull}: is a device, not a regular file, so not a local input file"
    )


def test_a_fifo_in_a_folder_of_inputs_is_skipped_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    write_lines(folder / "a.jsonl", records(0, 3))
    os.mkfifo(folder / "b.jsonl")
    with unblocking(folder / "b.jsonl"), caplog.at_level(logging.WARNING):
        result = invoke("pull", "--from", folder, *WINDOW, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "total: 3 records" in result.output
    assert f"skipping {folder / 'b.jsonl'}: not a regular file" in caplog.messages


@pytest.mark.parametrize("name", [CHECKPOINT, "2026110100.jsonl"])
def test_a_fifo_in_the_pull_folder_is_refused(tmp_path, name):
    source, out = write_lines(tmp_path / "in.jsonl", records(0, 3)), tmp_path / "out"
    assert invoke("pull", "--from", source, *WINDOW, "--out", out).exit_code == 0
    (out / name).unlink()
    os.mkfifo(out / name)
    with unblocking(out / name):
        result = invoke("pull", "--from", source, *WINDOW, "--out", out)
    assert one_error_line(result).startswith(f"{out / name}: is a FIFO, not a regular file")


# 2/3: lines past the cap, gzip bombs


def parse_findings(result) -> list[str]:
    found = [orjson.loads(line) for line in result.stdout.splitlines()]
    return [item["message"] for item in found if item["category"] == "parse"]


@pytest.fixture
def small_lines(monkeypatch):
    monkeypatch.setattr(untrusted, "LINE_LIMIT", 4_000)


def long_then_good(path, opener=open):
    good = orjson.dumps(records(0, 1)[0])
    with opener(path, "wb") as handle:
        handle.write(b'{"text": "' + b"x" * 5_000 + b'"}\n' + good + b"\n")
    return path


@pytest.mark.parametrize("opener", [open, gzip.open], ids=["plain", "gzip"])
def test_validate_reports_a_line_past_the_cap_as_one_unreadable_line(tmp_path, small_lines, opener):
    path = long_then_good(tmp_path / "long.jsonl", opener)
    result = invoke("validate", path, "--findings", "-")
    assert result.exit_code == 1, result.output
    assert parse_findings(result) == [
        f"{path}:1: a line longer than 4,000 bytes, which no record is; not read"
    ]
    assert re.search(r"^total +1 ", result.stderr, re.MULTILINE)  # the line after it is read


def test_scan_counts_a_line_past_the_cap_as_unreadable(tmp_path, small_lines, policy):
    path = long_then_good(tmp_path / "long.jsonl")
    result = invoke("scan", "--policies", policy, path, "--findings", "-", "--now", "2026-12-01")
    found = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [item["rule"] for item in found] == ["jsonl"]
    assert found[0]["details"] == {"file": str(path), "line": 1}


def test_pull_from_stops_at_a_line_past_the_cap(tmp_path, small_lines):
    path = long_then_good(tmp_path / "long.jsonl")
    result = invoke("pull", "--from", path, *WINDOW, "--out", tmp_path / "out")
    assert one_error_line(result) == (
        f"{path}, line 1: a line longer than 4,000 bytes, which no record is; not read"
    )


def test_a_line_of_exactly_the_cap_is_read(tmp_path, monkeypatch):
    line = orjson.dumps(records(0, 1)[0])
    monkeypatch.setattr(untrusted, "LINE_LIMIT", len(line))
    path = tmp_path / "exact.jsonl"
    path.write_bytes(line + b"\n" + line)
    result = invoke("validate", path, "--findings", "-")
    assert parse_findings(result) == []
    assert re.search(r"^total +2 ", result.stderr, re.MULTILINE)


def bomb(path, inflated: int, newlines: bool = False):
    """A gzip of `inflated` bytes of '0' (with a newline every KB if `newlines`)."""
    block = (b"0" * 1023 + b"\n") if newlines else b"0" * 1024
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as handle:
        for _ in range(inflated // 1024):
            handle.write(deflate.compress(block))
        handle.write(deflate.flush())
    return path


@pytest.fixture
def small_floor(monkeypatch):
    monkeypatch.setattr(jsonl, "GUNZIP_FLOOR", 256 << 10)


@pytest.mark.parametrize("newlines", [False, True], ids=["one-line", "many-lines"])
def test_validate_refuses_a_gzip_bomb(tmp_path, small_floor, newlines):
    path = bomb(tmp_path / "bomb.jsonl.gz", 2 << 20, newlines)
    message = one_error_line(invoke("validate", path))
    assert message.startswith(f"{path}: a gzip bomb or damaged gzip (it expands past 0 MiB")


def test_pull_from_refuses_a_gzip_bomb(tmp_path, small_floor):
    path = bomb(tmp_path / "2026110100.jsonl.gz", 2 << 20)
    result = invoke("pull", "--from", path, *WINDOW, "--out", tmp_path / "out")
    assert one_error_line(result).startswith(f"{path}: a gzip bomb or damaged gzip")


def test_a_gzip_within_the_cap_is_read_whole(tmp_path, small_floor):
    path = tmp_path / "2026110100.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in records(0, 500))))
    result = invoke("pull", "--from", path, *WINDOW, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "total: 500 records" in result.output


# 12: a file read once, whatever happens to it after


def three_hours(path):
    return write_lines(path, records(0, 5) + records(1, 5) + records(2, 5))


def test_a_file_cut_short_during_a_pull_is_pulled_whole_from_its_one_reading(tmp_path):
    """Read twice, the hours it no longer held were checkpointed as pulled with no records."""
    path = three_hours(tmp_path / "export.jsonl")

    def cut(hour):
        if hour.label == "2026110100":
            write_lines(path, records(0, 5))

    summary = pull(
        LocalFileSource([path]),
        H0.start_ms,
        H0.start_ms + 3 * 3_600_000,
        tmp_path / "o",
        on_hour=cut,
    )

    assert [(hour.label, hour.records) for hour in summary.hours] == [
        ("2026110100", 5),
        ("2026110101", 5),
        ("2026110102", 5),
    ]


def test_a_file_that_changes_while_it_is_read_stops_the_pull(tmp_path, monkeypatch):
    path = three_hours(tmp_path / "export.jsonl")

    def appended_to_while_read(name):
        for number, parsed in enumerate(read_file(name)):
            if number == 0 and Path(name) == path:
                with path.open("ab") as handle:  # a writer still exporting
                    handle.write(orjson.dumps(records(3, 1)[0]) + b"\n")
            yield parsed

    monkeypatch.setattr(local, "read_file", appended_to_while_read)

    with pytest.raises(InputError) as caught:
        LocalFileSource([path]).partitions()
    assert str(caught.value) == (
        f"{path}: the file changed while being read (its size, time or inode changed as it was "
        "read); run again once nothing writes to it"
    )


def test_each_file_is_read_once_however_many_hours_it_holds(tmp_path, monkeypatch):
    """Read once per hour it held, an export of a month was parsed 721 times."""
    path = three_hours(tmp_path / "export.jsonl")
    opened: list[Path] = []

    def counted(name):
        opened.append(Path(name))
        return read_file(name)

    monkeypatch.setattr(local, "read_file", counted)
    with LocalFileSource([path]) as source:
        served = [len(source.fetch(hour).records) for hour in source.partitions()]
        spool = {name.parent for name in opened if name != path}

    assert served == [5, 5, 5]
    assert opened.count(path) == 1
    assert len(spool) == 1 and not next(iter(spool)).exists()  # removed when the source closed


def test_a_full_disk_under_the_sorted_export_is_one_line_naming_the_folder(tmp_path, full_disk):
    """`pull --from` sorts the export beside the pull folder (`.work`), not in TMPDIR."""
    path = write_lines(tmp_path / "export.jsonl", records(0, 2_000) + records(1, 2_000))

    message = one_error_line(invoke("pull", "--from", path, *WINDOW, "--out", full_disk / "out"))

    assert message.startswith(f"{full_disk}/out/.work/local-")
    assert message.endswith(
        ": cannot sort the exports by hour there (No space left on device); free space"
    )
    assert sorted(entry.name for entry in (full_disk / "out").iterdir()) == [".work"]
    assert list((full_disk / "out" / ".work").iterdir()) == []  # removed


# 16: names holding terminal escapes


def test_a_local_file_name_with_terminal_escapes_is_shown_escaped(tmp_path):
    path = tmp_path / "bad\x1b]0;TITLE\x07\r\n.jsonl"
    path.write_bytes(b"not json\n")
    message = one_error_line(invoke("pull", "--from", path, *WINDOW, "--out", tmp_path / "out"))
    assert message.startswith(f"{tmp_path}/bad\\x1b]0;TITLE\\x07\\r\\n.jsonl, line 1: not JSON")


def seconds_export(tmp_path) -> Path:
    """Two records of 2026-11-01, the second's timestamp written in seconds, not ms."""
    good, late = records(0, 2)
    late["timestamp"] = H0.start_ms // 1000 + 7
    return write_lines(tmp_path / "export.jsonl", [good, late])


def test_a_record_in_seconds_that_stretches_the_window_past_ten_years_is_named(tmp_path):
    export = seconds_export(tmp_path)

    with (
        prepared_inputs([export], None, tmp_path) as prepared,
        pytest.raises(InputError) as refused,
    ):
        prepared.window(None, None)

    message = str(refused.value)
    assert "export.jsonl, line 2" in message
    assert "timestamp 1793491207" in message
    assert "looks like seconds" in message
    assert "2026-11-01T00:00:07Z" in message


def test_a_record_in_seconds_left_out_of_the_window_given_is_named_in_the_warning(tmp_path, caplog):
    export = seconds_export(tmp_path)

    with prepared_inputs([export], None, tmp_path) as prepared, caplog.at_level(logging.WARNING):
        window = prepared.window(H0.start_ms, H0.end_ms)

    assert window == (H0.start_ms, H0.end_ms)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "export.jsonl, line 2" in warning
    assert "looks like seconds" in warning


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_a_subfolder_that_cannot_be_read_is_an_error_naming_it_not_skipped():
    """As `nobody`, a folder of mode 000 cannot be listed (root may list anything): its records
    were passed over without a word, the rest of the inputs audited and exit 0."""
    base = Path(tempfile.mkdtemp(prefix="auditor-locked-"))
    try:
        base.chmod(0o755)
        inputs = base / "exports"
        (inputs / "locked").mkdir(parents=True)
        write_lines(inputs / "day.jsonl", records(0, 1))
        write_lines(inputs / "locked" / "night.jsonl", records(1, 1))
        (inputs / "locked").chmod(0)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        ran = subprocess.run(
            [*as_nobody, sys.executable, "-m", "auditor", "validate", str(inputs)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        (base / "exports" / "locked").chmod(0o755)
        shutil.rmtree(base)

    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith(f"auditor: error: {inputs / 'locked'}: cannot read the folder")
    assert "Permission denied" in line


def test_pull_from_names_a_record_in_seconds_that_lies_outside_the_window(tmp_path, caplog):
    """It was left out of the pull without a word, exit 0."""
    export = seconds_export(tmp_path)

    with caplog.at_level(logging.WARNING):
        summary = pull(LocalFileSource([export]), H0.start_ms, H0.end_ms, tmp_path / "out")

    assert [hour.records for hour in summary.hours] == [1]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "1 hour(s) the files hold lie outside the window" in warning
    assert "export.jsonl, line 2" in warning
    assert "looks like seconds" in warning
