"""The bag verifier: everything `auditor verify` checks, against a public key given from outside.

It imports nothing from the writer (sigstore-python's rule), only the names of `layout`, the
canonical form, the Merkle tree and the SSHSIG format, so it can be read and trusted alone. The
bag is read as untrusted input: every problem becomes one `Problem` naming its file and line,
and the checks go on, so one run reports everything that is wrong.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.archive import layout, sshsig
from auditor.archive.baginfo import (
    check_format,
    not_a_manifest_line,
    parse_bag_info,
    parse_manifest,
    parse_manifest_line,
    sequence_of,
)
from auditor.archive.merkle import RootBuilder, leaf_hash
from auditor.archive.problems import Problem
from auditor.archive.publickey import PublicKeys, fingerprint, key_tuple, named
from auditor.archive.record_line import parse_record_line
from auditor.archive.transit import (
    SIGNATURE_SIZE,
    SignatureRepair,
    added_by,
    added_message,
    converted,
    converted_file,
    converted_message,
    kind_of,
    signature_repaired_message,
    signature_repairs,
)
from auditor.archive.untrusted import (
    LINE_LIMIT,
    TAG_FILE_LIMIT,
    UnsafeFile,
    open_regular,
    read_regular,
    shown,
)
from auditor.errors import InputError, os_reason

_MAX_PER_FILE = 20
_MAX_PROBLEMS = 1000
_READ_SIZE = 1 << 20
# Besides `untrusted`'s caps on a tag file and a line: a manifest line is a digest and a path. The
# payload manifest itself is streamed, never capped: a real one can list a million attachments.
_MAX_MANIFEST_LINE = 64 << 10
# Folders the writer makes even when empty; any other folder must hold a listed file.
_WRITER_FOLDERS = (layout.RECORDS, "data/attachments", layout.ATTACHMENTS)


@dataclass(frozen=True, slots=True)
class BagReport:
    """The outcome of verifying one bag; `ok` when `problems` is empty. `signer` is the
    fingerprint of the given key that signed it (None when none did), `previous_signer` that of
    the run given as previous, so a key rotation shows."""

    path: Path
    problems: tuple[Problem, ...]
    sequence: int | None = None
    previous_tagmanifest_sha256: str | None = None
    tagmanifest_sha256: str | None = None
    record_count: int = 0
    merkle_root: str | None = None
    signer: str | None = None
    previous_signer: str | None = None
    hours_lost: str | None = None
    app: str | None = None
    window: tuple[str, str] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def source(self) -> str | None:
        """The app and window its signed bag-info names (`demo-org/demo-app, 2026-11-07T00:00:00Z
        to 2026-11-08T00:00:00Z`), printed with its verdict: a bag of another app, signed by
        the same key, verifies as well as the right one, and only this tells them apart."""
        window = f"{self.window[0]} to {self.window[1]}" if self.window else None
        return ", ".join(part for part in (self.app, window) if part) or None


def check_signatures(
    tagmanifest: bytes,
    raw_signature: bytes | None,
    ssh_signature: str | None,
    public_keys: PublicKeys,
    namespace: str,
    where: str,
    a_file: bool = True,
    raw_signer: Ed25519PublicKey | None = None,
) -> tuple[Ed25519PublicKey | None, list[Problem]]:
    """Both signatures over the tag manifest, with the given keys only: the key that signed
    (None when no given key did) and what is wrong. Both must come from one key. `a_file`: the
    raw signature is the bag's .sig file, which a copy may have treated as text. `raw_signer`:
    the key already seen to verify `raw_signature` over `tagmanifest` (`_repaired_signature`),
    not checked again."""
    keys = key_tuple(public_keys)
    problems: list[Problem] = []
    signer = raw_signer
    if raw_signature is None:
        problems.append(Problem(f"{where}{layout.SIGNATURE}", "missing: the bag is not signed"))
    elif signer is None:
        signer = next((key for key in keys if _signs(key, raw_signature, tagmanifest)), None)
        if signer is None:
            problems.append(
                Problem(
                    f"{where}{layout.SIGNATURE}",
                    f"the Ed25519 signature of {layout.TAGMANIFEST} does not verify with "
                    f"{named(keys)}{_not_a_signature_size(raw_signature) if a_file else ''}",
                )
            )
    if ssh_signature is None:
        problems.append(Problem(f"{where}{layout.SSH_SIGNATURE}", "missing: no SSH signature"))
    else:
        try:
            ssh_signer = sshsig.verify(ssh_signature, tagmanifest, keys, namespace)
        except sshsig.SshSigError as error:
            problems.append(Problem(f"{where}{layout.SSH_SIGNATURE}", str(error)))
        else:
            if signer is not None and fingerprint(ssh_signer) != fingerprint(signer):
                problems.append(
                    Problem(
                        f"{where}{layout.SSH_SIGNATURE}",
                        f"signed by {fingerprint(ssh_signer)}, but {layout.SIGNATURE} by "
                        f"{fingerprint(signer)}: one key signs both",
                    )
                )
            signer = signer or ssh_signer
    return signer, problems


def _not_a_signature_size(raw: bytes) -> str:
    """What a signature of another size than Ed25519's says (a copy that treated it as text and
    lost bytes, as with U+FFFD for what is not UTF-8, which no repair gives back); "" when it
    is 64 bytes, as a forged or another key's signature is."""
    if len(raw) == SIGNATURE_SIZE:
        return ""
    return (
        f" (it is {len(raw):,} bytes, not {SIGNATURE_SIZE}: a copy that treated it as text may "
        "have changed it beyond repair; take a binary copy and verify again)"
    )


def _repaired_signature(
    raw: bytes, tagmanifest: bytes, keys: tuple[Ed25519PublicKey, ...]
) -> tuple[SignatureRepair | None, Ed25519PublicKey | None]:
    """The binary signature as it was before a copy treated it as text, when it does not verify
    as it is and one of `signature_repairs` does (over the tag manifest, or over it with its
    line ends as written, should a copy have converted that too). Ed25519 lets no one but the
    key's holder make bytes that verify, so such a repair is the real signature, never a guess;
    None when it verifies as it is, or no repair verifies.

    Also the key the signature (as it is, or repaired) verifies with over the tag manifest as
    read, for `check_signatures`, which then need not check it again; None when none does so."""
    manifests = dict.fromkeys((tagmanifest, _lf(tagmanifest)))

    def signer(signature: bytes) -> tuple[bool, Ed25519PublicKey | None]:
        for message in manifests:
            for key in keys:
                if _signs(key, signature, message):
                    return True, key if message == tagmanifest else None
        return False, None

    verifies, key = signer(raw)
    if verifies:
        return None, key
    for repair in signature_repairs(raw):
        verifies, key = signer(repair.signature)
        if verifies:
            return repair, key
    return None, None


def _signs(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class _Collector:
    """Problems of one bag: at most `_MAX_PER_FILE` per file so a wrecked file stays readable,
    and at most `_MAX_PROBLEMS` in all, then only counted, so a crafted bag (a manifest listing
    two million missing files) cannot fill the memory or the terminal."""

    def __init__(self, prefix: str) -> None:
        self.prefix = shown(prefix)
        self.problems: list[Problem] = []
        self.per_file: Counter[str] = Counter()
        self.unlisted = 0
        self.skipped: list[str] = []
        self.added: dict[str, list[str]] = {}
        # Signed sizes of files whose line ends a copy converted, for Payload-Oxum.
        self.restored: dict[str, int] = {}

    def add(
        self, relative: str, message: str, line: int | None = None, transit: bool = False
    ) -> None:
        if any(relative.startswith(folder + "/") for folder in self.skipped):
            return
        self.per_file[relative] += 1
        if self.per_file[relative] > _MAX_PER_FILE:
            return
        if len(self.problems) >= _MAX_PROBLEMS:
            self.unlisted += 1
            return
        self.problems.append(Problem(self.prefix + shown(relative), message, line, transit))

    def added_in_transit(self, relative: str, name: str) -> bool:
        """Notes `relative` (whose last part is `name`) when an operating system adds files of
        that name (reported at the end, one line a kind, rather than as a file that nothing
        lists); True when it does."""
        if added_by(name) is None:
            return False
        self.added.setdefault(kind_of(name), []).append(relative)
        return True

    def listed_after_all(self, relative: str) -> bool:
        """Takes back a file `added_in_transit` noted that the manifest lists: it is part of
        the archive, whatever its name, and must never be named as one to delete."""
        name = relative.rsplit("/", 1)[-1]
        paths = self.added.get(kind_of(name), [])
        if relative not in paths:
            return False
        paths.remove(relative)
        if not paths:
            del self.added[kind_of(name)]
        return True

    def converted(self, relative: str, ends: str, signed_size: int, covered_by: str) -> None:
        first = not self.restored
        self.restored[relative] = signed_size
        self.add(relative, converted_message(ends, covered_by, first), transit=True)

    def skip_under(self, folder: str) -> None:
        """Drops problems of files under `folder`, already reported as a whole (a symlink)."""
        self.skipped.append(folder)

    def extend(self, problems: list[Problem]) -> None:
        """Adds problems whose `file` is relative to the bag."""
        for problem in problems:
            self.add(problem.file, problem.message, problem.line)

    def finish(self) -> tuple[Problem, ...]:
        for kind, paths in self.added.items():
            first = sorted(paths)[0]
            what = added_by(first.rsplit("/", 1)[-1]) or kind
            self.add(first, added_message(kind, len(paths), what), transit=True)
        for relative, count in self.per_file.items():
            if count <= _MAX_PER_FILE:
                continue
            if len(self.problems) >= _MAX_PROBLEMS:
                self.unlisted += count - _MAX_PER_FILE
                continue
            self.problems.append(
                Problem(self.prefix + shown(relative), f"{count - _MAX_PER_FILE} more problems")
            )
        if self.unlisted:
            self.problems.append(
                Problem(
                    self.prefix.rstrip("/"),
                    f"{self.unlisted:,} more problems, not listed (the first "
                    f"{_MAX_PROBLEMS:,} are)",
                )
            )
        return tuple(self.problems)


class _RootFiles:
    """The bag's root files, each opened through `open_regular` (never a FIFO, device or
    symlink) and read under a cap; a refused file is reported once, by the first read."""

    def __init__(self, bag: Path, report: _Collector) -> None:
        self.bag = bag
        self.report = report
        self.refused: set[str] = set()
        self.cache: dict[str, bytes | None] = {}

    def read(self, name: str) -> bytes | None:
        """The file's bytes; None when it is missing or was refused (and reported)."""
        if name not in self.cache:
            try:
                self.cache[name] = read_regular(self.bag / name, TAG_FILE_LIMIT)
            except FileNotFoundError:
                self.cache[name] = None
            except UnsafeFile as error:
                self._refuse(name, error)
                self.cache[name] = None
        return self.cache[name]

    def open(self, name: str) -> BinaryIO | None:
        """The file opened for streaming (the payload manifest has no small cap)."""
        try:
            return open_regular(self.bag / name)
        except FileNotFoundError:
            return None
        except UnsafeFile as error:
            self._refuse(name, error)
            return None

    def sha256(self, name: str) -> str | None:
        if name != layout.MANIFEST:
            data = self.read(name)
            return None if data is None else hashlib.sha256(data).hexdigest()
        handle = self.open(name)
        if handle is None:
            return None
        with handle:
            return _sha256_of(handle)

    def missing(self, name: str) -> bool:
        """Absent, as opposed to refused: the caller reports it."""
        return name not in self.refused

    def _refuse(self, name: str, error: UnsafeFile) -> None:
        if name not in self.refused:
            self.refused.add(name)
            self.report.add(name, str(error))


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _name(bag: Path) -> str:
    """The bag's folder name, also when it was given as `.` or `..`."""
    return bag.name or bag.resolve().name


def _sha256_of(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_READ_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    with open_regular(path) as handle:
        return _sha256_of(handle)


def _lines(
    handle: BinaryIO, limit: int, digest: Any = None, leaves: bool = False
) -> Iterator[tuple[int, bytes | None, bool, bytes | None]]:
    """`(number, line, ended, leaf)` for each line of `handle`, read one at a time.

    `line` is without its newline, or None when longer than `limit` bytes: such a line is read
    in pieces and never held whole, so a 1 GB line (a sparse file) costs no memory. `ended` says
    whether it ended in a newline; `digest` (a hashlib object) sees every byte read; `leaf` is
    the line's RFC 6962 leaf hash when `leaves`, computed for a too-long line too.
    """
    number = 0
    while raw := handle.readline(limit + 1):
        number += 1
        if digest is not None:
            digest.update(raw)
        ended = raw.endswith(b"\n")
        if ended or len(raw) <= limit:
            line = raw[:-1] if ended else raw
            yield number, line, ended, leaf_hash(line) if leaves else None
            continue
        long_leaf = hashlib.sha256(b"\x00" + raw)  # `leaf_hash`, a piece at a time
        while piece := handle.readline(_READ_SIZE):
            if digest is not None:
                digest.update(piece)
            ended = piece.endswith(b"\n")
            long_leaf.update(piece[:-1] if ended else piece)
            if ended:
                break
        yield number, None, ended, long_leaf.digest() if leaves else None


def _too_long(limit: int) -> str:
    return f"a line longer than {limit:,} bytes, which no archived line reaches"


def _holds_bag_files(path: Path) -> bool:
    return any(os.path.lexists(path / name) for name in (layout.BAGIT_TXT, layout.TAGMANIFEST))


def _is_folder(path: Path) -> bool:
    """A real folder, not a symlink to one."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _payload_files(bag: Path, report: _Collector) -> tuple[dict[str, int], list[str]]:
    """Every regular file under data/ (relative path -> size) and every folder; anything else is
    a problem. Symlinked folders are reported and never followed."""
    found: dict[str, int] = {}
    folders: list[str] = []
    for folder, directories, files in os.walk(bag / layout.DATA):
        base = Path(folder)
        added = {
            name
            for name in directories
            if report.added_in_transit((base / name).relative_to(bag).as_posix(), name)
        }
        directories[:] = [name for name in directories if name not in added]
        for name in directories:
            relative = (base / name).relative_to(bag).as_posix()
            if (base / name).is_symlink():
                report.add(relative, "is a symbolic link; the files it points to were not checked")
                report.skip_under(relative)
            else:
                folders.append(relative)
        for name in files:
            path = base / name
            relative = path.relative_to(bag).as_posix()
            if report.added_in_transit(relative, name):
                continue
            status = path.lstat()
            if not stat.S_ISREG(status.st_mode):
                report.add(relative, "is not a regular file")
                continue
            found[relative] = status.st_size
    return found, folders


def verify_bag(
    bag: str | Path, public_keys: PublicKeys, previous: str | Path | None = None
) -> BagReport:
    """Checks one bag completely; `previous` is the run this one must link to. Each of the two
    bags may be signed by any of `public_keys` (one key, or every key across rotations).

    Raises InputError (exit 2) when `bag` is not a folder holding a bag at all, or a file in
    it cannot be read (permissions, I/O error).
    """
    try:
        return _verify_bag(Path(bag), key_tuple(public_keys), previous)
    except OSError as error:
        name = shown(error.filename)
        raise InputError(f"{name}: cannot read ({os_reason(error)})") from None
    except UnsafeFile as error:
        raise InputError(
            f"{shown(bag)}: a file was replaced while being verified ({error})"
        ) from None


def _verify_bag(
    bag: Path, keys: tuple[Ed25519PublicKey, ...], previous: str | Path | None
) -> BagReport:
    if not bag.is_dir():
        raise InputError(f"{shown(bag)}: no such bag folder")
    if not _holds_bag_files(bag):
        inner = [entry for entry in sorted(bag.iterdir()) if _is_folder(entry)]
        bags = [entry for entry in inner if _holds_bag_files(entry)]
        hint = f"; it holds one, {shown(bags[0])}: verify that folder" if len(bags) == 1 else ""
        raise InputError(
            f"{shown(bag)}: not a bag (no {layout.BAGIT_TXT}, no {layout.TAGMANIFEST}){hint}"
        )
    report = _Collector(f"{_name(bag)}/")
    tags = _RootFiles(bag, report)

    tagmanifest = tags.read(layout.TAGMANIFEST)
    bag_info_data = tags.read(layout.BAG_INFO)
    # Read as the writer wrote it (LF), so a copy's CRLF shows as one problem of the file
    # (`_check_tag_manifest`) rather than as a CR at the end of every value.
    info, info_problems = parse_bag_info(_lf(bag_info_data or b""), layout.BAG_INFO)
    report.extend(info_problems)
    namespace = info.get(layout.NAMESPACE) or layout.DEFAULT_NAMESPACE
    raw = tags.read(layout.SIGNATURE)
    ssh = tags.read(layout.SSH_SIGNATURE)

    if tagmanifest is None:
        if tags.missing(layout.TAGMANIFEST):
            report.add(layout.TAGMANIFEST, "missing: nothing in the bag can be trusted")
        tag_sha256 = signer = None
    else:
        repair, raw_signer = (
            _repaired_signature(raw, tagmanifest, keys) if raw is not None else (None, None)
        )
        if repair is not None:
            raw = repair.signature
            message = signature_repaired_message(repair, layout.SIGNATURE, layout.TAGMANIFEST)
            report.add(layout.SIGNATURE, message, transit=True)
        ssh_text = ssh.decode("utf-8", "replace") if ssh is not None else None
        signer, signatures = check_signatures(
            tagmanifest, raw, ssh_text, keys, namespace, "", raw_signer=raw_signer
        )
        lf_ssh = ssh_text.replace("\r\n", "\n") if ssh_text is not None else None
        if signatures and (b"\r\n" in tagmanifest or lf_ssh != ssh_text):
            lf_signer, lf_problems = check_signatures(
                _lf(tagmanifest), raw, lf_ssh, keys, namespace, ""
            )
            if not lf_problems:
                if lf_ssh != ssh_text:  # ssh-keygen refuses it as it is: "missing header"
                    accepted = "ssh-keygen -Y verify accepts"
                    report.converted(layout.SSH_SIGNATURE, "CRLF", 0, accepted)
                if _lf(tagmanifest) != tagmanifest:
                    report.converted(layout.TAGMANIFEST, "CRLF", 0, "the signatures cover")
                tagmanifest, signer, signatures = _lf(tagmanifest), lf_signer, []
        tag_sha256 = hashlib.sha256(tagmanifest).hexdigest()
        report.extend([problem for problem in signatures if problem.file not in tags.refused])
        _check_tag_manifest(tagmanifest, tags, report)
    if not report.problems:
        # The format label is believed once the signature and the tag manifest cover it: a
        # label raised by hand is a change to a signed file, not a reason to check nothing.
        check_format(info, shown(bag))
    bagit = tags.read(layout.BAGIT_TXT)
    if bagit is not None and _lf(bagit) != layout.BAGIT_TXT_CONTENT:
        report.add(layout.BAGIT_TXT, "is not the BagIt 1.0 declaration the auditor writes")
    payload = _check_root(bag, report)

    sizes, folders = _payload_files(bag, report) if payload else ({}, [])
    manifest = tags.open(layout.MANIFEST)
    if manifest is None:
        if tags.missing(layout.MANIFEST):
            report.add(layout.MANIFEST, "missing")
        listed: dict[str, str] = {}
    else:
        with manifest:
            listed = _check_manifest(bag, manifest, sizes, report, payload)
        _check_folders(folders, sizes, listed, report)
        _check_policy_copy(listed, info, report)
    if payload:
        records = _check_records(bag, sizes, listed, report)
        attachments = _check_attachments(bag, sizes, report)
        findings = _count_lines(bag, layout.FINDINGS, sizes, report)
        if layout.VERIFY_TXT not in sizes:
            report.add(layout.VERIFY_TXT, "missing")
    else:
        records, attachments, findings = (0, RootBuilder().root().hex()), (0, 0), 0
    if bag_info_data is None:
        if tags.missing(layout.BAG_INFO):
            report.add(layout.BAG_INFO, "missing")
    else:
        counted = payload and not report.skipped
        signed_by = (signer,) if signer is not None else keys
        _check_bag_info(info, sizes, records, attachments, findings, signed_by, report, counted)
    previous_signer = None
    if previous is not None:
        previous_signer = _check_link(info, Path(previous), keys, report)
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
        signer=fingerprint(signer) if signer is not None else None,
        previous_signer=previous_signer,
        hours_lost=info.get(layout.HOURS_LOST),
        app="/".join(shown(info[label]) for label in _APP_LABELS if label in info) or None,
        window=_window(info),
    )


_APP_LABELS = ("Source-Organization", "Source-Application")


def _window(info: dict[str, str]) -> tuple[str, str] | None:
    since, until = info.get("Window-Since"), info.get("Window-Until")
    return (shown(since), shown(until)) if since and until else None


def _check_policy_copy(listed: dict[str, str], info: dict[str, str], report: _Collector) -> None:
    """The policy file the bag holds must be the one its bag-info names: the page explains the
    verdicts by it. (Its bytes are checked against the manifest like any payload file.)"""
    named = info.get("Policy-SHA256")
    copy = listed.get(layout.POLICY)
    if named and copy and copy != named:
        report.add(layout.POLICY, f"is not the policy file Policy-SHA256 names ({named})")
    _check_term_files(listed, info, report)


def _check_term_files(listed: dict[str, str], info: dict[str, str], report: _Collector) -> None:
    """Each term file bag-info names (`Policy-Term-File-N: <sha256>  data/policy/...`) must be
    in the manifest with that digest, and the manifest must list no file under data/policy/
    that bag-info does not name: the report's terms come from exactly those files."""
    named: set[str] = set()
    for label, value in info.items():
        if not label.startswith(layout.POLICY_TERM_FILE):
            continue
        entry = parse_manifest_line(value)
        if entry is None or not entry[1].startswith(layout.POLICY_FOLDER + "/"):
            report.add(layout.BAG_INFO, f"{label} is not '<sha256>  {layout.POLICY_FOLDER}/...'")
            continue
        digest, path = entry
        named.add(path)
        if path not in listed:
            report.add(path, f"missing, though {label} names it")
        elif listed[path] != digest:
            report.add(path, f"is not the term file {label} names ({digest})")
    for path in sorted(listed):
        if path.startswith(layout.POLICY_FOLDER + "/") and path not in named:
            report.add(path, f"no {layout.POLICY_TERM_FILE}N label of {layout.BAG_INFO} names it")


def _check_tag_manifest(tagmanifest: bytes, tags: _RootFiles, report: _Collector) -> None:
    entries, problems = parse_manifest(tagmanifest, layout.TAGMANIFEST)
    report.extend(problems)
    listed = {path for _digest, path, _line in entries}
    for digest, path, number in entries:
        if path not in layout.TAG_FILES:
            report.add(layout.TAGMANIFEST, f"lists {path!r}, which is not a tag file", number)
            continue
        actual = tags.sha256(path)
        if actual is None:
            if tags.missing(path):
                report.add(path, f"missing, though {layout.TAGMANIFEST} lists it")
        elif actual != digest:
            ends = _converted_tag_file(tags, path, digest)
            if ends is not None:
                report.converted(path, *ends, covered_by=f"{layout.TAGMANIFEST} lists")
            else:
                report.add(path, f"its SHA-256 does not match {layout.TAGMANIFEST} (changed)")
    for path in layout.TAG_FILES:
        if path not in listed and os.path.lexists(tags.bag / path):
            report.add(path, f"not listed in {layout.TAGMANIFEST}, so not covered by the signature")


def _converted_tag_file(tags: _RootFiles, path: str, digest: str) -> tuple[str, int] | None:
    """How a copy changed a tag file's line ends, if that is all it changed."""
    if path == layout.MANIFEST:
        return converted_file(tags.bag / path, digest)
    data = tags.read(path) or b""
    ends = converted(data, digest)
    return None if ends is None else (ends, 0)


def _check_root(bag: Path, report: _Collector) -> bool:
    """Extra entries in the bag root; True when `data` is a real folder whose files to check.

    The root files themselves are judged when they are read (`_RootFiles`)."""
    for entry in sorted(bag.iterdir()):
        if entry.name in layout.ROOT_FILES or report.added_in_transit(entry.name, entry.name):
            continue
        if entry.name == layout.DATA:
            if not _is_folder(entry):
                kind = "a symbolic link" if entry.is_symlink() else "not a folder"
                report.add(
                    layout.DATA, f"is {kind}, not the bag's payload folder: its files were not read"
                )
            continue
        report.add(entry.name, "extra file in the bag root: no manifest or signature covers it")
    if not os.path.lexists(bag / layout.DATA):
        report.add(layout.DATA, "missing: the bag has no payload folder")
        return True
    return _is_folder(bag / layout.DATA)


def _check_manifest(
    bag: Path, handle: BinaryIO, sizes: dict[str, int], report: _Collector, payload: bool
) -> dict[str, str]:
    """Streams the payload manifest (a real one can list millions of attachments) and hashes
    every listed file except record files (hashed while their lines are read)."""
    listed: dict[str, str] = {}
    last_ended = True
    for number, raw, ended, _leaf in _lines(handle, _MAX_MANIFEST_LINE):
        last_ended = ended
        if raw is None:
            report.add(layout.MANIFEST, _too_long(_MAX_MANIFEST_LINE), number)
            continue
        try:
            line = raw.removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError:
            report.add(layout.MANIFEST, "not UTF-8 text", number)
            continue
        entry = parse_manifest_line(line)
        if entry is None:
            report.add(layout.MANIFEST, not_a_manifest_line(line), number)
            continue
        digest, path = entry
        if path in listed:
            report.add(layout.MANIFEST, f"{path} is listed more than once", number)
            continue
        if not layout.PAYLOAD_PATH.fullmatch(path):
            report.add(
                layout.MANIFEST, f"lists {path!r}, which is not a plain path under data/", number
            )
            continue
        listed[path] = digest
        if not payload:
            continue
        if path not in sizes and report.listed_after_all(path):
            status = (bag / path).lstat()
            if stat.S_ISREG(status.st_mode):
                sizes[path] = status.st_size
            else:
                report.add(path, "is not a regular file")
        if path not in sizes:
            report.add(path, f"missing, though {layout.MANIFEST} lists it (deleted or renamed?)")
            continue
        if _is_record_file(path):
            continue
        actual = _sha256_file(bag / path)
        if actual != digest:
            _changed(bag, path, digest, report)
        if (
            path.startswith(layout.ATTACHMENTS + "/")
            and actual != path.rsplit("/", 1)[1]
            and path not in report.restored
        ):
            report.add(path, "the attachment's bytes do not hash to its name (changed)")
    if not last_ended:
        report.add(layout.MANIFEST, "the last line has no newline")
    for path in sorted(set(sizes) - set(listed)):
        report.add(path, f"not listed in {layout.MANIFEST} (added or renamed?)")
    return listed


def _changed(bag: Path, path: str, digest: str, report: _Collector) -> None:
    """A payload file that does not hash to its manifest line: converted in transit, or changed."""
    ends = converted_file(bag / path, digest)
    if ends is not None:
        report.converted(path, *ends, covered_by=f"{layout.MANIFEST} lists")
    else:
        report.add(path, f"its SHA-256 does not match {layout.MANIFEST} (changed)")


def _check_folders(
    folders: list[str], sizes: dict[str, int], listed: dict[str, str], report: _Collector
) -> None:
    """Folders the writer did not make: an empty folder's name can carry data, and one named like
    a records file breaks `prove` and `report`, yet no manifest line covers either."""
    holding = set(_WRITER_FOLDERS)
    for path in listed:
        if path in sizes:
            parts = path.split("/")
            holding.update("/".join(parts[:end]) for end in range(2, len(parts)))
    for folder in sorted(set(folders) - holding):
        report.add(folder, f"a folder that holds no file listed in {layout.MANIFEST} (added?)")


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
        with open_regular(bag / relative) as handle:
            for number, line, ended, leaf in _lines(handle, LINE_LIMIT, digest, leaves=True):
                assert leaf is not None
                if not ended:
                    report.add(relative, "the last line has no newline", number)
                if line is None:
                    tree.add(leaf)
                    report.add(relative, _too_long(LINE_LIMIT), number)
                    expected += 1
                    continue
                if line.endswith(b"\r"):
                    crlf_count += 1
                    crlf_first = crlf_first or number
                    line = line[:-1]
                    leaf = leaf_hash(line)
                tree.add(leaf)
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
        if relative in listed and digest.hexdigest() != listed[relative]:
            ends = converted_file(bag / relative, listed[relative]) if crlf_count else None
            if ends is not None:
                report.converted(relative, *ends, covered_by=f"{layout.MANIFEST} lists")
                continue
            report.add(relative, f"its SHA-256 does not match {layout.MANIFEST} (changed)")
        if crlf_count:
            more = f" (and {crlf_count - 1} more lines)" if crlf_count > 1 else ""
            report.add(relative, f"CRLF line end; archived lines end in LF only{more}", crlf_first)
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
    if layout.ATTACHMENT_INDEX not in sizes:
        if not os.path.lexists(bag / layout.ATTACHMENT_INDEX):
            report.add(layout.ATTACHMENT_INDEX, "missing")
        return 0, len(stored)
    unchecked = any(
        (layout.ATTACHMENTS + "/").startswith(folder + "/") for folder in report.skipped
    )
    with open_regular(bag / layout.ATTACHMENT_INDEX) as handle:
        for number, line, _ended, _leaf in _lines(handle, LINE_LIMIT):
            entries += 1
            if line is None:
                report.add(layout.ATTACHMENT_INDEX, _too_long(LINE_LIMIT), number)
                continue
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
            if unchecked:
                continue
            if digest not in stored:
                report.add(
                    layout.ATTACHMENT_INDEX, f"refers to {digest}, which is not stored", number
                )
            elif entry.get("size") != report.restored.get(
                f"{layout.ATTACHMENTS}/{digest}", sizes[f"{layout.ATTACHMENTS}/{digest}"]
            ):
                report.add(layout.ATTACHMENT_INDEX, f"size of {digest} does not match", number)
    for digest in sorted(stored - referenced):
        report.add(f"{layout.ATTACHMENTS}/{digest}", f"not referenced by {layout.ATTACHMENT_INDEX}")
    return entries, len(stored)


def _count_lines(bag: Path, relative: str, sizes: dict[str, int], report: _Collector) -> int:
    if relative not in sizes:
        if not os.path.lexists(bag / relative):
            report.add(relative, "missing")
        return 0
    count = 0
    with open_regular(bag / relative) as handle:
        for count, line, _ended, _leaf in _lines(handle, LINE_LIMIT):
            if line is None:
                report.add(relative, _too_long(LINE_LIMIT), count)
                continue
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                report.add(relative, "not JSON", count)
    return count


def _check_bag_info(
    info: dict[str, str],
    sizes: dict[str, int],
    records: tuple[int, str],
    attachments: tuple[int, int],
    findings: int,
    signed_by: tuple[Ed25519PublicKey, ...],
    report: _Collector,
    counted: bool = True,
) -> None:
    """The labels; and, when `counted` (the payload was all read), the values it must match.
    `signed_by` is the key that signed the bag, or every given key when none did."""
    for label in layout.AUDITOR_LABELS:
        if label not in info:
            report.add(layout.BAG_INFO, f"{label} is missing")
    count, root = records
    partitions = sum(1 for path in sizes if _is_record_file(path))
    signed_size = sum(report.restored.get(path, size) for path, size in sizes.items())
    expected = {
        layout.PAYLOAD_OXUM: f"{signed_size}.{len(sizes)}",
        layout.RECORD_COUNT: str(count),
        layout.TREE_SIZE: str(count),
        layout.MERKLE_ROOT: root,
        layout.PARTITION_COUNT: str(partitions),
        layout.ATTACHMENT_COUNT: str(attachments[0]),
        layout.ATTACHMENT_FILE_COUNT: str(attachments[1]),
        layout.FINDINGS_COUNT: str(findings),
    }
    for label, value in expected.items():
        if counted and label in info and info[label] != value:
            report.add(layout.BAG_INFO, f"{label} is {info[label]}, but the bag holds {value}")
    _check_fingerprint(info.get(layout.FINGERPRINT), signed_by, report)
    if layout.PREVIOUS in info and not layout.HEX64.fullmatch(info[layout.PREVIOUS]):
        report.add(layout.BAG_INFO, f"{layout.PREVIOUS} is not 64 lowercase hex")
    if layout.SEQUENCE in info and sequence_of(info) in (None, 0):
        report.add(layout.BAG_INFO, f"{layout.SEQUENCE} is not a positive integer")
    mode = info.get(layout.ATTACHMENTS_MODE)
    if mode not in (None, "included", "skipped"):
        report.add(layout.BAG_INFO, f"{layout.ATTACHMENTS_MODE} is {mode!r}, not included/skipped")
    if mode == "skipped" and (attachments[0] or attachments[1]):
        report.add(layout.BAG_INFO, "says attachments were skipped, but the bag holds some")


def _check_fingerprint(
    stated: str | None, signed_by: tuple[Ed25519PublicKey, ...], report: _Collector
) -> None:
    """The fingerprint bag-info states against the key that signed, or the keys given."""
    if stated is None or stated in {fingerprint(key) for key in signed_by}:
        return
    if len(signed_by) == 1:
        report.add(
            layout.BAG_INFO,
            f"{layout.FINGERPRINT} is {stated}, but the given key is {fingerprint(signed_by[0])}",
        )
    else:
        report.add(
            layout.BAG_INFO, f"{layout.FINGERPRINT} is {stated}, which is none of the given keys"
        )


def _check_first_link(info: dict[str, str], report: _Collector) -> None:
    sequence, previous = sequence_of(info), info.get(layout.PREVIOUS)
    if sequence == 1 and previous not in (None, layout.ZERO_HASH):
        report.add(layout.BAG_INFO, f"run 1 must have {layout.PREVIOUS} of 64 zeros")
    if sequence is not None and sequence > 1 and previous == layout.ZERO_HASH:
        report.add(layout.BAG_INFO, f"run {sequence} links to no previous run (64 zeros)")


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """What a bag links to in its previous run; `problems` empty, or transit damage only (a
    signature copied as text, whose repaired bytes verify), once its signature holds."""

    sequence: int | None
    tagmanifest_sha256: str | None
    signer: str | None
    problems: list[Problem]


def previous_run(previous: Path, public_keys: PublicKeys) -> PreviousRun:
    """The sequence and tagmanifest SHA-256 of a previous bag, trusted only once signed."""
    where = f"{shown(_name(previous))}/"
    refusals = _Collector(where)
    tags = _RootFiles(previous, refusals)
    tagmanifest = tags.read(layout.TAGMANIFEST)
    bag_info = tags.read(layout.BAG_INFO)
    raw, ssh = tags.read(layout.SIGNATURE), tags.read(layout.SSH_SIGNATURE)
    if refusals.problems:
        return PreviousRun(None, None, None, refusals.problems)
    if tagmanifest is None or bag_info is None:
        problem = Problem(where, "is not a finished bag (no tag manifest or bag-info)")
        return PreviousRun(None, None, None, [problem])
    info, _ = parse_bag_info(bag_info, layout.BAG_INFO)
    keys = key_tuple(public_keys)
    repair, raw_signer = (
        _repaired_signature(raw, tagmanifest, keys) if raw is not None else (None, None)
    )
    raw = repair.signature if repair is not None else raw
    signer, problems = check_signatures(
        tagmanifest,
        raw,
        ssh.decode("utf-8", "replace") if ssh is not None else None,
        public_keys,
        info.get(layout.NAMESPACE) or layout.DEFAULT_NAMESPACE,
        where,
        raw_signer=raw_signer,
    )
    if repair is not None:
        message = signature_repaired_message(repair, layout.SIGNATURE, layout.TAGMANIFEST)
        problems.insert(0, Problem(where + layout.SIGNATURE, message, None, True))
    entries, _ = parse_manifest(tagmanifest, layout.TAGMANIFEST)
    if (hashlib.sha256(bag_info).hexdigest(), layout.BAG_INFO) not in {
        (digest, path) for digest, path, _line in entries
    }:
        problems.append(Problem(where + layout.BAG_INFO, "does not match its signed tag manifest"))
    return PreviousRun(
        sequence_of(info),
        hashlib.sha256(tagmanifest).hexdigest(),
        fingerprint(signer) if signer is not None else None,
        problems,
    )


def _check_link(
    info: dict[str, str],
    previous: Path,
    keys: tuple[Ed25519PublicKey, ...],
    report: _Collector,
) -> str | None:
    """The link to `previous`; returns the fingerprint of the key that signed it."""
    if not previous.is_dir():
        raise InputError(f"{shown(previous)}: no such previous bag folder")
    linked = previous_run(previous, keys)
    sequence, tag_sha256 = linked.sequence, linked.tagmanifest_sha256
    name = shown(_name(previous))
    report.problems.extend(linked.problems)
    if not all(problem.transit for problem in linked.problems):
        return linked.signer
    if info.get(layout.PREVIOUS) != tag_sha256:
        report.add(
            layout.BAG_INFO,
            f"{layout.PREVIOUS} is {info.get(layout.PREVIOUS)}, but {name}'s "
            f"{layout.TAGMANIFEST} hashes to {tag_sha256}: not the previous run",
        )
    own = sequence_of(info)
    if sequence is not None and own != sequence + 1:
        report.add(
            layout.BAG_INFO,
            f"{layout.SEQUENCE} is {own}, but the previous run {name} is number "
            f"{sequence}, so {sequence + 1} was expected",
        )
    return linked.signer
