"""Files of a crafted bag are opened only when they are regular files, not through a symlink,
and read only up to a cap: a FIFO hung `verify` for ever, a symlink read /etc/passwd."""

from __future__ import annotations

import os

import pytest

from auditor.archive.untrusted import UnsafeFile, open_regular, read_regular, record_files, shown
from auditor.errors import InputError


def test_a_regular_file_is_read(tmp_path):
    (tmp_path / "bag-info.txt").write_bytes(b"Run-Sequence: 1\n")
    assert read_regular(tmp_path / "bag-info.txt", 100) == b"Run-Sequence: 1\n"
    with open_regular(tmp_path / "bag-info.txt") as handle:
        assert handle.read() == b"Run-Sequence: 1\n"


def test_a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "bag-info.txt")
    with pytest.raises(UnsafeFile, match=r"^is a FIFO, not a regular file$"):
        read_regular(tmp_path / "bag-info.txt", 100)


@pytest.mark.parametrize("target", ["/etc/passwd", "/dev/zero"])
def test_a_symlink_is_refused_whatever_it_points_to(tmp_path, target):
    (tmp_path / "bag-info.txt").symlink_to(target)
    with pytest.raises(UnsafeFile, match=r"^is a symbolic link, not a file of the bag$"):
        read_regular(tmp_path / "bag-info.txt", 100)


def test_a_folder_or_a_device_is_refused(tmp_path):
    (tmp_path / "records").mkdir()
    with pytest.raises(UnsafeFile, match=r"^is a folder, not a regular file$"):
        read_regular(tmp_path / "records", 100)
    with pytest.raises(UnsafeFile, match=r"^is a device, not a regular file$"):
        read_regular("/dev/zero", 100)


def test_a_file_past_the_cap_is_refused_without_reading_it_whole(tmp_path):
    sparse = tmp_path / "bag.sig"
    with sparse.open("wb") as handle:
        handle.truncate(1 << 40)  # a terabyte of holes
    with pytest.raises(UnsafeFile, match=r"^is larger than the 4,096 bytes such a file holds$"):
        read_regular(sparse, 4096)


def test_a_missing_file_is_the_usual_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "absent", 100)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("run-000001/bag-info.txt", "run-000001/bag-info.txt"),
        ("下载/记录.jsonl", "下载/记录.jsonl"),
        ("x\nrun-000001: intact", "x\\nrun-000001: intact"),
        ("\x1b[2K\rerased", "\\x1b[2K\\rerased"),
        ("right\u202eto-left", "right\\u202eto-left"),
        ("undecodable\udcff", "undecodable\\udcff"),
    ],
)
def test_a_name_is_shown_on_one_line_with_what_a_terminal_acts_on_escaped(name, expected):
    assert shown(name) == expected


def test_record_files_come_in_hour_order_and_a_linked_records_folder_is_refused(tmp_path):
    bag = tmp_path / "bag"
    records = bag / "data" / "records"
    records.mkdir(parents=True)
    for name in ("2026-01-01T10.jsonl", "2026-01-01T09.jsonl", "notes.txt"):
        (records / name).write_bytes(b"")
    assert [path.name for path in record_files(bag)] == [
        "2026-01-01T09.jsonl",
        "2026-01-01T10.jsonl",
    ]

    linked = tmp_path / "linked"
    (linked / "data").mkdir(parents=True)
    (linked / "data" / "records").symlink_to(records)
    with pytest.raises(InputError, match="is a symbolic link, not a folder of the bag"):
        record_files(linked)
