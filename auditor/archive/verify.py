"""The bag verifier: everything `auditor verify` checks, against a public key given from outside.

It imports nothing from the writer (sigstore-python's rule), only the names of `layout`, the
canonical form, the Merkle tree and the SSHSIG format, so it can be read and trusted alone. The
bag is read as untrusted input: every problem becomes one `Problem` naming its file and line,
and the checks go on, so one run reports everything that is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.archive import layout, sshsig
from auditor.archive.baginfo import parse_bag_info, parse_manifest, sequence_of
from auditor.archive.canonical import CanonicalizationError, canonical
from auditor.archive.merkle import RootBuilder
from auditor.archive.problems import Problem
from auditor.archive.publickey import fingerprint
from auditor.errors import InputError

_MAX_PER_FILE = 20
_READ_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class BagReport:
    """The outcome of verifying one bag; `ok` when `problems` is empty."""

    path: Path
    problems: tuple[Problem, ...]
    sequence: int | None = None
    previous_tagmanifest_sha256: str | None = None
    tagmanifest_sha256: str | None = None
    record_count: int = 0
    merkle_root: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_signatures(
    tagmanifest: bytes,
    raw_signature: bytes | None,
    ssh_signature: str | None,
    public_key: Ed25519PublicKey,
    namespace: str,
    where: str,
) -> list[Problem]:
    """Both signatures over the tag manifest, with the given key only."""
    problems: list[Problem] = []
    name = fingerprint(public_key)
    if raw_signature is None:
        problems.append(Problem(f"{where}{layout.SIGNATURE}", "missing: the bag is not signed"))
    else:
        try:
            public_key.verify(raw_signature, tagmanifest)
        except InvalidSignature:
            problems.append(
                Problem(
                    f"{where}{layout.SIGNATURE}",
                    f"the Ed25519 signature of {layout.TAGMANIFEST} does not verify with the "
                    f"given key {name}",
                )
            )
    if ssh_signature is None:
        problems.append(Problem(f"{where}{layout.SSH_SIGNATURE}", "missing: no SSH signature"))
    else:
        try:
            sshsig.verify(ssh_signature, tagmanifest, public_key, namespace)
        except sshsig.SshSigError as error:
            problems.append(Problem(f"{where}{layout.SSH_SIGNATURE}", str(error)))
    return problems


def parse_record_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The `{record, salt, seq}` object of an archived line, or why it is not one.

    orjson parses first (fast); since it reads integers beyond 64 bits as floats, a line that
    does not re-canonicalise is parsed again with the exact `json` module before it is blamed.
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return None, f"not JSON ({error})"
    if not isinstance(value, dict) or set(value) != {"record", "salt", "seq"}:
        return None, 'not an object with exactly the keys "record", "salt" and "seq"'
    seq, salt = value["seq"], value["salt"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return None, f"seq {seq!r} is not a leaf index"
    if not isinstance(salt, str) or not layout.SALT.fullmatch(salt):
        return None, "salt is not 32 lowercase hex characters"
    if _canonical_or_none(value) != line:
        try:
            exact = json.loads(line, parse_constant=_refuse_constant)
        except ValueError:
            exact = None
        if exact is None or _canonical_or_none(exact) != line:
            return value, "not in RFC 8785 canonical form"
    return value, None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _canonical_or_none(value: Any) -> bytes | None:
    try:
        return canonical(value)
    except (CanonicalizationError, ValueError):
        return None


class _Collector:
    """Problems of one bag, at most `_MAX_PER_FILE` per file so a wrecked file stays readable."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.problems: list[Problem] = []
        self.per_file: Counter[str] = Counter()

    def add(self, relative: str, message: str, line: int | None = None) -> None:
        self.per_file[relative] += 1
        if self.per_file[relative] <= _MAX_PER_FILE:
            self.problems.append(Problem(self.prefix + relative, message, line))

    def extend(self, problems: list[Problem]) -> None:
        """Adds problems whose `file` is relative to the bag."""
        for problem in problems:
            self.add(problem.file, problem.message, problem.line)

    def finish(self) -> tuple[Problem, ...]:
        for relative, count in self.per_file.items():
            if count > _MAX_PER_FILE:
                self.problems.append(
                    Problem(self.prefix + relative, f"{count - _MAX_PER_FILE} more problems")
                )
        return tuple(self.problems)


def _name(bag: Path) -> str:
    """The bag's folder name, also when it was given as `.` or `..`."""
    return bag.name or bag.resolve().name


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _payload_files(bag: Path, report: _Collector) -> dict[str, int]:
    """Every regular file under data/ (relative path -> size); anything else is a problem."""
    found: dict[str, int] = {}
    for folder, directories, files in os.walk(bag / layout.DATA):
        base = Path(folder)
        for name in directories:
            if (base / name).is_symlink():
                report.add((base / name).relative_to(bag).as_posix(), "is a symbolic link")
        for name in files:
            path = base / name
            relative = path.relative_to(bag).as_posix()
            if path.is_symlink() or not path.is_file():
                report.add(relative, "is not a regular file")
                continue
            found[relative] = path.stat().st_size
    return found


def verify_bag(
    bag: str | Path, public_key: Ed25519PublicKey, previous: str | Path | None = None
) -> BagReport:
    """Checks one bag completely; `previous` is the run this one must link to.

    Raises InputError (exit 2) when `bag` is not a folder holding a bag at all, or a file in
    it cannot be read (permissions, I/O error).
    """
    try:
        return _verify_bag(Path(bag), public_key, previous)
    except OSError as error:
        raise InputError(f"{error.filename}: cannot read ({error.strerror})") from None


def _verify_bag(bag: Path, public_key: Ed25519PublicKey, previous: str | Path | None) -> BagReport:
    if not bag.is_dir():
        raise InputError(f"{bag}: no such bag folder")
    if not any((bag / name).exists() for name in (layout.BAGIT_TXT, layout.TAGMANIFEST)):
        raise InputError(f"{bag}: not a bag (no {layout.BAGIT_TXT}, no {layout.TAGMANIFEST})")
    report = _Collector(f"{_name(bag)}/")

    tagmanifest = _read(bag / layout.TAGMANIFEST)
    bag_info_data = _read(bag / layout.BAG_INFO)
    info, info_problems = parse_bag_info(bag_info_data or b"", layout.BAG_INFO)
    report.extend(info_problems)
    namespace = info.get(layout.NAMESPACE) or layout.DEFAULT_NAMESPACE

    if tagmanifest is None:
        report.add(layout.TAGMANIFEST, "missing: nothing in the bag can be trusted")
        tag_sha256 = None
    else:
        tag_sha256 = hashlib.sha256(tagmanifest).hexdigest()
        raw = _read(bag / layout.SIGNATURE)
        ssh = _read(bag / layout.SSH_SIGNATURE)
        report.extend(
            check_signatures(
                tagmanifest,
                raw,
                ssh.decode("utf-8", "replace") if ssh is not None else None,
                public_key,
                namespace,
                "",
            )
        )
        _check_tag_manifest(bag, tagmanifest, report)
    _check_root(bag, report)
    bagit = _read(bag / layout.BAGIT_TXT)
    if bagit is not None and bagit != layout.BAGIT_TXT_CONTENT:
        report.add(layout.BAGIT_TXT, "is not the BagIt 1.0 declaration the auditor writes")

    sizes = _payload_files(bag, report)
    manifest_data = _read(bag / layout.MANIFEST)
    if manifest_data is None:
        report.add(layout.MANIFEST, "missing")
        listed: dict[str, str] = {}
    else:
        listed = _check_manifest(bag, manifest_data, sizes, report)
    records = _check_records(bag, sizes, listed, report)
    attachments = _check_attachments(bag, sizes, report)
    findings = _count_lines(bag / layout.FINDINGS, layout.FINDINGS, report)
    if layout.VERIFY_TXT not in sizes:
        report.add(layout.VERIFY_TXT, "missing")
    if bag_info_data is None:
        report.add(layout.BAG_INFO, "missing")
    else:
        _check_bag_info(info, sizes, records, attachments, findings, public_key, report)
    if previous is not None:
        _check_link(info, Path(previous), public_key, report)
    elif bag_info_data is not None:
        _check_first_link(info, report)
    return BagReport(
        path=bag,
        problems=report.finish(),
        sequence=sequence_of(info),
        previous_tagmanifest_sha256=info.get(layout.PREVIOUS),
        tagmanifest_sha256=tag_sha256,
        record_count=records[0],
        merkle_root=records[1],
    )


def _check_tag_manifest(bag: Path, tagmanifest: bytes, report: _Collector) -> None:
    entries, problems = parse_manifest(tagmanifest, layout.TAGMANIFEST)
    report.extend(problems)
    listed = {path for _digest, path, _line in entries}
    for digest, path, number in entries:
        if path not in layout.TAG_FILES:
            report.add(layout.TAGMANIFEST, f"lists {path!r}, which is not a tag file", number)
            continue
        data = _read(bag / path)
        if data is None:
            report.add(path, f"missing, though {layout.TAGMANIFEST} lists it")
        elif hashlib.sha256(data).hexdigest() != digest:
            report.add(path, f"its SHA-256 does not match {layout.TAGMANIFEST} (changed)")
    for path in layout.TAG_FILES:
        if path not in listed and (bag / path).exists():
            report.add(path, f"not listed in {layout.TAGMANIFEST}, so not covered by the signature")


def _check_root(bag: Path, report: _Collector) -> None:
    for entry in sorted(bag.iterdir()):
        if entry.name == layout.DATA and entry.is_dir() and not entry.is_symlink():
            continue
        if entry.name in layout.ROOT_FILES and entry.is_file() and not entry.is_symlink():
            continue
        report.add(entry.name, "extra file in the bag root: no manifest or signature covers it")
    if not (bag / layout.DATA).is_dir():
        report.add(layout.DATA, "missing: the bag has no payload folder")


def _check_manifest(
    bag: Path, data: bytes, sizes: dict[str, int], report: _Collector
) -> dict[str, str]:
    """Hashes every listed file except record files (hashed while their lines are read)."""
    entries, problems = parse_manifest(data, layout.MANIFEST)
    report.extend(problems)
    listed: dict[str, str] = {}
    for digest, path, number in entries:
        if not layout.PAYLOAD_PATH.fullmatch(path):
            report.add(
                layout.MANIFEST, f"lists {path!r}, which is not a plain path under data/", number
            )
            continue
        listed[path] = digest
        if path not in sizes:
            report.add(path, f"missing, though {layout.MANIFEST} lists it (deleted or renamed?)")
            continue
        if _is_record_file(path):
            continue
        actual = _sha256_file(bag / path)
        if actual != digest:
            report.add(path, f"its SHA-256 does not match {layout.MANIFEST} (changed)")
        if path.startswith(layout.ATTACHMENTS + "/") and actual != path.rsplit("/", 1)[1]:
            report.add(path, "the attachment's bytes do not hash to its name (changed)")
    for path in sorted(set(sizes) - set(listed)):
        report.add(path, f"not listed in {layout.MANIFEST} (added or renamed?)")
    return listed


def _is_record_file(path: str) -> bool:
    return path.startswith(layout.RECORDS + "/") and path.endswith(layout.RECORDS_SUFFIX)


def _check_records(
    bag: Path, sizes: dict[str, int], listed: dict[str, str], report: _Collector
) -> tuple[int, str]:
    """Every line of every partition file in name order: form, seq, hash; returns count and root."""
    tree = RootBuilder()
    expected = 0
    files = sorted(path for path in sizes if path.startswith(layout.RECORDS + "/"))
    for relative in files:
        if not _is_record_file(relative) or "/" in relative[len(layout.RECORDS) + 1 :]:
            report.add(relative, f"unexpected file in {layout.RECORDS}/")
            continue
        digest = hashlib.sha256()
        crlf_first, crlf_count = None, 0
        with (bag / relative).open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                digest.update(raw)
                if raw.endswith(b"\n"):
                    line = raw[:-1]
                else:
                    report.add(relative, "the last line has no newline", number)
                    line = raw
                tree.add(hashlib.sha256(b"\x00" + line).digest())
                if line.endswith(b"\r"):
                    crlf_count += 1
                    crlf_first = crlf_first or number
                    line = line[:-1]
                value, message = parse_record_line(line)
                if message:
                    report.add(relative, message, number)
                if value is None:
                    expected += 1
                    continue
                seq = value["seq"]
                if seq != expected:
                    report.add(relative, _seq_message(seq, expected), number)
                expected = seq + 1 if isinstance(seq, int) else expected + 1
        if crlf_count:
            more = f" (and {crlf_count - 1} more lines)" if crlf_count > 1 else ""
            report.add(relative, f"CRLF line end; archived lines end in LF only{more}", crlf_first)
        if relative in listed and digest.hexdigest() != listed[relative]:
            report.add(relative, f"its SHA-256 does not match {layout.MANIFEST} (changed)")
    return tree.size, tree.root().hex()


def _seq_message(seq: int, expected: int) -> str:
    if seq < expected:
        return f"seq {seq} where {expected} was expected: a line repeated or out of order"
    return f"seq {seq} where {expected} was expected: a line missing or out of order"


def _check_attachments(bag: Path, sizes: dict[str, int], report: _Collector) -> tuple[int, int]:
    """The index against the stored files; returns (index entries, stored files)."""
    stored = {path.rsplit("/", 1)[1] for path in sizes if path.startswith(layout.ATTACHMENTS + "/")}
    for path in sizes:
        if path.startswith("data/attachments/") and not path.startswith(layout.ATTACHMENTS + "/"):
            report.add(path, f"unexpected file outside {layout.ATTACHMENTS}/")
        elif path.startswith(layout.ATTACHMENTS + "/") and not layout.HEX64.fullmatch(
            path.rsplit("/", 1)[1]
        ):
            report.add(path, "an attachment must be named by its SHA-256 (64 lowercase hex)")
    referenced: set[str] = set()
    entries = 0
    path = bag / layout.ATTACHMENT_INDEX
    if not path.is_file():
        report.add(layout.ATTACHMENT_INDEX, "missing")
        return 0, len(stored)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            entries += 1
            line = raw.rstrip(b"\n")
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                report.add(layout.ATTACHMENT_INDEX, "not JSON", number)
                continue
            digest = entry.get("sha256") if isinstance(entry, dict) else None
            if not isinstance(digest, str) or not layout.HEX64.fullmatch(digest):
                report.add(layout.ATTACHMENT_INDEX, "entry without a sha256", number)
                continue
            referenced.add(digest)
            if digest not in stored:
                report.add(
                    layout.ATTACHMENT_INDEX, f"refers to {digest}, which is not stored", number
                )
            elif entry.get("size") != sizes[f"{layout.ATTACHMENTS}/{digest}"]:
                report.add(layout.ATTACHMENT_INDEX, f"size of {digest} does not match", number)
    for digest in sorted(stored - referenced):
        report.add(f"{layout.ATTACHMENTS}/{digest}", f"not referenced by {layout.ATTACHMENT_INDEX}")
    return entries, len(stored)


def _count_lines(path: Path, relative: str, report: _Collector) -> int:
    if not path.is_file():
        report.add(relative, "missing")
        return 0
    count = 0
    with path.open("rb") as handle:
        for count, raw in enumerate(handle, start=1):
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                report.add(relative, "not JSON", count)
    return count


def _check_bag_info(
    info: dict[str, str],
    sizes: dict[str, int],
    records: tuple[int, str],
    attachments: tuple[int, int],
    findings: int,
    public_key: Ed25519PublicKey,
    report: _Collector,
) -> None:
    for label in layout.AUDITOR_LABELS:
        if label not in info:
            report.add(layout.BAG_INFO, f"{label} is missing")
    count, root = records
    partitions = sum(1 for path in sizes if _is_record_file(path))
    expected = {
        layout.PAYLOAD_OXUM: f"{sum(sizes.values())}.{len(sizes)}",
        layout.RECORD_COUNT: str(count),
        layout.TREE_SIZE: str(count),
        layout.MERKLE_ROOT: root,
        layout.PARTITION_COUNT: str(partitions),
        layout.ATTACHMENT_COUNT: str(attachments[0]),
        layout.ATTACHMENT_FILE_COUNT: str(attachments[1]),
        layout.FINDINGS_COUNT: str(findings),
        layout.FINGERPRINT: fingerprint(public_key),
    }
    for label, value in expected.items():
        if label in info and info[label] != value:
            what = "the given key is" if label == layout.FINGERPRINT else "the bag holds"
            report.add(layout.BAG_INFO, f"{label} is {info[label]}, but {what} {value}")
    if layout.PREVIOUS in info and not layout.HEX64.fullmatch(info[layout.PREVIOUS]):
        report.add(layout.BAG_INFO, f"{layout.PREVIOUS} is not 64 lowercase hex")
    if layout.SEQUENCE in info and sequence_of(info) in (None, 0):
        report.add(layout.BAG_INFO, f"{layout.SEQUENCE} is not a positive integer")
    mode = info.get(layout.ATTACHMENTS_MODE)
    if mode not in (None, "included", "skipped"):
        report.add(layout.BAG_INFO, f"{layout.ATTACHMENTS_MODE} is {mode!r}, not included/skipped")
    if mode == "skipped" and (attachments[0] or attachments[1]):
        report.add(layout.BAG_INFO, "says attachments were skipped, but the bag holds some")


def _check_first_link(info: dict[str, str], report: _Collector) -> None:
    sequence, previous = sequence_of(info), info.get(layout.PREVIOUS)
    if sequence == 1 and previous not in (None, layout.ZERO_HASH):
        report.add(layout.BAG_INFO, f"run 1 must have {layout.PREVIOUS} of 64 zeros")
    if sequence is not None and sequence > 1 and previous == layout.ZERO_HASH:
        report.add(layout.BAG_INFO, f"run {sequence} links to no previous run (64 zeros)")


def previous_run(
    previous: Path, public_key: Ed25519PublicKey
) -> tuple[int | None, str | None, list[Problem]]:
    """The sequence and tagmanifest SHA-256 of a previous bag, trusted only once signed."""
    where = f"{_name(previous)}/"
    tagmanifest = _read(previous / layout.TAGMANIFEST)
    bag_info = _read(previous / layout.BAG_INFO)
    if tagmanifest is None or bag_info is None:
        return None, None, [Problem(where, "is not a finished bag (no tag manifest or bag-info)")]
    info, _ = parse_bag_info(bag_info, layout.BAG_INFO)
    ssh = _read(previous / layout.SSH_SIGNATURE)
    problems = check_signatures(
        tagmanifest,
        _read(previous / layout.SIGNATURE),
        ssh.decode("utf-8", "replace") if ssh is not None else None,
        public_key,
        info.get(layout.NAMESPACE) or layout.DEFAULT_NAMESPACE,
        where,
    )
    entries, _ = parse_manifest(tagmanifest, layout.TAGMANIFEST)
    if (hashlib.sha256(bag_info).hexdigest(), layout.BAG_INFO) not in {
        (digest, path) for digest, path, _line in entries
    }:
        problems.append(Problem(where + layout.BAG_INFO, "does not match its signed tag manifest"))
    return sequence_of(info), hashlib.sha256(tagmanifest).hexdigest(), problems


def _check_link(
    info: dict[str, str], previous: Path, public_key: Ed25519PublicKey, report: _Collector
) -> None:
    if not previous.is_dir():
        raise InputError(f"{previous}: no such previous bag folder")
    sequence, tag_sha256, problems = previous_run(previous, public_key)
    if problems:
        report.problems.extend(problems)
        return
    if info.get(layout.PREVIOUS) != tag_sha256:
        report.add(
            layout.BAG_INFO,
            f"{layout.PREVIOUS} is {info.get(layout.PREVIOUS)}, but {_name(previous)}'s "
            f"{layout.TAGMANIFEST} hashes to {tag_sha256}: not the previous run",
        )
    own = sequence_of(info)
    if sequence is not None and own != sequence + 1:
        report.add(
            layout.BAG_INFO,
            f"{layout.SEQUENCE} is {own}, but the previous run {_name(previous)} is number "
            f"{sequence}, so {sequence + 1} was expected",
        )
