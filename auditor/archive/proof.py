"""Inclusion proofs: one message out of a bag, with what proves it belongs there.

A proof carries the record's line, its leaf index, the audit path, the tree size and root, and the
signed tag manifest with `bag-info.txt`. Checking it needs only the public key: the signature
covers the tag manifest, which covers bag-info, which names the Merkle root the path must reach.
The salt in the line keeps the sibling hashes from revealing other short messages.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.archive import layout
from auditor.archive.baginfo import parse_bag_info, parse_manifest
from auditor.archive.merkle import (
    InvalidInclusionProofError,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion_proof,
    verify_inclusion,
)
from auditor.archive.problems import Problem
from auditor.archive.verify import check_signatures, parse_record_line
from auditor.errors import InputError
from auditor.fsutil import refuse_inside_bag
from auditor.records import msg_id as record_msg_id

FORMAT = "easemob-auditor-inclusion-proof/1"


def _record_lines(bag: Path) -> Iterator[tuple[str, int, bytes]]:
    """(file, line number, line without newline) of every archived line, in leaf order."""
    for path in sorted((bag / layout.RECORDS).glob("*" + layout.RECORDS_SUFFIX)):
        relative = path.relative_to(bag).as_posix()
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield relative, number, raw.rstrip(b"\n")


def prove(bag: str | Path, msg_id: str) -> dict[str, Any]:
    """The inclusion proof of the first record with `msg_id`; InputError if it is not there."""
    try:
        return _prove(Path(bag), msg_id)
    except OSError as error:
        raise InputError(f"{error.filename}: cannot read ({error.strerror})") from None
    except (orjson.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise InputError(
            f"{bag}: holds a line that is not archived JSON; run `auditor verify`"
        ) from None


def _prove(bag: Path, msg_id: str) -> dict[str, Any]:
    for name in (layout.TAGMANIFEST, layout.BAG_INFO, layout.SIGNATURE):
        if not (bag / name).is_file():
            raise InputError(f"{bag}: not a finished bag ({name} missing)")
    needle = msg_id.encode()
    found: tuple[str, int, bytes, int] | None = None
    occurrences = size = 0
    for file, number, line in _record_lines(bag):
        if needle in line:
            value = orjson.loads(line)
            if record_msg_id(value.get("record") or {}) == msg_id:
                occurrences += 1
                found = found or (file, number, line, size)
        size += 1
    if found is None:
        raise InputError(f"{bag}: no record with msg_id {msg_id}")
    file, number, line, index = found
    path = inclusion_proof((leaf_hash(each) for _f, _n, each in _record_lines(bag)), index, size)
    root = root_from_inclusion_proof(index, size, leaf_hash(line), path).hex()
    bag_info = (bag / layout.BAG_INFO).read_bytes()
    info, _ = parse_bag_info(bag_info, layout.BAG_INFO)
    if info.get(layout.MERKLE_ROOT) != root:
        raise InputError(
            f"{bag}: its lines do not reach the Merkle root in {layout.BAG_INFO}; "
            "run `auditor verify` on it"
        )
    ssh = bag / layout.SSH_SIGNATURE
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
        "tagmanifest": (bag / layout.TAGMANIFEST).read_bytes().decode("utf-8"),
        "signature": base64.b64encode((bag / layout.SIGNATURE).read_bytes()).decode(),
        "ssh_signature": ssh.read_text("utf-8") if ssh.is_file() else None,
        "bag_info": bag_info.decode("utf-8"),
    }


def write_proof(bag: str | Path, msg_id: str, out: str | Path) -> dict[str, Any]:
    refuse_inside_bag(bag, out, "a proof")
    proof = prove(bag, msg_id)
    try:
        Path(out).write_bytes(orjson.dumps(proof, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as error:
        raise InputError(f"{out}: cannot write the proof ({error.strerror})") from None
    return proof


def load_proof(path: str | Path) -> dict[str, Any]:
    try:
        value = orjson.loads(Path(path).read_bytes())
    except OSError as error:
        raise InputError(f"{path}: cannot read the proof ({error.strerror})") from None
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


def verify_proof(proof: dict[str, Any], public_key: Ed25519PublicKey, file: str) -> list[Problem]:
    """Every link from the public key to the line; an empty list when the proof holds."""
    problems = [
        Problem(file, f"field {name!r} is missing or not a {kind.__name__}")
        for name, kind in _FIELDS.items()
        if not isinstance(proof.get(name), kind) or isinstance(proof.get(name), bool)
    ]
    if problems:
        return problems
    tagmanifest = proof["tagmanifest"].encode()
    try:
        raw = base64.b64decode(proof["signature"], validate=True)
    except ValueError:
        raw = b""
    info_text = proof["bag_info"].encode()
    info, _ = parse_bag_info(info_text, layout.BAG_INFO)
    ssh = proof.get("ssh_signature")
    problems += [
        Problem(file, problem.message)
        for problem in check_signatures(
            tagmanifest,
            raw,
            ssh if isinstance(ssh, str) else "",
            public_key,
            info.get(layout.NAMESPACE) or layout.DEFAULT_NAMESPACE,
            "",
        )
    ]
    entries, _ = parse_manifest(tagmanifest, layout.TAGMANIFEST)
    signed = {path: digest for digest, path, _line in entries}
    if signed.get(layout.BAG_INFO) != hashlib.sha256(info_text).hexdigest():
        problems.append(
            Problem(file, f"bag_info is not the {layout.BAG_INFO} the signature covers")
        )
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
    try:
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        verify_inclusion(index, size, leaf_hash(line), path, bytes.fromhex(root))
    except (ValueError, TypeError):
        problems.append(Problem(file, "audit_path and root must be hex SHA-256 hashes"))
    except InvalidInclusionProofError as error:
        problems.append(Problem(file, f"the line is not proved to be in the tree: {error}"))
    return problems
