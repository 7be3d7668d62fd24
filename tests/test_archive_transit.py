"""A bag after a trip: what copies do to it is told apart from tampering, and tampering hidden
behind such damage is still caught.

Legal checks a bag months later on another machine, after a zip, a Windows share or a USB
stick: text files come back with CRLF line ends, and Finder or Explorer leave their own files
in every folder. The stock commands of VERIFY.txt then fail with no hint why; `auditor verify`
must say which file, what happened and how to undo it, and must still call any other change a
change.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import (
    build_bag,
    middle_file,
    openssl_verify,
    recompute_manifests,
    sha256sum_check,
    ssh_verify,
)

from auditor.archive import layout
from auditor.archive.publickey import load_public_keys
from auditor.archive.signing import sign
from auditor.archive.transit import signature_repairs
from auditor.archive.verify import verify_bag
from auditor.cli import main

_TRANSIT = "none a change to what is signed"


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


def test_an_ssh_signature_a_mail_gave_crlf_line_ends_is_named_as_such(bag, keys):
    """ssh-keygen refuses a .sshsig with CRLF line ends ("missing header"), and so does verify,
    which named it a plain problem; with the tag manifest converted too, as a mail converts
    every text file, it also called the Ed25519 signature one that does not verify."""
    converted = [layout.SSH_SIGNATURE, layout.TAGMANIFEST, *layout.TAG_FILES, layout.VERIFY_TXT]
    for name in converted:
        _unix2dos(bag / name)
    assert ssh_verify(bag, keys[0].allowed_signers).returncode != 0

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert lines[0] == (
        f"{bag.name}/{layout.SSH_SIGNATURE}: its line ends were changed to CRLF in transit (a "
        "Windows copy, unzip -a, FTP in ASCII mode?); with its original line ends it is, "
        "unchanged, the file ssh-keygen -Y verify accepts: take a binary copy (or "
        "`sed -i 's/\\r$//' FILE`) and verify again"
    )
    assert sorted(line.split(": ", 1)[0] for line in lines) == sorted(
        f"{bag.name}/{name}" for name in converted
    )
    assert all("CRLF in transit" in line for line in lines)
    assert _TRANSIT in summary
    subprocess.run(["sed", "-i", "s/\\r$//", *converted], cwd=bag, check=True)
    assert ssh_verify(bag, keys[0].allowed_signers).returncode == 0
    assert _verify(bag, keys)[0] == 0


def test_an_ssh_signature_with_crlf_over_a_changed_tag_manifest_is_no_transit_damage(bag, keys):
    _unix2dos(bag / layout.SSH_SIGNATURE)
    tagmanifest = bag / layout.TAGMANIFEST
    tagmanifest.write_bytes(tagmanifest.read_bytes() + b"0" * 64 + b"  extra.txt\n")

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert not any("in transit" in line for line in lines)
    assert f"{bag.name}/{layout.SSH_SIGNATURE}: ssh-keygen cannot read it" in "\n".join(lines)
    assert _TRANSIT not in summary


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


@pytest.fixture(scope="module")
def chain(keys, tmp_path_factory):
    """Two runs of one app, its bag-info naming the app and each run's window."""
    root = tmp_path_factory.mktemp("chain")
    info = {"Source-Organization": "acme", "Source-Application": "chat"}
    first = build_bag(root, keys[1], "run-000001", 1, messages=24, info=_window(info, 1))
    build_bag(
        root, keys[1], "run-000002", 2, first.tagmanifest_sha256, 24, 2, info=_window(info, 2)
    )
    return root


def _window(info: dict, day: int) -> dict:
    return {
        **info,
        "Window-Since": f"2026-11-0{day}T00:00:00Z",
        "Window-Until": f"2026-11-0{day + 1}T00:00:00Z",
    }


def _chain(folder, keys):
    result = CliRunner().invoke(
        main, ["verify-chain", str(folder), "--pubkey", str(keys[0].public_key)]
    )
    return result.exit_code, result.stdout, result.stderr


def test_verify_and_verify_chain_name_the_app_and_hours_a_verdict_is_about(chain, keys):
    """A bag of another app, signed by the same key, verifies as well as the right one."""
    verified = CliRunner().invoke(
        main, ["verify", str(chain / "run-000002"), "--pubkey", str(keys[0].public_key)]
    )
    code, said, _ = _chain(chain, keys)

    assert verified.exit_code == 0
    assert (
        f"{chain / 'run-000002'}: run 2 of acme/chat, 2026-11-02T00:00:00Z to "
        "2026-11-03T00:00:00Z\n" in verified.stdout
    )
    assert code == 0
    assert (
        f"{chain}: runs 1 to 2 of acme/chat, 2026-11-01T00:00:00Z to 2026-11-03T00:00:00Z" in said
    )


def test_a_bag_nested_one_folder_deeper_is_named_not_left_out_of_an_intact_chain(
    chain, keys, tmp_path
):
    folder = tmp_path / "received"
    shutil.copytree(chain / "run-000001", folder / "run-000001")
    shutil.copytree(chain / "run-000002", folder / "run-000002" / "run-000002")  # unzip into x/

    code, said, _ = _chain(folder, keys)

    assert code == 1
    assert said.splitlines()[0] == (
        "run-000002/run-000002: a bag one folder deeper than the others, so not checked in "
        "this chain: move it beside them (did a copy or unzip nest it?) and verify again"
    )


def test_a_folder_one_above_the_bags_says_where_they_are(chain, keys, tmp_path):
    shutil.copytree(chain, tmp_path / "received" / "archive")
    wrapped = tmp_path / "received" / "archive" / "run-000001"
    shutil.move(wrapped, tmp_path / "wrapped" / "run-000001")

    code, _, error = _chain(tmp_path / "received", keys)
    verified = CliRunner().invoke(
        main, ["verify", str(tmp_path / "wrapped"), "--pubkey", str(keys[0].public_key)]
    )

    assert code == 2
    assert error == (
        f"auditor: error: {tmp_path / 'received'}: holds no bag, but "
        f"{tmp_path / 'received' / 'archive'} holds 1: verify-chain that folder\n"
    )
    assert verified.exit_code == 2
    assert verified.stderr == (
        f"auditor: error: {tmp_path / 'wrapped'}: not a bag (no bagit.txt, no "
        f"tagmanifest-sha256.txt); it holds one, {tmp_path / 'wrapped' / 'run-000001'}: "
        "verify that folder\n"
    )


def test_a_proof_names_its_app_and_hours_and_holds_after_a_mail_client_converted_it(
    chain, keys, tmp_path
):
    bag = chain / "run-000002"
    proof = tmp_path / "proof.json"
    proved = CliRunner().invoke(main, ["prove", str(bag), _first_msg_id(bag), "-o", str(proof)])
    proof.write_bytes(proof.read_bytes().replace(b"\n", b"\r\n"))

    checked = CliRunner().invoke(
        main, ["verify-proof", str(proof), "--pubkey", str(keys[0].public_key)]
    )

    assert proved.exit_code == 0
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[1] == (
        f"{proof}: run-000002 of acme/chat, 2026-11-02T00:00:00Z to 2026-11-03T00:00:00Z"
    )


def test_an_attachment_whose_line_ends_unzip_a_converted_is_transit_damage_too(bag, keys):
    stored = sorted((bag / layout.ATTACHMENTS).iterdir())
    target = next(path for path in stored if b"\n" in path.read_bytes())
    _unix2dos(target)

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert lines == [
        f"{bag.name}/{target.relative_to(bag).as_posix()}: its line ends were changed to CRLF "
        "in transit (a Windows copy, unzip -a, FTP in ASCII mode?); with its original line "
        "ends it is, unchanged, the file manifest-sha256.txt lists: take a binary copy (or "
        "`sed -i 's/\\r$//' FILE`) and verify again"
    ]
    assert _TRANSIT in summary


def test_a_key_that_came_with_the_archive_is_warned_of(chain, keys, tmp_path):
    """The forger's way: sign again, and leave their key beside the bags for legal to use."""
    received = shutil.copytree(chain, tmp_path / "received")
    beside = shutil.copy(keys[0].public_key, received / "auditor-signing-key.pub.pem")
    own = CliRunner().invoke(
        main, ["verify", str(received / "run-000001"), "--pubkey", str(keys[0].public_key)]
    )

    checked = CliRunner().invoke(
        main, ["verify", str(received / "run-000001"), "--pubkey", str(beside)]
    )
    chained = CliRunner().invoke(main, ["verify-chain", str(received), "--pubkey", str(beside)])

    assert own.exit_code == checked.exit_code == chained.exit_code == 0
    assert own.stderr == ""
    warning = (
        f"auditor: warning: {beside} came with the archive (it lies in {received}): a key that "
        "travels with an archive proves nothing; verify with your own copy, received apart, "
        "whose fingerprint the operator gave you\n"
    )
    assert checked.stderr == warning
    assert chained.stderr.startswith(warning)


def test_a_crlf_file_whose_line_ends_dos2unix_changed_to_lf_is_named_so(keys, tmp_path):
    """findings.csv is written with CRLF line ends, as spreadsheets read them."""
    csv = b'"msg_id","severity"\r\n"200000070000029835","high"\r\n'
    bag = build_bag(tmp_path, keys[1], messages=24, files={"report/findings.csv": csv}).path
    (bag / "data" / "report" / "findings.csv").write_bytes(csv.replace(b"\r\n", b"\n"))

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert lines == [
        f"{bag.name}/data/report/findings.csv: its line ends were changed to LF in transit "
        "(dos2unix, git, FTP in ASCII mode?); with its original line ends it is, unchanged, "
        "the file manifest-sha256.txt lists: take a binary copy (or `sed -i 's/$/\\r/' FILE`) "
        "and verify again"
    ]
    assert _TRANSIT in summary
    subprocess.run(["sed", "-i", "s/$/\\r/", "data/report/findings.csv"], cwd=bag, check=True)
    assert _verify(bag, keys)[0] == 0


def test_a_listed_file_named_like_one_windows_adds_is_checked_never_called_added(keys, tmp_path):
    bag = build_bag(tmp_path, keys[1], messages=24, files={"report/desktop.ini": b"[x]\n"}).path

    assert verify_bag(bag, keys[1].public_key()).ok
    (bag / "data" / "report" / "desktop.ini").write_bytes(b"[y]\n")
    code, lines, summary = _verify(bag, keys)
    assert code == 1
    assert lines[0] == (
        f"{bag.name}/data/report/desktop.ini: its SHA-256 does not match manifest-sha256.txt "
        "(changed)"
    )
    assert _TRANSIT not in summary


def _signed_so_that(bag, keys, wanted) -> bytes:
    """Signs the bag again, with another External-Identifier each time, until its binary
    signature is one `wanted` accepts (one with a 0x0a byte, say): a signature is 64 bytes
    that look random, so about one in five holds an LF."""
    info = bag / layout.BAG_INFO
    original = info.read_text()
    for attempt in range(500):
        info.write_text(f"{original}External-Identifier: attempt {attempt}\n")
        recompute_manifests(bag, update_root=False)
        signed = sign(keys[1], (bag / layout.TAGMANIFEST).read_bytes(), layout.DEFAULT_NAMESPACE)
        if wanted(signed.raw):
            (bag / layout.SIGNATURE).write_bytes(signed.raw)
            (bag / layout.SSH_SIGNATURE).write_text(signed.ssh)
            return signed.raw
    raise AssertionError("no signature of that kind in 500 attempts")


def _with_lf(raw: bytes) -> bool:
    return b"\n" in raw and b"\r" not in raw and any(byte >= 0x80 for byte in raw)


def _openssl_accepts(bag, keys, signature_file: str) -> bool:
    return subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(keys[0].public_key), "-rawin",
         "-in", layout.TAGMANIFEST, "-sigfile", signature_file],
        cwd=bag, capture_output=True, check=False,
    ).returncode == 0  # fmt: skip


def _undo_command(line: str) -> str:
    return line.split("(or `", 1)[1].split("`", 1)[0]


@pytest.mark.parametrize(
    ("mangle", "done"),
    [
        (lambda raw: raw.replace(b"\n", b"\r\n"), "each LF byte was written as CRLF"),
        (
            lambda raw: raw.decode("latin-1").encode("utf-8"),
            "its bytes from 0x80 on were written as UTF-8 text",
        ),
        (
            lambda raw: raw.decode("latin-1").encode("utf-8").replace(b"\n", b"\r\n"),
            "its bytes from 0x80 on were written as UTF-8 text and each LF byte was written as "
            "CRLF",
        ),
    ],
    ids=["crlf", "utf-8", "both"],
)
def test_a_binary_signature_a_mail_copied_as_text_is_named_so_and_undone_with_stock_tools(
    bag, keys, mangle, done
):
    """The openssl signature sent through a mail client or a text-mode copy was reported as
    "does not verify", as if the archive had changed. Its repaired bytes verify, so they are the
    real signature: said as transit damage (never "intact"), with the command that undoes it."""
    raw = _signed_so_that(bag, keys, _with_lf)
    (bag / layout.SIGNATURE).write_bytes(mangle(raw))
    assert not _openssl_accepts(bag, keys, layout.SIGNATURE)

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"{bag.name}/{layout.SIGNATURE}: copied as text in transit ({done}: a mail client, FTP "
        f"in ASCII mode?); with that undone it is the 64-byte Ed25519 signature of "
        f"{layout.TAGMANIFEST}, and it verifies: take a binary copy (or `"
    )
    assert _TRANSIT in summary and "intact" not in " ".join(lines)
    subprocess.run(["/bin/sh", "-c", f"{_undo_command(lines[0])} > sig.bin"], cwd=bag, check=True)
    assert (bag / "sig.bin").read_bytes() == raw
    assert _openssl_accepts(bag, keys, "sig.bin")


def test_a_signature_copied_as_text_over_a_changed_tag_manifest_is_no_transit_damage(bag, keys):
    raw = _signed_so_that(bag, keys, _with_lf)
    (bag / layout.SIGNATURE).write_bytes(raw.replace(b"\n", b"\r\n"))
    tagmanifest = bag / layout.TAGMANIFEST
    tagmanifest.write_bytes(tagmanifest.read_bytes() + b"0" * 64 + b"  extra.txt\n")

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert not any("in transit" in line for line in lines)
    assert f"{bag.name}/{layout.SIGNATURE}: the Ed25519 signature of" in "\n".join(lines)
    assert _TRANSIT not in summary


def test_a_forged_signature_shaped_like_a_text_copy_still_does_not_verify(bag, keys):
    (bag / layout.SIGNATURE).write_bytes(bytes(range(1, 64)).replace(b"\n", b"\r\n") + b"\n")

    code, lines, _summary = _verify(bag, keys)

    assert code == 1
    assert len(lines) == 1 and "does not verify with" in lines[0] and "transit" not in lines[0]


def test_a_signature_whose_crlf_pairs_a_copy_collapsed_is_found_again(keys):
    """dos2unix on the binary signature: each 0x0d 0x0a pair became 0x0a, one byte lost each."""
    for attempt in range(200_000):
        message = b"tag manifest %d\n" % attempt
        raw = keys[1].sign(message)
        if b"\r\n" in raw:
            break
    else:
        raise AssertionError("no signature with a CRLF pair")
    collapsed = raw.replace(b"\r\n", b"\n")

    repairs = [repair for repair in signature_repairs(collapsed) if repair.signature == raw]

    assert len(collapsed) < 64
    assert [repair.done for repair in repairs] == ["each CRLF pair was written as LF"]


def test_a_previous_run_whose_signature_a_mail_reencoded_is_transit_damage_too(
    chain, keys, tmp_path
):
    """`verify --previous` checks the previous run's signature for the link: a text-mode copy
    of it read "does not verify", as if the earlier run had changed."""
    copy = tmp_path / "chain"
    shutil.copytree(chain, copy)
    signature = copy / "run-000001" / layout.SIGNATURE
    signature.write_bytes(signature.read_bytes().decode("latin-1").encode("utf-8"))

    verified = CliRunner().invoke(main, [
        "verify", str(copy / "run-000002"), "--previous", str(copy / "run-000001"),
        "--pubkey", str(keys[0].public_key),
    ])  # fmt: skip

    assert verified.exit_code == 1
    lines = verified.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"run-000001/{layout.SIGNATURE}: copied as text in transit"
    ), lines
    assert _TRANSIT in verified.stderr


def test_a_signature_a_copy_read_as_utf8_losing_bytes_is_not_repaired_but_named(bag, keys):
    """Bytes that are not UTF-8 replaced by U+FFFD are lost: no repair can verify, so it still
    does not verify; its size says why, and what to do."""
    signature = bag / layout.SIGNATURE
    lossy = signature.read_bytes().decode("utf-8", "replace").encode("utf-8")
    signature.write_bytes(lossy)

    code, lines, summary = _verify(bag, keys)

    assert code == 1
    assert lines == [
        f"{bag.name}/{layout.SIGNATURE}: the Ed25519 signature of {layout.TAGMANIFEST} does not "
        f"verify with the given key {keys[0].fingerprint} (it is {len(lossy)} bytes, not 64: a "
        "copy that treated it as text may have changed it beyond repair; take a binary copy "
        "and verify again)"
    ]
    assert _TRANSIT not in summary


def _signature_checks(action) -> tuple[object, int]:
    """What `action()` returned, and how many Ed25519 signatures it checked (each call of the
    real `Ed25519PublicKey.verify`, seen as Python's profiler sees a C call)."""
    calls = 0

    def profile(_frame, event, function) -> None:
        nonlocal calls
        if event == "c_call" and getattr(function, "__qualname__", "") == "Ed25519PublicKey.verify":
            calls += 1

    sys.setprofile(profile)
    try:
        result = action()
    finally:
        sys.setprofile(None)
    return result, calls


def test_an_intact_bag_and_its_previous_run_have_each_signature_checked_once(chain, keys):
    """The .sig was checked once to know whether a copy had damaged it, then again by the
    signatures' own check: an intact bag's three Ed25519 checks where two (.sig, SSH) prove it,
    six with its previous run."""
    public_key = load_public_keys([keys[0].public_key])
    first, second = chain / "run-000001", chain / "run-000002"

    alone, alone_checks = _signature_checks(lambda: verify_bag(first, public_key))
    linked, linked_checks = _signature_checks(lambda: verify_bag(second, public_key, first))

    assert alone.ok and linked.ok and linked.previous_signer == alone.signer is not None
    assert (alone_checks, linked_checks) == (2, 4)
