"""The bag writer: one signed BagIt bag per run, written streaming and renamed only when complete.

Memory stays flat whatever the run's size: record lines go straight to their partition file,
the Merkle tree keeps one pending hash per level, file hashes are computed while writing, and
manifest lines are appended to `manifest-sha256.txt` as each payload file is closed. The bag is
written as `out_root/.<name>.partial` and renamed to `out_root/<name>` only after it is signed and
synced, so a run killed half way leaves nothing that looks like a finished archive.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor import __version__, crashpoints
from auditor.archive import layout
from auditor.archive.canonical import CanonicalizationError, canonical
from auditor.archive.instructions import verify_text
from auditor.archive.keys import derive_salt_key
from auditor.archive.lines import PreparedRecord, prepare_all
from auditor.archive.merkle import RootBuilder
from auditor.archive.publickey import fingerprint
from auditor.archive.signing import sign
from auditor.archive.untrusted import TAG_FILE_LIMIT, UnsafeFile, read_regular
from auditor.errors import ConfigError, InputError, os_reason
from auditor.fsutil import (
    fsync_ancestors,
    fsync_dir,
    fsync_folders,
    make_folders,
    write_synced,
)

_CHUNK_LINES = 1024


@dataclass(frozen=True, slots=True)
class PartitionWritten:
    """One partition file: where it is, how many lines, which leaf indices, its SHA-256.

    Line `k` of the file (0-based) holds leaf `first_seq + k`; both seqs are None when empty.
    """

    label: str
    path: str
    count: int
    first_seq: int | None
    last_seq: int | None
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class BagSummary:
    """A finished, signed bag and the figures written into its `bag-info.txt`."""

    path: Path
    name: str
    sequence: int
    record_count: int
    tree_size: int
    merkle_root: str
    tagmanifest_sha256: str
    previous_tagmanifest_sha256: str
    partition_count: int
    attachment_count: int
    attachment_file_count: int
    findings_count: int
    payload_bytes: int
    payload_files: int
    fingerprint: str


class _HashedFile:
    """An append-only payload file whose SHA-256 and size are known when it is closed."""

    def __init__(self, path: Path) -> None:
        self.handle: BinaryIO = path.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)

    def write_all(self, data: bytes | Path | Iterable[bytes]) -> None:
        """`data`, the content of a file copied in pieces, or pieces as given, so that memory
        does not grow with it (a findings CSV grows with the run; an attachment may reach the
        client's cap; an hour's unreadable pieces are hashed for its spool's digest as copied)."""
        if isinstance(data, Path):
            with data.open("rb") as source:
                while chunk := source.read(1 << 20):
                    self.write(chunk)
        elif isinstance(data, bytes):
            self.write(data)
        else:
            for chunk in data:
                self.write(chunk)

    def close(self) -> tuple[str, int]:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return self.digest.hexdigest(), self.size


class BagWriter:
    """Writes one run's bag; see the module docstring for the guarantees.

    Call `add_partition` (or `add_partition_lines`) once per partition in ascending label order,
    `add_attachment`/`attachments_skipped`, `add_findings` and `add_file` in any order, then
    `finish`. Used as a context manager, an exception before `finish` removes the partial bag.
    """

    def __init__(
        self,
        out_root: str | Path,
        name: str,
        key: Ed25519PrivateKey,
        previous_tagmanifest_sha256: str,
        sequence: int,
        info: Mapping[str, str],
        namespace: str = layout.DEFAULT_NAMESPACE,
    ) -> None:
        if not layout.LABEL.fullmatch(name) or name.endswith(layout.PARTIAL_SUFFIX):
            raise ConfigError(f"bag name {name!r} must be letters, digits, '_', '.', '-'")
        if not layout.HEX64.fullmatch(previous_tagmanifest_sha256):
            raise ConfigError("the previous run's tagmanifest SHA-256 must be 64 lowercase hex")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
            raise ConfigError(f"run sequence {sequence!r} must be an integer >= 1")
        if not namespace or any(char.isspace() for char in namespace):
            raise ConfigError(f"signature namespace {namespace!r} must be one word")
        self.info = _checked_info(info)
        self.name = name
        self.sequence = sequence
        self.previous = previous_tagmanifest_sha256
        self.namespace = namespace
        self._key = key
        self.salt_key = derive_salt_key(key)
        root = Path(out_root)
        self.final_path = root / name
        self.partial_path = partial_path_for(root, name)
        if self.final_path.exists():
            raise ConfigError(f"{self.final_path}: a bag of that name already exists")
        try:
            if self.partial_path.exists():  # left by a run that was killed: never finished
                shutil.rmtree(self.partial_path)
            self._folders = make_folders(self.partial_path / layout.RECORDS)
            self._folders += make_folders(self.partial_path / layout.ATTACHMENTS)
        except OSError as error:
            raise ConfigError(f"{root}: cannot create the bag ({os_reason(error)})") from None
        self._manifest = (self.partial_path / layout.MANIFEST).open("w", encoding="utf-8")
        self._tree = RootBuilder()
        self._last_label: str | None = None
        self._partitions = 0
        self._payload_bytes = 0
        self._payload_files = 0
        self._attachments: _HashedFile | None = None
        self._attachment_count = 0
        self._attachment_files = 0
        self._skipped: str | None = None
        self._findings: _HashedFile | None = None
        self._findings_count = 0
        self._closed = False

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is not None and not self._closed:
            self.abort()

    @property
    def record_count(self) -> int:
        return self._tree.size

    # -- payload ------------------------------------------------------------------------------

    def add_partition(self, label: str, records: Iterable[Any]) -> PartitionWritten:
        """Writes `data/records/<label>.jsonl` from records already in (timestamp, msg_id) order."""
        return self.add_partition_lines(label, prepare_all(records, self.salt_key))

    def add_partition_lines(
        self, label: str, prepared: Iterable[PreparedRecord | tuple[bytes, str]]
    ) -> PartitionWritten:
        """Like `add_partition` for records a worker already prepared (`lines.prepare`).

        The writer assigns `seq` here, so workers can prepare partitions in any order.
        """
        self._check_open()
        if not layout.LABEL.fullmatch(label):
            raise ValueError(f"partition label {label!r} must be letters, digits, '_', '.', '-'")
        if self._last_label is not None and label <= self._last_label:
            raise ValueError(f"partition {label!r} comes after {self._last_label!r}; add in order")
        self._last_label = label
        relative = f"{layout.RECORDS}/{label}{layout.RECORDS_SUFFIX}"
        output = _HashedFile(self.partial_path / relative)
        first = seq = self._tree.size
        sha256 = hashlib.sha256
        chunk: list[bytes] = []

        def flush() -> None:
            self._tree.extend([sha256(b"\x00" + line).digest() for line in chunk])
            output.write(b"\n".join(chunk) + b"\n")
            chunk.clear()

        try:
            for canonical_record, salt in prepared:
                chunk.append(
                    b'{"record":%b,"salt":"%b","seq":%d}' % (canonical_record, salt.encode(), seq)
                )
                seq += 1
                if len(chunk) >= _CHUNK_LINES:
                    flush()
            if chunk:
                flush()
        except CanonicalizationError as error:
            output.handle.close()
            raise InputError(
                f"partition {label}: record {seq - first + 1} cannot be archived as JSON ({error})"
            ) from None
        except BaseException:
            output.handle.close()
            raise
        digest, size = output.close()
        self._add_to_manifest(relative, digest, size)
        self._partitions += 1
        count = seq - first
        return PartitionWritten(
            label,
            relative,
            count,
            first if count else None,
            seq - 1 if count else None,
            digest,
            size,
        )

    def add_attachment(self, data: bytes | Path, ref: Mapping[str, Any]) -> str:
        """Stores `data` (the content, or a file copied in chunks: an attachment may be as large
        as the client's cap, and memory must not grow with it) once under its SHA-256, and
        indexes it with `ref` (msg_id, url, ...)."""
        self._check_open()
        if self._skipped is not None:
            raise ValueError("attachments were declared skipped for this run")
        if "sha256" in ref or "size" in ref:
            raise ValueError("an attachment ref must not carry its own sha256 or size")
        stored = self.partial_path / layout.ATTACHMENTS
        if (
            isinstance(data, Path)
            and _SHA256.fullmatch(data.name)
            and (stored / data.name).is_file()
        ):
            # A file named by its SHA-256 that this bag already holds: the bag's copy was hashed
            # as it was written, so it is not copied again.
            digest, size = data.name, (stored / data.name).stat().st_size
        else:
            digest, size = self._store_attachment(data, stored)
        if self._attachments is None:
            self._attachments = _HashedFile(self.partial_path / layout.ATTACHMENT_INDEX)
        entry = {**ref, "sha256": digest, "size": size}
        self._attachments.write(canonical(entry) + b"\n")
        self._attachment_count += 1
        return digest

    def _store_attachment(self, data: bytes | Path, stored: Path) -> tuple[str, int]:
        """Writes `data` into `stored` under its SHA-256, unless a file of that hash is there."""
        incoming = stored / ".incoming.tmp"
        output = _HashedFile(incoming)
        output.write_all(data)
        digest, size = output.close()
        relative = f"{layout.ATTACHMENTS}/{digest}"
        if (stored / digest).exists():
            incoming.unlink()
        else:
            incoming.rename(stored / digest)
            self._add_to_manifest(relative, digest, size)
            self._attachment_files += 1
        return digest, size

    def attachments_skipped(self, reason: str) -> None:
        """Records in bag-info that this run left attachments out (`--attachments skip`)."""
        self._check_open()
        if self._attachment_count:
            raise ValueError("attachments were already added to this run")
        self._skipped = " ".join(reason.split()) or "not requested"

    def add_info(self, label: str, value: str) -> None:
        """Adds a bag-info line known only as the run ends (the hours it found lost)."""
        self._check_open()
        self.info.update(_checked_info({label: value}))

    def add_findings(self, findings: Iterable[Mapping[str, Any]]) -> int:
        """Appends findings (dicts, or objects with `to_dict`) to `data/findings.jsonl`."""
        return self.add_finding_lines(
            canonical(finding.to_dict() if hasattr(finding, "to_dict") else dict(finding))
            for finding in findings
        )

    def add_finding_lines(self, lines: Iterable[bytes]) -> int:
        """Appends findings already in their canonical form (`canonical`'s bytes, a line each,
        without its line break) to `data/findings.jsonl`: the caller that has them spares
        writing each again."""
        self._check_open()
        if self._findings is None:
            self._findings = _HashedFile(self.partial_path / layout.FINDINGS)
        written = 0
        for line in lines:
            self._findings.write(line + b"\n")
            written += 1
        self._findings_count += written
        return written

    def add_file(self, relpath: str, data: bytes | Path | Iterable[bytes]) -> str:
        """Adds a file (the report, ...) under `data/`: the content, a file copied in pieces, or
        its pieces; returns its path inside the bag."""
        self._check_open()
        relative = f"{layout.DATA}/{relpath}"
        if not layout.PAYLOAD_PATH.fullmatch(relative) or ".." in relpath.split("/"):
            raise ValueError(f"{relpath!r} is not a plain relative path of letters and digits")
        if any(
            relative == name or relative.startswith(name + "/") for name in layout.RESERVED_PAYLOAD
        ):
            raise ValueError(f"{relative} is reserved for the auditor's own files")
        path = self.partial_path / relative
        if path.exists():
            raise ValueError(f"{relative} was already added")
        self._folders += make_folders(path.parent)
        output = _HashedFile(path)
        output.write_all(data)
        self._add_to_manifest(relative, *output.close())
        return relative

    # -- completion ---------------------------------------------------------------------------

    def merkle_root(self) -> str:
        """The hex root of the records written so far (the empty tree's root before any)."""
        return self._tree.root().hex()

    def finish(self, publish: bool = True) -> BagSummary:
        """Writes VERIFY.txt, bag-info and manifests, signs, syncs, and publishes the bag.

        With `publish=False` the signed bag stays under its partial name and `path` points
        there, so a caller can commit its own state first and then call `publish_bag`.
        """
        self._check_open()
        for relative, output in (
            (layout.ATTACHMENT_INDEX, self._attachments),
            (layout.FINDINGS, self._findings),
        ):
            self._add_to_manifest(
                relative, *(output or _HashedFile(self.partial_path / relative)).close()
            )
        root = self._tree.root().hex()
        key_fingerprint = fingerprint(self._key.public_key())
        instructions = verify_text(
            self.name,
            self.sequence,
            self.previous,
            self.namespace,
            key_fingerprint,
            self._tree.size,
            root,
            self.previous_name(),
            tuple(
                value
                for label, value in self.info.items()
                if label.startswith(layout.POLICY_TERM_FILE)
            ),
        ).encode()
        output = _HashedFile(self.partial_path / layout.VERIFY_TXT)
        output.write(instructions)
        self._add_to_manifest(layout.VERIFY_TXT, *output.close())
        self._manifest.flush()
        os.fsync(self._manifest.fileno())
        self._manifest.close()

        bag_info = self._bag_info(root, key_fingerprint)
        tag_data = {
            layout.BAGIT_TXT: layout.BAGIT_TXT_CONTENT,
            layout.BAG_INFO: bag_info,
        }
        for relative, data in tag_data.items():
            write_synced(self.partial_path / relative, data)
        tagmanifest = "".join(
            f"{_sha256_of(self.partial_path / relative)}  {relative}\n"
            for relative in layout.TAG_FILES
        ).encode()
        write_synced(self.partial_path / layout.TAGMANIFEST, tagmanifest)
        crashpoints.reached("bag.signing")
        signatures = sign(self._key, tagmanifest, self.namespace)
        write_synced(self.partial_path / layout.SIGNATURE, signatures.raw)
        crashpoints.reached("bag.signed-raw")
        write_synced(self.partial_path / layout.SSH_SIGNATURE, signatures.ssh.encode())
        fsync_folders(self._folders)
        fsync_ancestors(self.final_path.parent)
        self._closed = True
        path = publish_bag(self.partial_path, self.final_path) if publish else self.partial_path
        return BagSummary(
            path=path,
            name=self.name,
            sequence=self.sequence,
            record_count=self._tree.size,
            tree_size=self._tree.size,
            merkle_root=root,
            tagmanifest_sha256=hashlib.sha256(tagmanifest).hexdigest(),
            previous_tagmanifest_sha256=self.previous,
            partition_count=self._partitions,
            attachment_count=self._attachment_count,
            attachment_file_count=self._attachment_files,
            findings_count=self._findings_count,
            payload_bytes=self._payload_bytes,
            payload_files=self._payload_files,
            fingerprint=key_fingerprint,
        )

    def abort(self) -> None:
        """Removes the partial bag; nothing of this run remains."""
        self._closed = True
        for output in (self._attachments, self._findings):
            if output is not None and not output.handle.closed:
                output.handle.close()
        if not self._manifest.closed:
            self._manifest.close()
        shutil.rmtree(self.partial_path, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"bag {self.name} is already finished or aborted")

    def previous_name(self) -> str | None:
        """The folder beside this bag holding the run it links to, for VERIFY.txt to name; None
        for a first run or when that run is not there. Runs are named `run-<sequence>-...`, so
        the one numbered before this is tried first and the others only if it does not match."""
        if self.previous == layout.ZERO_HASH:
            return None
        root = self.final_path.parent
        try:
            names = [name for name in os.listdir(root) if not name.startswith(".")]
        except OSError:
            return None
        expected = f"run-{self.sequence - 1:06d}"
        for name in sorted(names, key=lambda name: (not name.startswith(expected), name)):
            try:
                tagmanifest = read_regular(root / name / layout.TAGMANIFEST, TAG_FILE_LIMIT)
            except (OSError, UnsafeFile):
                continue
            if hashlib.sha256(tagmanifest).hexdigest() == self.previous:
                return name
        return None

    def _add_to_manifest(self, relative: str, digest: str, size: int) -> None:
        self._manifest.write(f"{digest}  {relative}\n")
        self._payload_bytes += size
        self._payload_files += 1

    def _bag_info(self, root: str, key_fingerprint: str) -> bytes:
        skipped = {} if self._skipped is None else {layout.ATTACHMENTS_SKIPPED: self._skipped}
        fields = {
            layout.SOFTWARE: f"easemob-auditor {__version__}",
            layout.FORMAT: str(layout.FORMAT_VERSION),
            layout.BAGGING_DATE: datetime.now(UTC).strftime("%Y-%m-%d"),
            layout.PAYLOAD_OXUM: f"{self._payload_bytes}.{self._payload_files}",
            layout.SEQUENCE: str(self.sequence),
            layout.PREVIOUS: self.previous,
            layout.RECORD_COUNT: str(self._tree.size),
            layout.PARTITION_COUNT: str(self._partitions),
            layout.ATTACHMENTS_MODE: "included" if self._skipped is None else "skipped",
            **skipped,
            layout.ATTACHMENT_COUNT: str(self._attachment_count),
            layout.ATTACHMENT_FILE_COUNT: str(self._attachment_files),
            layout.FINDINGS_COUNT: str(self._findings_count),
            layout.TREE_SIZE: str(self._tree.size),
            layout.MERKLE_ROOT: root,
            layout.MERKLE_HASHING: layout.MERKLE_HASHING_TEXT,
            layout.LINE_FORMAT: layout.LINE_FORMAT_TEXT,
            layout.NAMESPACE: self.namespace,
            layout.FINGERPRINT: key_fingerprint,
            **self.info,
        }
        return "".join(f"{label}: {value}\n" for label, value in fields.items()).encode()


def partial_path_for(out_root: str | Path, name: str) -> Path:
    """Where the bag `name` is written before it is published."""
    return Path(out_root) / f"{layout.PARTIAL_PREFIX}{name}{layout.PARTIAL_SUFFIX}"


def publish_bag(partial: str | Path, final: str | Path) -> Path:
    """Renames a finished, signed bag from its partial name to `final`, atomically and synced.

    Publishing twice is harmless: when `partial` is gone and `final` exists, `final` is returned.
    """
    partial, final = Path(partial), Path(final)
    if not partial.exists() and final.is_dir():
        return final
    if final.exists():
        raise ConfigError(f"{final}: a bag of that name already exists; not replacing it")
    if not (partial / layout.SIGNATURE).is_file():
        raise ConfigError(f"{partial}: not a finished, signed bag; not publishing it")
    os.rename(partial, final)
    fsync_dir(final.parent)
    return final


def _checked_info(info: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for label, value in info.items():
        if not layout.INFO_LABEL.fullmatch(label) or label in layout.RESERVED_LABELS:
            raise ConfigError(f"bag-info label {label!r} is reserved or not a plain word")
        text = str(value)
        if "\n" in text or "\r" in text:
            raise ConfigError(f"bag-info value of {label} must be one line")
        checked[label] = text
    return checked


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
