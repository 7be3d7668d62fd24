"""Every tampering of the issue's list is caught by `auditor verify` with a specific message,
and by the stock tools wherever they can see it."""

from __future__ import annotations

import shutil

import bagit
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_archive_support import (
    middle_file,
    openssl_verify,
    problem_lines,
    recompute_manifests,
    record_files,
    sha256sum_check,
    ssh_verify,
)

from auditor.archive import layout
from auditor.archive.canonical import canonical
from auditor.archive.lines import canonical_line
from auditor.archive.publickey import fingerprint, public_pem
from auditor.archive.signing import sign
from auditor.archive.verify import verify_bag


def _verify(bag, keys) -> list[str]:
    return problem_lines(verify_bag(bag, keys[1].public_key()))


def _relative(bag, path) -> str:
    return f"{bag.name}/{path.relative_to(bag).as_posix()}"


def _flip_byte(path, offset: int, old: bytes, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    assert data[offset : offset + 1] == old
    data[offset : offset + 1] = new
    path.write_bytes(bytes(data))


def test_an_untouched_copy_verifies(bag, keys):
    assert _verify(bag, keys) == []


def test_one_byte_changed_in_a_record(bag, keys):
    target = middle_file(bag)
    data = target.read_bytes()
    _flip_byte(target, data.index(b'"from":"user') + 8, b"u", b"v")

    problems = _verify(bag, keys)

    name = _relative(bag, target)
    assert f"{name}: its SHA-256 does not match manifest-sha256.txt (changed)" in problems
    assert any(p.startswith(f"{bag.name}/bag-info.txt: Merkle-Root is ") for p in problems)
    checked = sha256sum_check(bag, layout.MANIFEST)
    assert checked.returncode != 0
    assert f"{target.relative_to(bag).as_posix()}: FAILED".encode() in checked.stdout
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag)).validate()


def test_one_byte_changed_in_a_seq_breaks_the_sequence_of_lines(bag, keys):
    target = middle_file(bag)
    first = orjson.loads(target.read_bytes().splitlines()[0])["seq"]
    data = target.read_bytes()
    offset = data.index(b',"seq":%d}' % first) + len(',"seq":')
    digit = data[offset : offset + 1]
    _flip_byte(target, offset, digit, b"%d" % ((int(digit) + 1) % 10))

    problems = _verify(bag, keys)

    assert any(
        p.startswith(f"{_relative(bag, target)}:1: seq ") and "was expected" in p for p in problems
    )


def test_one_byte_changed_in_an_attachment(bag, keys):
    target = sorted((bag / layout.ATTACHMENTS).iterdir())[3]
    _flip_byte(target, 0, b"E", b"e")

    problems = _verify(bag, keys)

    name = _relative(bag, target)
    assert f"{name}: its SHA-256 does not match manifest-sha256.txt (changed)" in problems
    assert f"{name}: the attachment's bytes do not hash to its name (changed)" in problems
    assert sha256sum_check(bag, layout.MANIFEST).returncode != 0


def test_one_byte_changed_in_bag_info(bag, keys):
    target = bag / layout.BAG_INFO
    data = target.read_bytes()
    offset = data.index(b"Record-Count: 240") + len("Record-Count: 24")
    _flip_byte(target, offset, b"0", b"1")

    problems = _verify(bag, keys)

    assert (
        f"{bag.name}/bag-info.txt: its SHA-256 does not match tagmanifest-sha256.txt (changed)"
        in problems
    )
    assert f"{bag.name}/bag-info.txt: Record-Count is 241, but the bag holds 240" in problems
    checked = sha256sum_check(bag, layout.TAGMANIFEST)
    assert checked.returncode != 0 and b"bag-info.txt: FAILED" in checked.stdout


def test_one_byte_changed_in_the_payload_manifest(bag, keys):
    target = bag / layout.MANIFEST
    data = target.read_bytes()
    _flip_byte(target, 0, data[:1], b"0" if data[:1] != b"0" else b"1")

    problems = _verify(bag, keys)

    assert (
        f"{bag.name}/manifest-sha256.txt: its SHA-256 does not match tagmanifest-sha256.txt "
        "(changed)" in problems
    )
    assert sha256sum_check(bag, layout.TAGMANIFEST).returncode != 0


def test_one_byte_changed_in_the_tag_manifest_fails_both_signatures(bag, keys):
    target = bag / layout.TAGMANIFEST
    data = target.read_bytes()
    _flip_byte(target, 0, data[:1], b"0" if data[:1] != b"0" else b"1")

    problems = _verify(bag, keys)

    assert (
        f"{bag.name}/tagmanifest-sha256.txt.sig: the Ed25519 signature of tagmanifest-sha256.txt "
        f"does not verify with the given key {keys[0].fingerprint}" in problems
    )
    assert (
        f"{bag.name}/tagmanifest-sha256.txt.sshsig: the SSH signature does not verify with the "
        "given key" in problems
    )
    assert openssl_verify(bag, keys[0].public_key).returncode != 0
    assert ssh_verify(bag, keys[0].allowed_signers).returncode != 0


def _edit_lines(path, edit) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(edit(lines)))


def _forged_line(lines, position: int) -> bytes:
    """A well-formed line with a forged record, numbered like the line it is put before."""
    value = orjson.loads(lines[position])
    record = {**value["record"], "payload": {"bodies": [{"type": "txt", "msg": "forged"}]}}
    return canonical_line(value["seq"], value["salt"], record) + b"\n"


def _seq_of(path, line: int) -> int:
    return orjson.loads(path.read_bytes().splitlines()[line - 1])["seq"]


CASES = {
    # name: (edit of the line list, line whose problem is expected, expected message)
    "deleted at start": (lambda ls: ls[1:], 1, "{s2} where {s1} was expected: a line missing"),
    "deleted in middle": (
        lambda ls: ls[:2] + ls[3:],
        3,
        "{s4} where {s3} was expected: a line missing",
    ),
    "deleted at end": (lambda ls: ls[:-1], None, None),
    "inserted at start": (
        lambda ls: [_forged_line(ls, 0), *ls],
        2,
        "{s1} where {s2} was expected: a line repeated",
    ),
    "inserted in middle": (
        lambda ls: [*ls[:2], _forged_line(ls, 2), *ls[2:]],
        4,
        "{s3} where {s4} was expected: a line repeated",
    ),
    "inserted at end": (
        lambda ls: [*ls, _forged_line(ls, len(ls) - 1)],
        "last+1",
        "{slast} where {slast1} was expected: a line repeated",
    ),
    "duplicated at start": (
        lambda ls: [ls[0], *ls],
        2,
        "{s1} where {s2} was expected: a line repeated",
    ),
    "duplicated in middle": (
        lambda ls: [*ls[:3], ls[2], *ls[3:]],
        4,
        "{s3} where {s4} was expected: a line repeated",
    ),
    "duplicated at end": (
        lambda ls: [*ls, ls[-1]],
        "last+1",
        "{slast} where {slast1} was expected: a line repeated",
    ),
    "swapped at start": (
        lambda ls: [ls[1], ls[0], *ls[2:]],
        1,
        "{s2} where {s1} was expected: a line missing or out of order",
    ),
    "swapped in middle": (
        lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]],
        4,
        "{s3} where {s5} was expected: a line repeated or out of order",
    ),
    "swapped at end": (
        lambda ls: [*ls[:-2], ls[-1], ls[-2]],
        "last",
        "{slast_1} where {slast1} was expected: a line repeated or out of order",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_line_deleted_inserted_duplicated_or_swapped_is_caught(bag, keys, case):
    edit, line, message = CASES[case]
    target = middle_file(bag)
    original = target.read_bytes().splitlines()
    seqs = {f"s{n}": orjson.loads(original[n - 1])["seq"] for n in range(1, 6)}
    seqs |= {
        "slast": orjson.loads(original[-1])["seq"],
        "slast_1": orjson.loads(original[-2])["seq"],
        "slast1": orjson.loads(original[-1])["seq"] + 1,
    }
    _edit_lines(target, edit)
    count = len(target.read_bytes().splitlines())

    problems = _verify(bag, keys)

    name = _relative(bag, target)
    assert f"{name}: its SHA-256 does not match manifest-sha256.txt (changed)" in problems
    assert any(p.startswith(f"{bag.name}/bag-info.txt: Merkle-Root is ") for p in problems)
    assert sha256sum_check(bag, layout.MANIFEST).returncode != 0
    if case == "deleted at end":
        following = record_files(bag)[record_files(bag).index(target) + 1]
        expected = f"seq {seqs['slast1']} where {seqs['slast']} was expected: a line missing"
        expected += " or out of order"
        assert f"{_relative(bag, following)}:1: {expected}" in problems
        return
    number = {"last": count, "last+1": count}.get(line, line)
    assert f"{name}:{number}: seq {message.format(**seqs)}" in " | ".join(problems)


def test_crlf_line_ends_are_caught(bag, keys):
    target = middle_file(bag)
    lines = target.read_bytes().splitlines()
    target.write_bytes(b"".join(line + b"\r\n" for line in lines))

    problems = _verify(bag, keys)

    assert len(problems) == 1
    assert problems[0].startswith(
        f"{_relative(bag, target)}: its line ends were changed to CRLF in transit"
    )
    assert sha256sum_check(bag, layout.MANIFEST).returncode != 0


def test_crlf_line_ends_of_an_edited_file_are_named_with_the_change(bag, keys):
    target = middle_file(bag)
    lines = target.read_bytes().replace(b'"from":"user', b'"from":"usex', 1).splitlines()
    target.write_bytes(b"".join(line + b"\r\n" for line in lines))

    problems = _verify(bag, keys)

    assert (
        f"{_relative(bag, target)}:1: CRLF line end; archived lines end in LF only "
        f"(and {len(lines) - 1} more lines)" in problems
    )
    assert (
        f"{_relative(bag, target)}: its SHA-256 does not match manifest-sha256.txt (changed)"
        in problems
    )


def test_a_payload_file_deleted(bag, keys):
    target = sorted((bag / layout.ATTACHMENTS).iterdir())[0]
    target.unlink()

    problems = _verify(bag, keys)

    assert (
        f"{_relative(bag, target)}: missing, though manifest-sha256.txt lists it "
        "(deleted or renamed?)" in problems
    )
    assert any("which is not stored" in p for p in problems)
    assert sha256sum_check(bag, layout.MANIFEST).returncode != 0


def test_a_payload_file_added_is_caught_though_sha256sum_cannot_see_it(bag, keys):
    (bag / "data" / "records" / "2026110199.jsonl").write_bytes(b"")
    (bag / "data" / "notes.txt").write_text("nothing to see\n")

    problems = _verify(bag, keys)

    for added in ("data/records/2026110199.jsonl", "data/notes.txt"):
        assert (
            f"{bag.name}/{added}: not listed in manifest-sha256.txt (added or renamed?)" in problems
        )
    assert sha256sum_check(bag, layout.MANIFEST).returncode == 0


def test_a_payload_file_renamed(bag, keys):
    (bag / layout.FINDINGS).rename(bag / "data" / "findings-old.jsonl")

    problems = _verify(bag, keys)

    assert (
        f"{bag.name}/data/findings.jsonl: missing, though manifest-sha256.txt lists it "
        "(deleted or renamed?)" in problems
    )
    assert (
        f"{bag.name}/data/findings-old.jsonl: not listed in manifest-sha256.txt "
        "(added or renamed?)" in problems
    )


def test_an_extra_file_in_the_bag_root(bag, keys):
    (bag / "README.txt").write_text("trust me\n")

    problems = _verify(bag, keys)

    assert problems == [
        f"{bag.name}/README.txt: extra file in the bag root: no manifest or signature covers it"
    ]


def _forge_record(bag) -> None:
    target = middle_file(bag)
    lines = target.read_bytes().splitlines(keepends=True)
    value = orjson.loads(lines[1])
    value["record"]["payload"]["bodies"] = [{"type": "txt", "msg": "I never said that"}]
    lines[1] = canonical(value) + b"\n"
    target.write_bytes(b"".join(lines))


def test_manifests_recomputed_after_an_edit_fail_only_on_the_signatures(bag, keys):
    _forge_record(bag)
    recompute_manifests(bag)

    problems = _verify(bag, keys)

    assert problems == [
        f"{bag.name}/tagmanifest-sha256.txt.sig: the Ed25519 signature of "
        f"tagmanifest-sha256.txt does not verify with the given key {keys[0].fingerprint}",
        f"{bag.name}/tagmanifest-sha256.txt.sshsig: the SSH signature does not verify with the "
        "given key",
    ]
    assert sha256sum_check(bag, layout.TAGMANIFEST).returncode == 0
    assert sha256sum_check(bag, layout.MANIFEST).returncode == 0
    assert openssl_verify(bag, keys[0].public_key).returncode != 0
    assert ssh_verify(bag, keys[0].allowed_signers).returncode != 0


def test_a_bag_re_signed_with_another_key_shipped_inside_it_fails(bag, keys, tmp_path):
    forger = Ed25519PrivateKey.generate()
    shipped = bag / "data" / "auditor-signing-key.pub.pem"
    shipped.write_bytes(public_pem(forger.public_key()))
    _forge_record(bag)
    info = (bag / layout.BAG_INFO).read_text()
    (bag / layout.BAG_INFO).write_text(
        info.replace(keys[0].fingerprint, fingerprint(forger.public_key()))
    )
    recompute_manifests(bag)
    signatures = sign(forger, (bag / layout.TAGMANIFEST).read_bytes(), layout.DEFAULT_NAMESPACE)
    (bag / layout.SIGNATURE).write_bytes(signatures.raw)
    (bag / layout.SSH_SIGNATURE).write_text(signatures.ssh)

    problems = _verify(bag, keys)

    assert problems == [
        f"{bag.name}/tagmanifest-sha256.txt.sig: the Ed25519 signature of "
        f"tagmanifest-sha256.txt does not verify with the given key {keys[0].fingerprint}",
        f"{bag.name}/tagmanifest-sha256.txt.sshsig: signed by another key "
        f"({fingerprint(forger.public_key())}), not the given key {keys[0].fingerprint}",
        f"{bag.name}/bag-info.txt: Signing-Key-Fingerprint is {fingerprint(forger.public_key())}, "
        f"but the given key is {keys[0].fingerprint}",
    ]
    assert openssl_verify(bag, keys[0].public_key).returncode != 0
    assert ssh_verify(bag, keys[0].allowed_signers).returncode != 0
    assert openssl_verify(bag, shipped).returncode == 0  # why a key inside the bag proves nothing


def test_a_missing_signature_is_caught(bag, keys):
    (bag / layout.SIGNATURE).unlink()
    shutil.copy(bag / layout.SSH_SIGNATURE, bag / "tagmanifest-sha256.txt.sshsig.bak")

    problems = _verify(bag, keys)

    assert f"{bag.name}/tagmanifest-sha256.txt.sig: missing: the bag is not signed" in problems
    assert (
        f"{bag.name}/tagmanifest-sha256.txt.sshsig.bak: extra file in the bag root: no manifest "
        "or signature covers it" in problems
    )
