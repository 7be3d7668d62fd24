"""Shared builders for the archive tests: keys, real bags from the synthetic history, stock tools.

Holds no test itself; the `test_archive_*` modules import it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.archive import layout
from auditor.archive.bag import BagSummary, BagWriter
from auditor.archive.keys import KeyFiles, generate_key_files, load_signing_key
from auditor.archive.merkle import leaf_hash, root_of
from auditor.emulator.dataset import SyntheticHistory
from auditor.findings import Finding
from auditor.partitions import HOUR_MS, Partition

MESSAGES = 240
INFO = {
    "Source-API": "emulator",
    "Window-Since": "2026-11-01T00:00:00Z",
    "Schema-SHA256-body-txt.json": "ab" * 32,
}


def make_keys(folder: Path, identity: str = "auditor@test") -> tuple[KeyFiles, Ed25519PrivateKey]:
    files = generate_key_files(folder, identity)
    return files, load_signing_key(files.private_key)


def build_bag(
    out_root: Path,
    key: Ed25519PrivateKey,
    name: str = "run-000001",
    sequence: int = 1,
    previous: str = layout.ZERO_HASH,
    messages: int = MESSAGES,
    seed: int = 7,
    attachments: bool = True,
    extra_records: list[dict[str, Any]] | None = None,
    info: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> BagSummary:
    """A bag of one synthetic day in 24 hourly partitions, with attachments and findings;
    `info` adds bag-info labels to `INFO`'s, `files` payload files (path under data/: bytes)."""
    history = SyntheticHistory(seed=seed, messages=messages, days=1)
    writer = BagWriter(out_root, name, key, previous, sequence, {**INFO, **(info or {})})
    with writer:
        if not attachments:
            writer.attachments_skipped("--attachments skip")
        for start in range(history.start_ms, history.end_ms, HOUR_MS):
            indices = history.index_range(start, start + HOUR_MS)
            records = [history.record(index) for index in indices]
            if extra_records and start == history.start_ms:
                records += extra_records
            writer.add_partition(Partition(start).label(), records)
            for index in indices if attachments else ():
                truth = history.truth(index)
                for file_uuid in truth.attachments:
                    data, _secret = history.attachment(file_uuid)
                    writer.add_attachment(
                        data, {"msg_id": truth.record.get("msg_id"), "uuid": file_uuid}
                    )
        writer.add_findings(
            [
                Finding(history.msg_id(3), "keyword", "insider", "high", "keyword hit").to_dict(),
                Finding(None, "source", "late", "info", "late records").to_dict(),
            ]
        )
        writer.add_file("report/report.html", b"<!doctype html><title>report</title>\n")
        for relative, data in (files or {}).items():
            writer.add_file(relative, data)
        return writer.finish()


def build_chain(out_root: Path, key: Ed25519PrivateKey, messages: int) -> Path:
    """`out_root` holding two chained runs (`run-000001`, `run-000002`) of `messages` each."""
    first = build_bag(out_root, key, "run-000001", 1, messages=messages)
    build_bag(out_root, key, "run-000002", 2, first.tagmanifest_sha256, messages=messages, seed=2)
    return out_root


def copy_bag(bag: Path, into: Path) -> Path:
    target = into / bag.name
    shutil.copytree(bag, target)
    return target


def record_files(bag: Path) -> list[Path]:
    return sorted((bag / layout.RECORDS).glob("*.jsonl"))


def middle_file(bag: Path, minimum: int = 6) -> Path:
    """A partition file in the middle of the run with at least `minimum` lines."""
    files = [path for path in record_files(bag) if len(path.read_bytes().splitlines()) >= minimum]
    return files[len(files) // 2]


@contextmanager
def signature_checks() -> Iterator[list[str]]:
    """The Ed25519 verifications this thread makes meanwhile (cryptography's `verify`, a C
    call the profiler sees), by the type of key: what a verifier costs, counted, not timed."""
    seen: list[str] = []

    def profile(_frame, event, called) -> None:
        if event == "c_call" and getattr(called, "__name__", "") == "verify":
            seen.append(type(getattr(called, "__self__", None)).__name__)

    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)


def run(command: list[str], cwd: Path, stdin: bytes | None = None, env: dict | None = None):
    return subprocess.run(
        command,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def openssl_verify(bag: Path, public_pem: Path) -> subprocess.CompletedProcess:
    return run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(public_pem),
            "-rawin",
            "-in",
            layout.TAGMANIFEST,
            "-sigfile",
            layout.SIGNATURE,
        ],
        bag,
    )


def ssh_verify(bag: Path, allowed_signers: Path, identity: str = "auditor@test"):
    return run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(allowed_signers),
            "-I",
            identity,
            "-n",
            layout.DEFAULT_NAMESPACE,
            "-s",
            layout.SSH_SIGNATURE,
        ],
        bag,
        stdin=(bag / layout.TAGMANIFEST).read_bytes(),
    )


def sha256sum_check(bag: Path, manifest: str) -> subprocess.CompletedProcess:
    return run(["sha256sum", "-c", manifest], bag)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def recompute_manifests(bag: Path, update_root: bool = True) -> None:
    """What a forger does after editing payload: fresh Merkle root, manifests and Oxum."""
    lines = [line for path in record_files(bag) for line in path.read_bytes().splitlines()]
    info = (bag / layout.BAG_INFO).read_text()
    if update_root:
        root = root_of(leaf_hash(line) for line in lines).hex()
        info = "".join(
            f"{layout.MERKLE_ROOT}: {root}\n" if row.startswith(f"{layout.MERKLE_ROOT}:") else row
            for row in info.splitlines(keepends=True)
        )
    payload = sorted(
        path.relative_to(bag).as_posix() for path in (bag / "data").rglob("*") if path.is_file()
    )
    size = sum((bag / path).stat().st_size for path in payload)
    info = "".join(
        f"{layout.PAYLOAD_OXUM}: {size}.{len(payload)}\n"
        if row.startswith(f"{layout.PAYLOAD_OXUM}:")
        else row
        for row in info.splitlines(keepends=True)
    )
    (bag / layout.BAG_INFO).write_text(info)
    (bag / layout.MANIFEST).write_text(
        "".join(f"{sha256_hex((bag / path).read_bytes())}  {path}\n" for path in payload)
    )
    (bag / layout.TAGMANIFEST).write_text(
        "".join(f"{sha256_hex((bag / path).read_bytes())}  {path}\n" for path in layout.TAG_FILES)
    )


def problem_lines(report) -> list[str]:
    return [str(problem) for problem in report.problems]
