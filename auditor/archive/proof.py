"""Inclusion proofs: one message out of a bag, with what proves it belongs there.

A proof carries the record's line, its leaf index, the audit path, the tree size and root, and the
signed tag manifest with `bag-info.txt`. Checking it needs only the public key: the signature
covers the tag manifest, which covers bag-info, which names the Merkle root the path must reach.
The salt in the line keeps the sibling hashes from revealing other short messages.

Only the line, its index, the tree and `bag_info` are covered by the signature; `msg_id`, `bag`,
`file` and `line_number` are conveniences the prover adds, so `verify_proof` checks each against
what is signed and `proved` gives only facts taken from signed bytes. The bag a proof is made from
may be crafted too: its files are opened as `archive.untrusted` says.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.archive import layout
from auditor.archive.baginfo import check_format, parse_bag_info, parse_manifest, sequence_of
from auditor.archive.canonical import CanonicalizationError, canonical
from auditor.archive.merkle import (
    InvalidInclusionProofError,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion_proof,
    verify_inclusion,
)
from auditor.archive.problems import Problem
from auditor.archive.publickey import PublicKeys, fingerprint
from auditor.archive.untrusted import (
    TAG_FILE_LIMIT,
    bag_lines,
    read_bag_file,
    record_files,
    shown,
)
from auditor.archive.verify import check_signatures, parse_record_line
from auditor.errors import InputError, os_reason
from auditor.fsutil import refuse_inside_bag
from auditor.records import msg_id as record_msg_id

FORMAT = "easemob-auditor-inclusion-proof/1"

# Caps on a bag's files: the writer's stay far below each (a tag manifest is under 1 KB, a
# signature 64 bytes, an SSH signature about 300, a bag-info about 2 KB, a line under 64 MiB).
PROOF_LIMIT = 256 << 20


def _record_lines(bag: Path) -> Iterator[tuple[str, int, bytes]]:
    """(file, line number, line without newline) of every archived line, in leaf order."""
    for path in record_files(bag):
        relative = path.relative_to(bag).as_posix()
        for number, raw in enumerate(bag_lines(path), start=1):
            yield relative, number, raw[:-1] if raw.endswith(b"\n") else raw


def prove(bag: str | Path, msg_id: str) -> dict[str, Any]:
    """The inclusion proof of the first record with `msg_id`; InputError if it is not there."""
    try:
        return _prove(Path(bag), msg_id)
    except OSError as error:
        raise InputError(f"{shown(error.filename)}: cannot read ({os_reason(error)})") from None


def _needle(msg_id: str) -> bytes:
    """What a line holding `msg_id` must contain: its JSON (RFC 8785) spelling inside the quotes,
    so that an id with `"`, `\\` or a control character is found as the line escapes it. A
    numeric msg_id in a record is its digits, the same bytes."""
    try:
        return canonical(msg_id)[1:-1]
    except (CanonicalizationError, UnicodeError, ValueError):
        raise InputError(f"msg_id {shown(msg_id)} is not valid text") from None


def _not_a_leaf(bag: Path, msg_id: str) -> str:
    """Why no line proves `msg_id`: a record with no RFC 8785 form (a lone surrogate) is kept
    verbatim in `data/unreadable/`, not as a leaf, which its `not-canonical-json` finding says;
    else the bag holds no such record. The finding is the bag's word, as every finding is."""
    findings = bag / layout.FINDINGS
    if findings.is_file():
        for raw in bag_lines(findings):
            if b"not-canonical-json" not in raw:
                continue
            try:
                finding = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            details = finding.get("details") if isinstance(finding, dict) else None
            if (
                finding.get("rule") == "not-canonical-json"
                and finding.get("msg_id") == msg_id
                and isinstance(details, dict)
            ):
                return (
                    f"msg_id {shown(msg_id)} has no leaf to prove: the bag keeps it verbatim as "
                    f"line {shown(str(details.get('line')))} of {shown(str(details.get('file')))}"
                    ", having no RFC 8785 form (its findings say so); that file's SHA-256 is in "
                    f"{layout.MANIFEST}, which `sha256sum -c {layout.MANIFEST}` checks"
                )
    return f"no record with msg_id {shown(msg_id)}"


def _prove(bag: Path, msg_id: str) -> dict[str, Any]:
    tags = {
        name: read_bag_file(bag / name, TAG_FILE_LIMIT)
        for name in (layout.TAGMANIFEST, layout.BAG_INFO, layout.SIGNATURE, layout.SSH_SIGNATURE)
    }
    for name in (layout.TAGMANIFEST, layout.BAG_INFO, layout.SIGNATURE):
        if tags[name] is None:
            raise InputError(f"{shown(bag)}: not a finished bag ({name} missing)")
    for name in (layout.TAGMANIFEST, layout.BAG_INFO, layout.SSH_SIGNATURE):
        try:
            (tags[name] or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{shown(bag / name)}: is not UTF-8 text") from None
    check_format(parse_bag_info(tags[layout.BAG_INFO] or b"", layout.BAG_INFO)[0], shown(bag))
    needle = _needle(msg_id)
    found: tuple[str, int, bytes, int] | None = None
    occurrences = size = 0
    for file, number, line in _record_lines(bag):
        if needle in line:
            value, _ = parse_record_line(line)
            if value is None:
                raise InputError(
                    f"{shown(bag)}: holds a line that is not archived JSON; run `auditor verify`"
                )
            record = value["record"]
            if isinstance(record, dict) and record_msg_id(record) == msg_id:
                occurrences += 1
                found = found or (file, number, line, size)
        size += 1
    if found is None:
        raise InputError(f"{shown(bag)}: {_not_a_leaf(bag, msg_id)}")
    file, number, line, index = found
    path = inclusion_proof((leaf_hash(each) for _f, _n, each in _record_lines(bag)), index, size)
    root = root_from_inclusion_proof(index, size, leaf_hash(line), path).hex()
    bag_info = tags[layout.BAG_INFO]
    info, _ = parse_bag_info(bag_info, layout.BAG_INFO)
    if info.get(layout.MERKLE_ROOT) != root:
        raise InputError(
            f"{shown(bag)}: its lines do not reach the Merkle root in {layout.BAG_INFO}; "
            "run `auditor verify` on it"
        )
    ssh = tags[layout.SSH_SIGNATURE]
    return {
        "format": FORMAT,
        "bag": bag.name,
        "msg_id": msg_id,
        "occurrences": occurrences,
        "file": file,
        "line_number": number,
        "line": line.decode("utf-8"),
        "leaf_index": index,
        "tree_size": size,
        "root": root,
        "audit_path": [node.hex() for node in path],
        "namespace": info.get(layout.NAMESPACE, layout.DEFAULT_NAMESPACE),
        "tagmanifest": tags[layout.TAGMANIFEST].decode("utf-8"),
        "signature": base64.b64encode(tags[layout.SIGNATURE]).decode(),
        "ssh_signature": ssh.decode("utf-8") if ssh is not None else None,
        "bag_info": bag_info.decode("utf-8"),
    }


def write_proof(bag: str | Path, msg_id: str, out: str | Path) -> dict[str, Any]:
    refuse_inside_bag(bag, out, "a proof")
    proof = prove(bag, msg_id)
    try:
        Path(out).write_bytes(orjson.dumps(proof, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as error:
        raise InputError(f"{out}: cannot write the proof ({os_reason(error)})") from None
    return proof


def load_proof(path: str | Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(PROOF_LIMIT + 1)
        if len(data) > PROOF_LIMIT:
            raise InputError(f"{path}: larger than the {PROOF_LIMIT:,} bytes a proof holds")
        value = orjson.loads(data)
    except OSError as error:
        raise InputError(f"{path}: cannot read the proof ({os_reason(error)})") from None
    except orjson.JSONDecodeError as error:
        raise InputError(f"{path}: not a JSON proof ({error})") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise InputError(f"{path}: not an auditor inclusion proof ({FORMAT})")
    return value


_FIELDS = {
    "line": str,
    "leaf_index": int,
    "tree_size": int,
    "root": str,
    "audit_path": list,
    "tagmanifest": str,
    "signature": str,
    "bag_info": str,
}


# The signed bag-info labels naming the app, which a proof's verdict states: the same key may
# sign the chains of several apps.
_APP_LABELS = ("Source-Organization", "Source-Application")
_RUN_NAME = re.compile(r"run-0*([0-9]{1,18})(?:-|$)")
_RECORD_FILE = re.compile(r"data/records/[A-Za-z0-9_][A-Za-z0-9_.-]*\.jsonl")


def _unsigned_field_problems(
    proof: dict[str, Any], value: dict[str, Any] | None, info: dict[str, str], file: str
) -> list[Problem]:
    """The fields the signature does not cover, each checked against what it does cover: the
    msg_id against the proved line's record, the run a bag name states against the signed
    Run-Sequence, and the file and line number for their shape (no signed byte states them)."""
    problems: list[Problem] = []
    claimed = proof.get("msg_id")
    actual = record_msg_id(value["record"]) if value and isinstance(value["record"], dict) else None
    if (
        value is not None
        and "msg_id" in proof
        and (not isinstance(claimed, str) or claimed != actual)
    ):
        problems.append(
            Problem(
                file,
                f"msg_id {shown(repr(claimed) if not isinstance(claimed, str) else claimed)} "
                f"is not the msg_id of the proved line ({shown(str(actual))})",
            )
        )
    bag = proof.get("bag")
    named = _RUN_NAME.match(bag) if isinstance(bag, str) else None
    if "bag" in proof and (not isinstance(bag, str) or not bag.isprintable() or "/" in bag):
        problems.append(Problem(file, f"bag {shown(repr(bag))} is not a bag's folder name"))
    elif named and int(named.group(1)) != _signed_sequence(info):
        problems.append(
            Problem(
                file,
                f"bag {shown(bag)} names run {int(named.group(1))}, the signed "
                f"{layout.SEQUENCE} is {shown(info.get(layout.SEQUENCE, '(none)'))}",
            )
        )
    record_file = proof.get("file")
    if "file" in proof and not (
        isinstance(record_file, str) and _RECORD_FILE.fullmatch(record_file)
    ):
        problems.append(Problem(file, f"file {shown(repr(record_file))} is not a records file"))
    number = proof.get("line_number")
    if "line_number" in proof and (
        isinstance(number, bool) or not isinstance(number, int) or number < 1
    ):
        problems.append(Problem(file, f"line_number {shown(repr(number))} is not a line number"))
    return problems


def _signed_sequence(info: dict[str, str]) -> int | None:
    """The signed Run-Sequence, None when absent or not a plausible run number."""
    value = info.get(layout.SEQUENCE, "")
    return sequence_of(info) if 0 < len(value) <= 18 and value.isascii() else None


def proved(proof: dict[str, Any], public_keys: PublicKeys) -> dict[str, str]:
    """What a proof that `verify_proof` found holding shows, each taken from signed bytes only:
    the msg_id of the proved line, the run named from its signed Run-Sequence (`run-000002`,
    as the writer names its bag), the app and window of that run, and the fingerprint of the
    given key that signed it, each printable on one line."""
    value, _ = parse_record_line(proof["line"].encode("utf-8"))
    record = value["record"] if value else None
    msg_id = record_msg_id(record) if isinstance(record, dict) else None
    info, _ = parse_bag_info(proof["bag_info"].encode("utf-8"), layout.BAG_INFO)
    signer, _ = _signatures(proof, public_keys, info)
    app = "/".join(shown(info[label]) for label in _APP_LABELS if label in info)
    since, until = info.get("Window-Since"), info.get("Window-Until")
    window = f"{shown(since)} to {shown(until)}" if since and until else ""
    return {
        "signer": fingerprint(signer) if signer is not None else "(none)",
        "source": ", ".join(part for part in (app, window) if part),
        "msg_id": shown(msg_id) if msg_id is not None else "(none)",
        "run": f"run-{sequence:06d}"
        if (sequence := _signed_sequence(info)) is not None
        else "(none)",
    }


def _signatures(
    proof: dict[str, Any], public_keys: PublicKeys, info: dict[str, str]
) -> tuple[Ed25519PublicKey | None, list[Problem]]:
    """`check_signatures` of the proof's tag manifest: the key that signed, and problems."""
    try:
        raw = base64.b64decode(proof["signature"], validate=True)
    except ValueError:
        raw = b""
    ssh = proof.get("ssh_signature")
    return check_signatures(
        proof["tagmanifest"].encode(),
        raw,
        ssh if isinstance(ssh, str) else "",
        public_keys,
        info.get(layout.NAMESPACE) or layout.DEFAULT_NAMESPACE,
        "",
        a_file=False,
    )


def verify_proof(proof: dict[str, Any], public_keys: PublicKeys, file: str) -> list[Problem]:
    """Every link from the public keys to the line (any of them may have signed); an empty list
    when the proof holds."""
    problems = [
        Problem(file, f"field {name!r} is missing or not a {kind.__name__}")
        for name, kind in _FIELDS.items()
        if not isinstance(proof.get(name), kind) or isinstance(proof.get(name), bool)
    ]
    if problems:
        return problems
    tagmanifest = proof["tagmanifest"].encode()
    info_text = proof["bag_info"].encode()
    info, _ = parse_bag_info(info_text, layout.BAG_INFO)
    problems += [
        Problem(file, problem.message) for problem in _signatures(proof, public_keys, info)[1]
    ]
    entries, _ = parse_manifest(tagmanifest, layout.TAGMANIFEST)
    signed = {path: digest for digest, path, _line in entries}
    if signed.get(layout.BAG_INFO) != hashlib.sha256(info_text).hexdigest():
        problems.append(
            Problem(file, f"bag_info is not the {layout.BAG_INFO} the signature covers")
        )
    if not problems:  # the format label is believed once the signature covers it
        check_format(info, file)
    index, size, root = proof["leaf_index"], proof["tree_size"], proof["root"]
    if info.get(layout.MERKLE_ROOT) != root:
        problems.append(
            Problem(
                file,
                f"root {root} is not the signed {layout.MERKLE_ROOT} "
                f"{info.get(layout.MERKLE_ROOT)}",
            )
        )
    if info.get(layout.TREE_SIZE) != str(size):
        problems.append(
            Problem(
                file,
                f"tree_size {size} is not the signed {layout.TREE_SIZE} "
                f"{info.get(layout.TREE_SIZE)}",
            )
        )
    line = proof["line"].encode("utf-8")
    value, message = parse_record_line(line)
    if message:
        problems.append(Problem(file, f"line: {message}"))
    if value is not None and value["seq"] != index:
        problems.append(Problem(file, f"leaf_index {index} is not the line's seq {value['seq']}"))
    problems += _unsigned_field_problems(proof, value, info, file)
    try:
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        verify_inclusion(index, size, leaf_hash(line), path, bytes.fromhex(root))
    except (ValueError, TypeError):
        problems.append(Problem(file, "audit_path and root must be hex SHA-256 hashes"))
    except InvalidInclusionProofError as error:
        problems.append(Problem(file, f"the line is not proved to be in the tree: {error}"))
    return problems
