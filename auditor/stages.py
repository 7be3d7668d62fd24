"""The per-partition half of a run: pull one hour, validate, apply policies, prepare archive lines.

This is what a worker process does for each partition, and it writes everything it produces to a
spool folder, so a run killed half way resumes from the partitions already spooled and the
coordinator (`pipeline.py`) reads back identical bytes whatever the number of workers.

Spool of one partition, named by its UTC start and the attempt that wrote it (a token of each
`process`: a worker the cluster gave up on may wake and write the hour again beside the attempt
whose outcome the coordinator took, and must never touch the files that outcome names):
- `<start>/<attempt>.records`: one line a record: a JSON header `[salt, content sha256,
  disposition, winning rule, retain_until ms, [findings], [attachment references], msg_id,
  timestamp ms, message type, chat type, sender]`, a tab, and the record's canonical JSON (which
  never holds a raw tab). Keeping a record's findings and attachments on its line lets the
  coordinator drop all of it together when the record was archived by an earlier run; the last
  five fields (`report.model.RecordFacts`, read from the canonical bytes as the archive keeps
  them) spare the single-threaded coordinator parsing every record again;
- `<start>/<attempt>.findings.jsonl`: findings about the partition rather than one record (data
  that was not a record, msg_ids served with conflicting contents, an hour the source no longer
  holds, spooled with no records);
- `<start>/<attempt>.unreadable`: served data that was not a record, verbatim, one piece a line,
  which the archive keeps as `data/unreadable/<hour>.txt`;
- `attachments/<sha256>`: attachment bytes, shared by all partitions;
- `<start>.done.json`: the attempt, counts (the report's counts of the records among them,
  `report.counts.RecordCounts`) and the digest of the files above, written last; its presence is
  the partition's checkpoint, naming one complete attempt: the first to complete, which a later
  one never replaces (`_claimed`). Every other attempt's files are then removed, and again
  whenever the checkpoint is reused (a resumed run): an attempt abandoned by a worker that was
  killed or given up on stayed on disk until the run ended, an hour's worth each time.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import itertools
import json
import math
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from auditor import crashpoints
from auditor.archive.canonical import CanonicalizationError, canonical_of
from auditor.archive.lines import salter
from auditor.collector import fewer_collections
from auditor.errors import AuditorError, ConfigError, RetriesExhausted, SourceError
from auditor.findings import Finding
from auditor.fsutil import fsync_dir, sync_files
from auditor.partitions import Partition, format_instant
from auditor.policies.display import without_surrogates
from auditor.policies.engine import PolicyEngine
from auditor.policies.loading import load_policy
from auditor.policies.model import Policy
from auditor.records import bodies, body_type, msg_id
from auditor.report.counts import GatheredCounts, RecordCounts, zone_offset_ms
from auditor.report.facts import RecordFacts, archived_facts
from auditor.sources.interface import (
    HourExpired,
    PartitionNotReady,
    PartitionResult,
    Source,
    Unreadable,
)
from auditor.sources.settings import ConnectionSettings, make_client, make_source
from auditor.sources.settle import content_sha256
from auditor.validation import RecordValidator

ATTACHMENT_TYPES = frozenset({"img", "audio", "video", "file", "combine"})
# Bytes the records spool gathers before a write(2): an hour is a few MB, and at the default
# 8 KiB the system calls took half the cost of writing its lines.
SPOOL_BUFFER = 1 << 20
# Records of an hour settled on disk (`settle.SpilledRecords`) read back at a time: their
# attachments are fetched together, and their facts counted together.
SPILLED_BATCH = 5_000
PACE_FILE = "hour-file-pace"
# Attachment downloads in a row that may fail through every retry before a worker stops the run:
# each costs its whole retry schedule (half a minute by default, minutes when the server does not
# answer), so a file server that is down would otherwise hold the run for hours.
FAILED_DOWNLOADS_IN_A_ROW = 10


@dataclass(frozen=True, slots=True)
class StageSettings:
    """What a worker needs to rebuild its stages; picklable, holds the salt key but no token."""

    source: ConnectionSettings
    policy_path: str
    profile: str
    reference_ms: int
    salt_key: bytes = field(repr=False)
    spool_dir: str
    fetch_attachments: bool
    # The hours earlier runs of the chain fetched, as disjoint sorted [since, until) spans: one
    # the source refuses now is not lost to the archive (`fetched_before`).
    fetched_before: tuple[tuple[int, int], ...] = ()
    # The SHA-256 of the policy the coordinator loaded, which the bag names ("": not checked).
    policy_sha256: str = ""
    # (archived name, SHA-256) of each term file the coordinator read, which the bag holds.
    term_files_sha256: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PartitionOutcome:
    """Counts and digests of one spooled partition; the spool files hold the data."""

    start_ms: int
    records: int
    findings: int
    duplicates: int
    conflicts: int
    outside: int
    attachments: int
    by_severity: dict[str, int]
    spool_sha256: str
    # `report.counts.RecordCounts.to_json()` of the records spooled
    counts: dict[str, Any]
    # The token in the names of the spool files this outcome describes (`spool_paths`)
    attempt: str


def _as_dict(outcome: PartitionOutcome) -> dict[str, Any]:
    return {name: getattr(outcome, name) for name in outcome.__slots__}


PARTIAL_DOWNLOAD = ".download."
_DOWNLOADS = itertools.count()  # a worker's downloads, each to a partial file of its own


def drop_partial_downloads(spool_dir: Path) -> None:
    """Removes the files a killed run was downloading, or had not yet named, in the attachment
    store: named by process, thread and download, no later run would finish or reuse them, and
    one can be as large as the biggest attachment. Called before any worker starts; the state's
    lock keeps other runs out of this spool."""
    for partial in (spool_dir / "attachments").glob(f"{PARTIAL_DOWNLOAD}*.tmp"):
        partial.unlink(missing_ok=True)


def pace_slots(spool_dir: str | Path) -> Path:
    """The file through which a run's processes share the hour-file pace (`pacing.Pacer`)."""
    return Path(spool_dir) / PACE_FILE


def checkpoint_path(spool_dir: Path, partition: Partition) -> Path:
    return spool_dir / f"{partition.start_ms}.done.json"


def attempts_folder(spool_dir: Path, partition: Partition) -> Path:
    """The folder of every attempt's files at `partition`: an hour's files are found by listing a
    few names, not the whole spool of a long window."""
    return spool_dir / str(partition.start_ms)


def spool_paths(spool_dir: Path, partition: Partition, attempt: str) -> dict[str, Path]:
    """The files one attempt at `partition` writes, and the partition's checkpoint."""
    folder = attempts_folder(spool_dir, partition)
    return {
        "records": folder / f"{attempt}.records",
        "findings": folder / f"{attempt}.findings.jsonl",
        "unreadable": folder / f"{attempt}.unreadable",
        "done": checkpoint_path(spool_dir, partition),
    }


def drop_other_attempts(spool_dir: Path, partition: Partition, kept: str) -> None:
    """Removes the files of every attempt at `partition` but `kept`, the one its checkpoint
    names. The others are abandoned: their workers died or were given up on, and one that still
    writes loses to the checkpoint when it completes (`PartitionProcessor._claimed`), so no
    outcome ever names its files."""
    try:
        entries = list(os.scandir(attempts_folder(spool_dir, partition)))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.partition(".")[0] != kept:
            with suppress(FileNotFoundError):
                os.unlink(entry.path)


def read_outcome(spool_dir: Path, partition: Partition) -> PartitionOutcome | None:
    """The checkpoint of a spooled partition, or None when it is missing or does not match
    (one written before spool files were named by attempt has no `attempt`: redone)."""
    try:
        outcome = PartitionOutcome(**json.loads(checkpoint_path(spool_dir, partition).read_bytes()))
        digest = spool_digest(spool_paths(spool_dir, partition, outcome.attempt))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if digest != outcome.spool_sha256:
        return None
    return outcome


def spool_digest(paths: dict[str, Path]) -> str:
    """SHA-256 over a partition's spool files: what a worker returns and the coordinator checks."""
    digest = hashlib.sha256()
    for name in ("records", "findings", "unreadable"):
        with paths[name].open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def term_file_digests(policy: Policy) -> tuple[tuple[str, str], ...]:
    """What `StageSettings.term_files_sha256` holds for `policy`."""
    return tuple((each.archived, each.sha256) for each in policy.term_files)


def _run_policy(settings: StageSettings) -> Policy:
    """The policy file and its term files, refused when they are not the ones the run began
    with: a worker reads them again, and a file saved meanwhile would judge records by rules or
    terms the bag does not hold."""
    policy = load_policy(settings.policy_path)
    if settings.policy_sha256 and policy.sha256 != settings.policy_sha256:
        raise ConfigError(
            f"{settings.policy_path}: the policy file changed after the run began (its SHA-256 "
            f"is now {policy.sha256[:12]}…, the run's {settings.policy_sha256[:12]}…); the run "
            "stops so that every record of its archive is judged by one policy: run it again"
        )
    if settings.policy_sha256 and term_file_digests(policy) != settings.term_files_sha256:
        began = dict(settings.term_files_sha256)
        changed = next(
            (each for each in policy.term_files if began.get(each.archived) != each.sha256), None
        )
        what = (
            f"the term file {changed.declared!r} of keyword list {changed.list_id} (its SHA-256 "
            f"is now {changed.sha256[:12]}…)"
            if changed is not None
            else "the term files it names"
        )
        raise ConfigError(
            f"{settings.policy_path}: {what} changed after the run began; the run stops so that "
            "every record of its archive is judged by the terms it holds: run it again"
        )
    return policy


class PartitionProcessor:
    """The stages of one worker, built once and applied to many partitions."""

    def __init__(self, settings: StageSettings) -> None:
        self.settings = settings
        self.spool_dir = Path(settings.spool_dir)
        (self.spool_dir / "attachments").mkdir(parents=True, exist_ok=True)
        # Every worker of the run takes its turn for Easemob's hour-file rate through this file.
        self.source: Source = make_source(settings.source, pace_slots(self.spool_dir))
        self.client = make_client(settings.source) if settings.fetch_attachments else None
        # Its threads live as long as the worker: the client keeps one HTTP session per thread.
        self._downloads: ThreadPoolExecutor | None = None
        self._failing = _FailureStreak(FAILED_DOWNLOADS_IN_A_ROW)
        self.validator = RecordValidator(settings.profile)
        self.engine = PolicyEngine(_run_policy(settings), settings.reference_ms)
        # What was built so far (schemas, automata, tables) lives as long as the worker: kept out
        # of the cycle collector's sight, a collection walks only what partitions allocate.
        gc.freeze()

    def close(self, wait: bool = True) -> None:
        """Closes the connections; `wait=False` lets go of download threads (an hour given up:
        one may be stuck) rather than wait for them."""
        if self._downloads is not None:
            self._downloads.shutdown(wait=wait, cancel_futures=not wait)
            self._downloads = None
        self.source.close()
        if self.client is not None:
            self.client.close()

    def process(self, partition: Partition) -> PartitionOutcome:
        with fewer_collections():
            return self._process(partition)

    def _process(self, partition: Partition) -> PartitionOutcome:
        existing = read_outcome(self.spool_dir, partition)
        if existing is not None:
            drop_other_attempts(self.spool_dir, partition, existing.attempt)
            return existing
        partition_findings: list[Finding] = []
        try:
            result = self.source.fetch(partition, self.spool_dir)
        except PartitionNotReady as refused:  # archived as holding nothing; the finding says why
            if fetched_before(self.settings.fetched_before, partition.start_ms):
                finding = _refused_again(partition, refused)
            elif isinstance(refused, HourExpired):
                finding = _expired(partition, refused)
            else:
                raise
            result = PartitionResult(partition, ())
            partition_findings.append(finding)
        try:
            return self._spooled(partition, result, partition_findings)
        finally:
            result.close()

    def _spooled(
        self, partition: Partition, result: PartitionResult, partition_findings: list[Finding]
    ) -> PartitionOutcome:
        """Writes the partition's spool from its settled records, and its checkpoint.

        Its files are this attempt's alone (`spool_paths`), so a late attempt at the same hour,
        by a worker the cluster had given up on, writes beside them rather than over the ones
        whose outcome the coordinator took: it cannot truncate them as the coordinator reads."""
        attempt = uuid.uuid4().hex[:16]
        paths = spool_paths(self.spool_dir, partition, attempt)
        paths["records"].parent.mkdir(exist_ok=True)
        severities: Counter[str] = Counter()
        findings = attachments = 0
        with (
            paths["records"].open("wb", buffering=SPOOL_BUFFER) as records_out,
            paths["findings"].open("wb") as findings_out,
            paths["unreadable"].open("wb") as unreadable_out,
        ):
            label = partition.label(self.source.hour_timezone)

            def unreadable() -> Iterator[Finding]:
                """Each piece's finding as its line is written: an hour of garbage held them
                all (~620 bytes a line)."""
                for line, problem in enumerate(result.unreadable, start=1):
                    unreadable_out.write(problem.raw.replace(b"\n", b" ") + b"\n")
                    yield _unreadable(problem, label, line)

            for finding in itertools.chain(
                partition_findings,
                unreadable(),
                _hour_findings(partition, result, self.source.strays_cause),
            ):
                findings_out.write(orjson.dumps(finding.to_dict()) + b"\n")
                severities[finding.severity] += 1
                findings += 1
            salt_of = salter(self.settings.salt_key)
            check = self.validator.check
            evaluate = self.engine.evaluate
            write = records_out.write
            dumps = orjson.dumps
            # A record's content is its archived bytes, or for a source that adds fields about
            # its own storage, the message without them: what earlier runs are compared with.
            entity_fields = self.source.entity_fields
            reached = crashpoints.reached
            verbatim = len(result.unreadable)
            counted: list[RecordFacts] = []
            count = counted.append
            offset = zone_offset_ms(self.settings.source.tz)
            gathered = (
                RecordCounts.gathering(offset, partition.start_ms)
                if result.spilled is not None
                else None
            )
            for record, sorted_json, references in self._with_attachments(
                result, counted, gathered
            ):
                try:
                    canonical = canonical_of(record, sorted_json)
                except CanonicalizationError as error:
                    verbatim += 1
                    unreadable_out.write(json.dumps(record).encode() + b"\n")
                    # still a message: a hold on its sender and a keyword in it are told
                    judged = [_not_canonical(record, str(error), label, verbatim)]
                    judged += check(record)
                    judged += evaluate(record)[2]
                    for finding in judged:
                        findings_out.write(_finding_line(finding) + b"\n")
                        severities[finding.severity] += 1
                    findings += len(judged)
                    continue
                salt = salt_of(canonical)
                found = check(record)
                retain_until, verdict, policy_findings = evaluate(record)
                found.extend(policy_findings)
                facts = archived_facts(record, canonical)
                count(facts)
                header = [
                    salt,
                    content_sha256(record, canonical, entity_fields),
                    verdict.disposition,
                    verdict.winning_rule,
                    retain_until,
                    [finding.to_dict() for finding in found] if found else [],
                    references,
                    *facts,
                ]
                if verdict.later_hold is not None:  # for the message index only
                    header.append(verdict.later_hold)
                write(dumps(header) + b"\t" + canonical + b"\n")
                if found:
                    for finding in found:
                        severities[finding.severity] += 1
                    findings += len(found)
                attachments += len(references)
                reached("spool.record")
            if gathered is not None:
                gathered.add(counted)
        try:
            digest = spool_digest(paths)
        except FileNotFoundError:  # removed by another attempt that completed the hour first
            if (kept := read_outcome(self.spool_dir, partition)) is None:
                raise
            return kept
        counts = (
            gathered.result()
            if gathered is not None
            else RecordCounts.of(offset, counted, partition.start_ms)
        )
        outcome = PartitionOutcome(
            start_ms=partition.start_ms,
            records=result.count - (verbatim - len(result.unreadable)),
            findings=findings,
            duplicates=result.duplicates,
            conflicts=len(result.conflicts),
            outside=result.outside,
            attachments=attachments,
            by_severity=dict(severities),
            spool_sha256=digest,
            counts=counts.to_json(),
            attempt=attempt,
        )
        claimed = self._claimed(partition, paths, outcome)
        crashpoints.reached("spool.partition")
        return claimed

    def _claimed(
        self, partition: Partition, paths: dict[str, Path], outcome: PartitionOutcome
    ) -> PartitionOutcome:
        """The outcome the hour's checkpoint names once this attempt is complete: this one's,
        checkpointed, unless another attempt completed the hour first (a worker given up on
        that woke, and the one given its hour instead): its checkpoint is never replaced, since
        the coordinator may be archiving the files it names, and this attempt's files go. The
        other attempts' files go once this one is checkpointed."""
        staged = paths["records"].with_name(f"{outcome.attempt}.claim")
        with staged.open("wb") as handle:  # this attempt's alone: no rename needed to be whole
            handle.write(json.dumps(_as_dict(outcome)).encode())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staged, paths["done"])  # unlike a rename, never over another's
        except FileExistsError:
            if (kept := read_outcome(self.spool_dir, partition)) is not None:
                drop_other_attempts(self.spool_dir, partition, kept.attempt)
                return kept
            os.replace(staged, paths["done"])  # it names no complete attempt (a killed run's)
        else:
            staged.unlink()
        fsync_dir(self.spool_dir)
        drop_other_attempts(self.spool_dir, partition, outcome.attempt)
        return outcome

    def _with_attachments(
        self,
        result: PartitionResult,
        counted: list[RecordFacts],
        gathered: GatheredCounts | None,
    ) -> Iterator[tuple[Any, bytes | None, list[dict[str, Any]]]]:
        """Each record of `result` in order, with its `content` and attachment references.

        An hour in memory has its attachments fetched all at once. An hour on disk
        (`result.spilled`) is read back `SPILLED_BATCH` records at a time, each batch's files
        fetched before its records come (each (url, secret) still once an hour), and the facts
        the caller appends to `counted` are counted into `gathered` and dropped after each
        batch, so that nothing is kept a record of the hour."""
        if result.spilled is None:
            records = result.records
            contents = result.content or (None,) * len(records)
            attached = (
                self._fetch_attachments(records)
                if self.client is not None
                else [[]] * len(records)  # one empty list, never added to
            )
            yield from zip(records, contents, attached, strict=True)
            return
        assert gathered is not None
        entries = result.entries()
        fetched: dict[tuple[str, str | None], dict[str, Any]] = {}
        while batch := list(itertools.islice(entries, SPILLED_BATCH)):
            records = tuple(record for record, _content in batch)
            attached = (
                self._fetch_attachments(records, fetched)
                if self.client is not None
                else [[]] * len(records)
            )
            for (record, content), references in zip(batch, attached, strict=True):
                yield record, content, references
            gathered.add(counted)
            counted.clear()

    def _fetch_attachments(
        self,
        records: tuple[Any, ...],
        fetched: dict[tuple[str, str | None], dict[str, Any]] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Each record's attachment references, its files downloaded into the shared
        content-addressed store, `attachment_downloads` at a time: each waits on the network, and
        one after another they made a run with attachments many times slower than one without.
        A reference holds `sha256` and `size`, or `error` for a file the source refused; each
        (url, secret) is downloaded once, also across calls given the same `fetched`."""
        found = [list(_attachment_urls(r)) if isinstance(r, dict) else [] for r in records]
        if fetched is None:
            fetched = {}
        wanted = list(
            dict.fromkeys(
                (url, secret)
                for urls in found
                for *_, url, secret in urls
                if (url, secret) not in fetched
            )
        )
        if wanted:
            if self._downloads is None:
                self._downloads = ThreadPoolExecutor(
                    self.settings.source.attachment_downloads, thread_name_prefix="download"
                )
            downloaded = list(self._downloads.map(self._download, wanted))
            fetched.update(zip(wanted, self._stored(downloaded), strict=True))
        return [
            [
                {
                    "msg_id": msg_id(record),
                    "pointer": f"/payload/bodies/{position}/{key}",
                    "url": url,
                    **fetched[url, secret],
                }
                for key, position, url, secret in urls
            ]
            for record, urls in zip(records, found, strict=True)
        ]

    def _stored(self, downloaded: list[tuple[dict[str, Any], Path | None]]) -> list[dict[str, Any]]:
        """The references of a batch of downloads, their files made durable together and only
        then named by their sha256: an fsync of each file and of the store after each took
        15 ms a file here, most of a run's time with attachments. A crash before the names are
        made leaves only partial files, which the next run drops; a file named is whole."""
        store = self.spool_dir / "attachments"
        partials = [partial for _reference, partial in downloaded if partial is not None]
        if partials:
            sync_files(partials, store)
        for reference, partial in downloaded:
            if partial is not None:
                target = store / reference["sha256"]
                if target.exists():
                    partial.unlink()
                else:
                    os.replace(partial, target)
        if partials:
            fsync_dir(store)
        return [reference for reference, _partial in downloaded]

    def _download(self, wanted: tuple[str, str | None]) -> tuple[dict[str, Any], Path | None]:
        """Streams one file into the store, to a temporary file of its own, hashed as it
        arrives, so that no attachment is ever held whole in memory (a 1 GiB file, times
        `attachment_downloads`): its reference and that file, which `_stored` names. A file the
        source refuses, or one past the client's size cap, becomes a reference with `error`."""
        url, secret = wanted
        self._failing.check()
        store = self.spool_dir / "attachments"
        partial = store / (
            f"{PARTIAL_DOWNLOAD}{os.getpid()}-{threading.get_ident()}-{next(_DOWNLOADS)}.tmp"
        )
        with partial.open("wb") as handle:
            digest = hashlib.sha256()

            def restart() -> Any:
                nonlocal digest
                handle.seek(0)
                handle.truncate()
                digest = hashlib.sha256()

                def write(chunk: bytes) -> None:
                    digest.update(chunk)
                    handle.write(chunk)

                return write

            try:
                size = self.client.stream_attachment(url, secret, restart)
            except AuditorError as error:
                handle.close()
                partial.unlink(missing_ok=True)
                self._failing.count(error)
                return {"error": str(error)}, None
            self._failing.count(None)
        return {"sha256": digest.hexdigest(), "size": size}, partial


class _FailureStreak:
    """Attachment downloads of a worker that failed through every retry, one after another.

    At `limit` of them the file server is taken to be down, and the next download to end, and
    every one after it, raises a SourceError: the run stops with exit 3, the hours finished so
    far are kept, and the hour in progress is redone by the next run, its files with it. A
    file the server refuses (404, a wrong share-secret) is an answer about that file, kept as
    a reference with `error` as before, and ends a streak as a download that worked does.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.last: AuditorError | None = None
        self._lock = threading.Lock()

    def count(self, error: AuditorError | None) -> None:
        with self._lock:
            if isinstance(error, RetriesExhausted):
                self.streak += 1
                self.last = error
            else:
                self.streak = 0
        self.check()

    def check(self) -> None:
        if self.streak >= self.limit:
            raise SourceError(
                f"{self.streak} attachment downloads in a row failed through every retry (the "
                f"last: {self.last}); stopped rather than wait out the retries of every other "
                "file: the hours finished so far are kept, so run again once the file server "
                "answers, or audit without the files (--attachments skip)"
            )


def _attachment_urls(record: dict[str, Any]) -> Iterator[tuple[str, int, str, str | None]]:
    """(url key, body position, url, secret) of each Easemob file a record's bodies point to."""
    for position, body in enumerate(bodies(record)):
        if body_type(body) not in ATTACHMENT_TYPES:
            continue
        for url_key, secret_key in (("url", "secret"), ("thumb", "thumb_secret")):
            url, secret = body.get(url_key), body.get(secret_key)
            if isinstance(url, str) and "/chatfiles/" in url:
                # a secret that is not text cannot be sent: asked without one, the source says so
                yield url_key, position, url, secret if isinstance(secret, str) else None


def _hour_findings(
    partition: Partition, result: PartitionResult, strays_cause: str
) -> list[Finding]:
    """What the hour's settling found of the hour as a whole, after its unreadable pieces."""
    found = [conflicting_content(identity) for identity in result.conflicts]
    if result.outside:
        found.append(_strays(partition, result.outside, result.count, strays_cause))
    if result.files > 1:
        found.append(_files_differ(partition, result.files))
    if result.earlier:
        found.append(_no_longer_served(partition, result.earlier))
    if result.altered:
        found.append(_pull_file_altered(partition, result.altered))
    return found


def _unreadable(problem: Unreadable, label: str, line: int) -> Finding:
    return Finding(
        None,
        "source",
        "unreadable",
        "high",
        f"served data that is not a record ({problem}); kept verbatim as line {line} of "
        f"data/unreadable/{label}.txt",
        details={
            "where": problem.where,
            "error": problem.error,
            "file": f"data/unreadable/{label}.txt",
            "line": line,
        },
    )


def _finding_line(finding: Finding) -> bytes:
    """A finding's JSON; one about a record holding a lone surrogate (a msg_id, a keyword's
    quote) with each as U+FFFD, which orjson and UTF-8 can write: the record itself is kept
    verbatim beside it."""
    try:
        return orjson.dumps(finding.to_dict())
    except orjson.JSONEncodeError:
        text = json.dumps(finding.to_dict(), ensure_ascii=False)
        return orjson.dumps(json.loads(without_surrogates(text)))


def _not_canonical(record: dict[str, Any], error: str, label: str, line: int) -> Finding:
    return Finding(
        msg_id(record),
        "source",
        "not-canonical-json",
        "high",
        f"a record that has no RFC 8785 form ({error}); kept verbatim as line {line} of "
        f"data/unreadable/{label}.txt",
        details={"error": error, "file": f"data/unreadable/{label}.txt", "line": line},
    )


def fetched_before(spans: tuple[tuple[int, int], ...], start_ms: int) -> bool:
    """Whether the hour starting at `start_ms` lies in one of the sorted, disjoint `spans`."""
    at = bisect.bisect_right(spans, (start_ms, math.inf)) - 1
    return at >= 0 and start_ms < spans[at][1]


def _refused_again(partition: Partition, refused: PartitionNotReady) -> Finding:
    """An hour an earlier run archived that the source refuses now: what that run archived
    stays in its bag; only what reached the source since is out of reach."""
    return Finding(
        None,
        "coverage",
        "hour-not-fetched-again",
        "low",
        f"hour {refused.label} ({partition.iso()}) was archived by an earlier run, and the source "
        f"refused it now ({refused.detail}): what that run archived stays in its bag, but records "
        "that reached the source since, and what it may have changed or removed, are not known",
        details={
            "hour": partition.iso(),
            "label": refused.label,
            "answer": refused.detail,
            **({"clocks": refused.clocks} if refused.clocks else {}),
        },
    )


def _expired(partition: Partition, gone: HourExpired) -> Finding:
    judged = format_instant(gone.answered_ms)
    return Finding(
        None,
        "coverage",
        "hour-expired",
        "high",
        f"hour {gone.label} ({partition.iso()}) could no longer be fetched from the source, "
        f"which keeps hour files {gone.kept_for} (retention_days); asked at {judged}, it answered: "
        f"{gone.answer}; the hour's records are lost to this archive unless an export holds them",
        details={
            "hour": partition.iso(),
            "label": gone.label,
            "retention_days": gone.retention_days,
            "judged_at": judged,
            "answer": gone.answer,
            **({"clocks": gone.clocks} if gone.clocks else {}),
        },
    )


# An hour file whose records mostly carry the timestamps of other hours is one named in another
# zone than the source's `hour_timezone` says: the hours of the window that were really wanted
# are then never asked for. A few strays are late records, which are normal.
MOSTLY_STRAYS = 10


def _mostly_strays(count: int, served: int) -> bool:
    return count >= MOSTLY_STRAYS and count * 2 > served


def _strays(partition: Partition, count: int, served: int, cause: str) -> Finding:
    message = (
        f"{count} record(s) served for hour {partition.iso()} carry timestamps of other hours; "
        "kept with this hour, archived once"
    )
    mostly = _mostly_strays(count, served)
    if mostly:
        message += f": {count} of {served}, so {cause}, and hours of the window may be missing"
    return Finding(
        None,
        "source",
        "served-in-another-hour",
        "high" if mostly else "info",
        message,
        details={"hour": partition.iso(), "count": count, "served": served},
    )


def _files_differ(partition: Partition, files: int) -> Finding:
    return Finding(
        None,
        "source",
        "hour-files-differ",
        "medium",
        f"the source served {files} different files for hour {partition.iso()}, with lines that "
        "are not records; every record any of them held is archived, once",
        details={"hour": partition.iso(), "files": files},
    )


def _no_longer_served(partition: Partition, records: int) -> Finding:
    return Finding(
        None,
        "source",
        "hour-records-no-longer-served",
        "medium",
        f"the source no longer served {records} record(s) of hour {partition.iso()} that an "
        "earlier pull got (deleted, recalled or changed since); they are archived from that pull",
        details={"hour": partition.iso(), "records": records},
    )


def _pull_file_altered(partition: Partition, altered: Mapping[str, Any]) -> Finding:
    """The hour's files in a pull's folder are not those its checkpoint describes: what the
    run archived is not what the pull wrote, and the report must say so."""
    said, seen = altered["checkpoint"], altered["found"]
    found = f"found {seen['lines']} line(s), sha256 {seen['sha256']}"
    if said is None:
        described = f"describes no file of the hour, yet {altered['file']} is there"
        why = "the folder was altered after the pull, or the pull was killed before it recorded it"
    else:
        described = (
            f"says {altered['file']} held {said['records']} record(s), sha256 {said['sha256']}"
        )
        if "pieces" in said:
            described += f", and {said['pieces']} unreadable piece(s)"
            found += f", and {seen['pieces']} piece(s)"
        if "pieces_sha256" in said:
            described += f", sha256 {said['pieces_sha256']}"
            found += f", sha256 {seen['pieces_sha256']}"
        why = "the folder was altered after the pull"
    return Finding(
        None,
        "source",
        "pull-file-altered",
        "high",
        f"the pull folder's files for hour {partition.iso()} are not those the pull recorded: "
        f"its checkpoint {described}; {found}; archived as found: {why}",
        details={"hour": partition.iso(), **altered},
    )


def mostly_strays_in_run(count: int, served: int, cause: str) -> Finding | None:
    """The judgement of `_strays` over a whole run: at a few messages an hour no hour file holds
    `MOSTLY_STRAYS` strays, and hours named in another zone passed with info findings only."""
    if not _mostly_strays(count, served):
        return None
    return Finding(
        None,
        "source",
        "served-in-another-hour",
        "high",
        f"{count} of the {served} records this run was served carry timestamps of other hours "
        f"than the one they were served for: {cause}, and hours of the window may be missing",
        details={"count": count, "served": served, "whole_run": True},
    )


def conflicting_content(identity: str) -> Finding:
    """A msg_id served with different contents, within an hour or (found by the run's
    coordinator) in two hours of one run: the run archives every variant alike."""
    return Finding(
        identity,
        "duplicate",
        "conflicting-content",
        "medium",
        f"msg_id {identity} arrived with different contents; every variant is archived",
    )
