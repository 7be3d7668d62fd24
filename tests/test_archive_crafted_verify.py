"""A bag crafted by a hostile author (probe11): FIFOs, symlinks, huge lines, stray folders and
names holding newlines give one escaped problem line each; never a hang, a traceback, a read
outside the bag, unbounded memory or "intact"."""

from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner
from test_archive_support import build_chain, make_keys, problem_lines, record_files

from auditor.archive import layout, verify
from auditor.archive.verify import verify_bag
from auditor.cli import main

pytestmark = pytest.mark.usefixtures("no_hang")
HANG_SECONDS = 60


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def series(keys, tmp_path_factory):
    return build_chain(tmp_path_factory.mktemp("runs"), keys[1], messages=48)


@pytest.fixture
def runs(series, tmp_path):
    target = tmp_path / "runs"
    shutil.copytree(series, target, symlinks=True)
    return target


@pytest.fixture
def bag(runs):
    return runs / "run-000001"


def _verify(bag, keys) -> list[str]:
    return problem_lines(verify_bag(bag, keys[1].public_key()))


def _invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


def _replace_with_fifo(path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("name", layout.ROOT_FILES)
def test_a_fifo_as_a_root_file_is_one_problem_not_a_hang(bag, keys, name):
    _replace_with_fifo(bag / name)

    assert _verify(bag, keys) == [f"run-000001/{name}: is a FIFO, not a regular file"]


def test_a_folder_as_bag_info_is_one_problem(bag, keys):
    (bag / layout.BAG_INFO).unlink()
    (bag / layout.BAG_INFO).mkdir()

    assert _verify(bag, keys) == ["run-000001/bag-info.txt: is a folder, not a regular file"]


def test_a_fifo_in_the_previous_bag_is_a_problem_not_a_hang(runs, keys):
    _replace_with_fifo(runs / "run-000001" / layout.BAG_INFO)

    result = _invoke(
        "verify", runs / "run-000002", "--pubkey", keys[0].public_key, "--previous",
        runs / "run-000001",
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.stdout == "run-000001/bag-info.txt: is a FIFO, not a regular file\n"


def test_a_fifo_in_a_run_of_the_chain_is_a_problem_not_a_hang(runs, keys):
    _replace_with_fifo(runs / "run-000002" / layout.SIGNATURE)

    result = _invoke("verify-chain", runs, "--pubkey", keys[0].public_key)

    assert result.exit_code == 1
    assert result.stdout == "run-000002/tagmanifest-sha256.txt.sig: is a FIFO, not a regular file\n"


def test_a_line_past_the_cap_is_a_problem_and_never_held_whole(bag, keys, monkeypatch):
    monkeypatch.setattr(verify, "LINE_LIMIT", 1000)
    target = record_files(bag)[0]
    lines = len(target.read_bytes().splitlines())
    with target.open("ab") as handle:
        handle.write(b"x" * 5000 + b"\n")

    problems = _verify(bag, keys)

    name = f"run-000001/{target.relative_to(bag).as_posix()}"
    assert (
        f"{name}:{lines + 1}: a line longer than 1,000 bytes, which no archived line reaches"
        in (problems)
    )
    assert f"{name}: its SHA-256 does not match manifest-sha256.txt (changed)" in problems


def test_a_huge_signature_file_is_refused_past_its_cap(bag, keys):
    os.truncate(bag / layout.SSH_SIGNATURE, 2 << 20)

    assert _verify(bag, keys) == [
        "run-000001/tagmanifest-sha256.txt.sshsig: is larger than the 1,048,576 bytes such a "
        "file holds"
    ]


def test_a_huge_public_key_file_is_refused_with_exit_2(bag, keys, tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes(keys[0].public_key.read_bytes() + b"\n" * (2 << 20))

    result = _invoke("verify", bag, "--pubkey", key)

    assert result.exit_code == 2
    assert "larger than 1,048,576 bytes, so not a public key file" in result.output


def test_problems_past_a_thousand_are_counted_not_listed(bag, keys):
    with (bag / layout.MANIFEST).open("a") as handle:
        handle.writelines(f"{'0' * 64}  data/gone/{number}\n" for number in range(1500))

    problems = _verify(bag, keys)

    assert len(problems) == 1001
    assert problems[-1] == "run-000001: 501 more problems, not listed (the first 1,000 are)"


@pytest.mark.parametrize("folder", ["data", "data/records", "data/attachments"])
def test_a_symlinked_payload_folder_is_one_problem_and_never_followed(bag, keys, tmp_path, folder):
    outside = tmp_path / "outside"
    shutil.move(bag / folder, outside)
    (outside / "planted.jsonl").write_bytes(b"not json\n")
    (bag / folder).symlink_to(outside)

    problems = _verify(bag, keys)

    if folder == layout.DATA:
        expected = "data: is a symbolic link, not the bag's payload folder: its files were not read"
    else:
        expected = f"{folder}: is a symbolic link; the files it points to were not checked"
    assert problems == [f"run-000001/{expected}"]


def test_a_symlinked_bag_info_is_refused_and_never_read(bag, keys, tmp_path):
    outside = tmp_path / "passwd"
    outside.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    (bag / layout.BAG_INFO).unlink()
    (bag / layout.BAG_INFO).symlink_to(outside)

    assert _verify(bag, keys) == [
        "run-000001/bag-info.txt: is a symbolic link, not a file of the bag"
    ]


def test_a_symlinked_findings_file_is_refused_and_never_read(bag, keys, tmp_path):
    outside = tmp_path / "findings.jsonl"
    outside.write_bytes(b"secret outside the bag\n")
    (bag / layout.FINDINGS).unlink()
    (bag / layout.FINDINGS).symlink_to(outside)

    problems = _verify(bag, keys)

    assert "run-000001/data/findings.jsonl: is not a regular file" in problems
    assert not any("not JSON" in problem for problem in problems)


def test_folders_holding_no_listed_file_are_problems_not_intact(bag, keys):
    partition = record_files(bag)[0].name.replace(".jsonl", "9.jsonl")
    (bag / "data/evil/secret-channel-HELLO").mkdir(parents=True)
    (bag / layout.RECORDS / partition).mkdir()

    assert _verify(bag, keys) == [
        f"run-000001/{path}: a folder that holds no file listed in manifest-sha256.txt (added?)"
        for path in ("data/evil", "data/evil/secret-channel-HELLO", f"data/records/{partition}")
    ]


def test_a_name_with_a_newline_or_escape_cannot_forge_an_output_line(bag, keys):
    (bag / "data" / "x\nrun-000001: intact: run 1").write_bytes(b"")
    (bag / "\x1b[2K\rerased").write_bytes(b"")

    result = _invoke("verify", bag, "--pubkey", keys[0].public_key)

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert (
        "run-000001/\\x1b[2K\\rerased: extra file in the bag root: no manifest or signature "
        "covers it" in lines
    )
    assert (
        "run-000001/data/x\\nrun-000001: intact: run 1: not listed in manifest-sha256.txt "
        "(added or renamed?)" in lines
    )
    assert not any(line.startswith("run-000001: intact") for line in lines)


def test_a_damaged_run_in_the_chain_is_reported_not_skipped(runs, keys):
    (runs / "run-000002" / layout.BAGIT_TXT).unlink()
    (runs / "run-000002" / layout.TAGMANIFEST).unlink()
    (runs / ".hidden-run").mkdir()
    (runs / layout.SPOOL_FOLDER).mkdir()  # the runs' own spool, not a hidden run

    result = _invoke("verify-chain", runs, "--pubkey", keys[0].public_key)

    assert result.exit_code == 1
    assert result.stdout == (
        "run-000002: holds a run's files but is not a bag (no bagit.txt, no "
        "tagmanifest-sha256.txt): a damaged run, not checked\n"
    )
    assert f"{runs}: 1 hidden folder(s) skipped: .hidden-run" in result.stderr
