"""A file added to a bag that no manifest lists passes every `sha256sum -c` and signature check,
so legal, holding only stock tools, would read an added records file or a second report as
archived (probe 24). VERIFY.txt's step 2 ends with a command that lists such files; here it is
run as written, with bash and stock tools alone, on bags given such additions."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from click.testing import CliRunner
from test_archive_support import build_bag, make_keys, openssl_verify, run, sha256sum_check
from test_verify_instructions import README_KEYS, readme_stock_tool_block

from auditor.archive import layout
from auditor.cli import main

STOCK_PATH = "/usr/bin:/bin"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("legal-keys"))


@pytest.fixture(scope="module")
def signed(keys, tmp_path_factory):
    return build_bag(tmp_path_factory.mktemp("archive"), keys[1], "run-000001", messages=48).path


@pytest.fixture
def bag(signed, tmp_path):
    return shutil.copytree(signed, tmp_path / "run-000001", symlinks=True)


def unlisted_files_command(bag) -> str:
    """The command of VERIFY.txt that lists files no manifest names, continuation lines joined."""
    text = (bag / layout.VERIFY_TXT).read_text()
    (command,) = re.findall(r"^ {5}(LC_ALL=C comm (?:.*\\\n)*.*)$", text, flags=re.M)
    return re.sub(r"\\\n\s*", "", command)


def printed(bag) -> list[str]:
    result = run(
        ["bash", "--noprofile", "--norc", "-c", unlisted_files_command(bag)],
        bag,
        env={"PATH": STOCK_PATH, "LC_ALL": "", "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().splitlines()


def test_an_untouched_bag_prints_nothing(bag):
    assert printed(bag) == []


ADDITIONS = {
    "an hour of records": "data/records/2099010100.jsonl",
    "a second report": "data/report/report-final.html",
    "a note in the bag root": "LEGAL-NOTE.txt",
    "a copy beside the tag manifest": "tagmanifest-sha256.txt.orig",
    "a hidden file": "data/.records.jsonl",
    "a name with a space": "data/report/final report.html",
}


@pytest.mark.parametrize("added", ADDITIONS.values(), ids=ADDITIONS.keys())
def test_a_file_no_manifest_lists_passes_sha256sum_but_is_printed(bag, keys, added):
    (bag / added).parent.mkdir(parents=True, exist_ok=True)
    (bag / added).write_bytes(b'{"record": "I was never archived"}\n')

    assert openssl_verify(bag, keys[0].public_key).returncode == 0
    assert sha256sum_check(bag, layout.TAGMANIFEST).returncode == 0
    assert sha256sum_check(bag, layout.MANIFEST).returncode == 0
    assert printed(bag) == [added]


def test_a_symlink_is_printed(bag):
    os.symlink("/etc/hostname", bag / "data" / "report" / "logo.png")

    assert printed(bag) == ["data/report/logo.png"]


def test_a_name_whose_lines_are_each_a_listed_name_is_still_printed(bag):
    """`find` prints a newline in a name as is: a file named `<listed hour>\n..bagit.txt` gives
    two lines that are both listed names, and `comm` prints each line the bag holds once more
    than the manifests list."""
    hour = sorted((bag / layout.RECORDS).iterdir())[0].name
    (bag / layout.RECORDS / f"{hour}\n..{layout.BAGIT_TXT}").write_bytes(b"{}\n")

    assert sorted(printed(bag)) == sorted([layout.BAGIT_TXT, f"{layout.RECORDS}/{hour}"])


def test_readme_stock_tool_block_prints_an_added_file_after_every_check_passes(bag, keys):
    (bag / "data" / "report" / "report-final.html").write_text("<h1>No findings</h1>")
    script = readme_stock_tool_block().replace(README_KEYS, str(keys[0].public_key.parent))

    result = run(["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", script], bag)

    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[-1] == "data/report/report-final.html"


def empty_folders_command(bag) -> str:
    """The command of VERIFY.txt's step 2 that prints empty folders."""
    text = (bag / layout.VERIFY_TXT).read_text()
    (command,) = re.findall(r"^ {5}(find \. -type d -empty .*)$", text, flags=re.M)
    return command


def printed_empty(bag) -> list[str]:
    result = run(
        ["bash", "--noprofile", "--norc", "-c", empty_folders_command(bag)],
        bag,
        env={"PATH": STOCK_PATH, "LC_ALL": "", "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().splitlines()


@pytest.fixture(scope="module")
def bare(keys, tmp_path_factory):
    """A bag of a run that skipped attachments: the writer's folder of them stays empty."""
    folder = tmp_path_factory.mktemp("bare")
    return build_bag(folder, keys[1], "run-000001", messages=48, attachments=False).path


def test_no_folder_of_an_untouched_bag_is_printed_empty(bag, bare):
    assert not any((bare / layout.ATTACHMENTS).iterdir())

    assert printed_empty(bag) == []
    assert printed_empty(bare) == []


EMPTY_FOLDERS = {
    "named like an hour of records": "data/records/2099010100.jsonl",
    "in the report folder": "data/report/wire 50000 to acct 12",
    "beside the attachments": "data/attachments/sha256/00",
    "in the bag root": "evidence",
    "a hidden one": "data/.hidden",
}


@pytest.mark.parametrize("added", EMPTY_FOLDERS.values(), ids=EMPTY_FOLDERS.keys())
def test_an_empty_folder_added_passes_the_file_checks_but_is_printed(bag, keys, added):
    (bag / added).mkdir()

    assert openssl_verify(bag, keys[0].public_key).returncode == 0
    assert sha256sum_check(bag, layout.TAGMANIFEST).returncode == 0
    assert sha256sum_check(bag, layout.MANIFEST).returncode == 0
    assert printed(bag) == []
    assert printed_empty(bag) == [added]
    verified = CliRunner().invoke(main, ["verify", str(bag), "--pubkey", str(keys[0].public_key)])
    assert verified.exit_code == 1, verified.output
    assert f"{added}: " in verified.output, verified.output
