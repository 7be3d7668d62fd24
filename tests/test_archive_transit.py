"""A bag after a trip: what copies do to it is told apart from tampering, and tampering hidden
behind such damage is still caught.

Legal checks a bag months later on another machine, after a zip, a Windows share or a USB
stick: text files come back with CRLF line ends, and Finder or Explorer leave their own files
in every folder. The stock commands of VERIFY.txt then fail with no hint why; `auditor verify`
must say which file, what happened and how to undo it, and must still call any other change a
change.
"""

from __future__ import annotations

import subprocess

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import (
    build_bag,
    copy_bag,
    make_keys,
    middle_file,
    openssl_verify,
    sha256sum_check,
)

from auditor.archive import layout
from auditor.archive.verify import verify_bag
from auditor.cli import main

_TRANSIT = "none a change to what is signed"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def intact(keys, tmp_path_factory):
    return build_bag(tmp_path_factory.mktemp("runs"), keys[1]).path


@pytest.fixture
def bag(intact, tmp_path):
    return copy_bag(intact, tmp_path)


def _unix2dos(path) -> None:
    """What unix2dos, `unzip -a` or an FTP transfer in ASCII mode does to a text file."""
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _verify(bag, keys):
    result = CliRunner().invoke(main, ["verify", str(bag), "--pubkey", str(keys[0].public_key)])
    return result.exit_code, result.stdout.splitlines(), result.stderr


def _stock_tools_pass(bag, keys) -> bool:
    return (
        openssl_verify(bag, keys[0].public_key).returncode == 0
        and sha256sum_check(bag, layout.TAGMANIFEST).returncode == 0
        and sha256sum_check(bag, layout.MANIFEST).returncode == 0
    )


def test_line_ends_converted_in_transit_are_named_as_such_and_undone_with_sed(bag, keys):
    converted = [*layout.TAG_FILES, layout.TAGMANIFEST, layout.VERIFY_TXT, layout.FINDINGS]
    for name in converted:
        _unix2dos(bag / name)
    assert not _stock_tools_pass(bag, keys)  # "Signature Verification Failure", no reason given

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert sorted(line.split(": ", 1)[0] for line in lines) == sorted(
        f"{bag.name}/{name}" for name in converted
    )
    assert "changed to CRLF in transit" in lines[0] and "sed -i 's/\\r$//' FILE" in lines[0]
    assert all("CRLF in transit" in line for line in lines)
    assert _TRANSIT in summary
    subprocess.run(["sed", "-i", "s/\\r$//", *converted], cwd=bag, check=True)
    assert _stock_tools_pass(bag, keys)
    assert _verify(bag, keys)[0] == 0


def test_a_records_file_with_crlf_line_ends_is_transit_damage_not_a_new_merkle_root(bag, keys):
    target = middle_file(bag)
    _unix2dos(target)

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{bag.name}/{target.relative_to(bag).as_posix()}: its line ends")
    assert _TRANSIT in summary


def test_a_change_behind_converted_line_ends_is_still_a_change(bag, keys):
    target = middle_file(bag)
    target.write_bytes(target.read_bytes().replace(b'"from":"user', b'"from":"usex', 1))
    _unix2dos(target)
    info = bag / layout.BAG_INFO
    info.write_bytes(info.read_bytes().replace(b"Source-API: emulator", b"Source-API: another"))
    _unix2dos(info)

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    relative = f"{bag.name}/{target.relative_to(bag).as_posix()}"
    assert f"{relative}: its SHA-256 does not match manifest-sha256.txt (changed)" in lines
    assert (
        f"{bag.name}/bag-info.txt: its SHA-256 does not match tagmanifest-sha256.txt (changed)"
        in lines
    )
    assert not any("in transit" in line for line in lines)
    assert _TRANSIT not in summary


def test_files_an_operating_system_adds_are_one_line_a_kind_and_break_no_reader(bag, keys):
    originals = sorted(bag.rglob("*"))
    for path in originals:  # macOS writing to an exFAT stick: ._NAME beside every entry
        (path.parent / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07Mac OS X        ")
    for folder in (bag, bag / "data", bag / layout.RECORDS):
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (bag / layout.ATTACHMENTS / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (bag / "data" / "__MACOSX").mkdir()
    (bag / "data" / "__MACOSX" / "._policy.yaml").write_bytes(b"Mac OS X")
    assert _stock_tools_pass(bag, keys)  # sha256sum cannot see added files

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert len(lines) == 4, lines
    assert any(f"(and {len(originals) - 1:,} more)" in line for line in lines)
    assert all("added in transit by" in line for line in lines)
    assert _TRANSIT in summary
    msg_id = _first_msg_id(bag)
    proved = CliRunner().invoke(main, ["prove", str(bag), msg_id, "-o", str(bag.parent / "p")])
    assert proved.exit_code == 0, proved.output
    for kind in ("._*", ".DS_Store", "Thumbs.db", "__MACOSX"):
        subprocess.run(["find", ".", "-name", kind, "-exec", "rm", "-rf", "{}", "+"], cwd=bag)
    assert verify_bag(bag, keys[1].public_key()).ok


def _first_msg_id(bag) -> str:
    line = sorted((bag / layout.RECORDS).glob("[0-9]*.jsonl"))[0].read_bytes().splitlines()[0]
    return orjson.loads(line)["record"]["msg_id"]
