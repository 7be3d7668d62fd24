"""One audit run: partitions through the stages into a signed bag, a report and the state.

1. Lock the state, refuse a state that records fewer runs than its out folder holds bags, fix
   the window, start (or resume) the run in the state database.
2. Process partitions (pull, validate, policies, prepare lines) in parallel into a spool
   (`stages.py`); partitions spooled by a killed run are reused, so nothing is pulled twice.
3. Meanwhile, in partition order, stream each spooled partition into the bag writer as soon as it
   and every partition before it are spooled, while the workers go on with later ones: a message
   archived by an earlier run is not archived again (a finding says so); one whose content
   changed since is archived and reported. Once the last partition is in, findings and the report
   go into the bag, which is then signed.
4. Commit the run and its message index in one transaction, then, if the state database is
   still the file at its path, rename the bag to its final name. A run killed before the commit
   leaves only a `.partial` folder; one killed between the commit and the rename is published by
   the next run.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import logging
import operator
import re
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import orjson

from auditor import __version__, crashpoints, disks, durable, state_verbatim, unrecorded
from auditor.archive import layout
from auditor.archive.bag import BagWriter, partial_path_for, publish_bag
from auditor.archive.baginfo import check_bag_format, parse_bag_info
from auditor.archive.canonical import canonical, canonical_of
from auditor.archive.keys import derive_salt_key, load_signing_key
from auditor.archive.publickey import fingerprint
from auditor.collector import fewer_collections
from auditor.errors import ConfigError, InputError
from auditor.executors import check_workers, make_executor
from auditor.file_access import conform
from auditor.findings import FAIL_ON_LEVELS, SEVERITY_RANK, Finding, fail_threshold
from auditor.hidden_env import secrets_hidden
from auditor.hour_spans import HourSpans
from auditor.partitions import (
    DAY_MS,
    HOUR_MS,
    Partition,
    check_forwards,
    check_window,
    format_instant,
    partitions_between,
)
from auditor.policies.loading import load_policy
from auditor.policies.model import Policy, retention_actions
from auditor.policies.retention import held_later
from auditor.policies.term_files import applied_sha256_in_info, info_labels
from auditor.processes import raise_kept, stops_kept
from auditor.report.counts import RecordCounts
from auditor.report.formats import bag_formats
from auditor.report.model import ReportBuilder
from auditor.report.policy import policy_view
from auditor.report.runinfo import RunInfo
from auditor.sources.settings import ConnectionSettings, find_machine_pace, strays_cause
from auditor.stages import (
    PartitionOutcome,
    StageSettings,
    conflicting_content,
    drop_partial_downloads,
    fetched_before,
    mostly_strays_in_run,
    spool_paths,
    term_file_digests,
)
from auditor.state import (
    RunRecord,
    State,
    StateLock,
    config_digest,
    make_folder_of,
    roll_back,
)
from auditor.state_index import SERVED_ELSEWHERE, RunVerdicts
from auditor.validation import RecordValidator
from auditor.verbatim_kept import Judge, kept_in_spool, place

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything `auditor run` needs; built by the CLI from flags and the config file."""

    source: ConnectionSettings
    policy_path: Path
    key_path: Path
    out_dir: Path
    state_path: Path
    since_ms: int | None = None
    until_ms: int | None = None
    incremental: bool = False
    attachments: str = "fetch"
    fail_on: str = "high"
    workers: int = 1
    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    profile: str = "loose"
    recheck: bool = False
    ready_delay_hours: int = 24
    late_hours: int = 48
    as_of_ms: int | None = None
    namespace: str = "easemob-auditor"
    report_lang: str = "en"
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000), repr=False)

    def __post_init__(self) -> None:
        check_workers(self.workers)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a finished run reports: where its bag is and what it found."""

    sequence: int
    bag_path: Path | None
    since_ms: int
    until_ms: int
    records: int
    skipped_duplicates: int
    findings: int
    by_severity: dict[str, int]
    fail_on: str
    merkle_root: str
    tagmanifest_sha256: str
    attachments: int
    already_done: bool = False
    relooked: int = 0
    lost_hours: int = 0
    policy_changed_from: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], already_done: bool = False) -> RunOutcome:
        """The outcome `to_dict` wrote into the state when the run completed."""
        try:
            return cls._from_dict(data, already_done)
        except (KeyError, TypeError, ValueError):
            raise InputError(
                "state database: the stored outcome of an earlier run is damaged; restore the "
                "state from a backup, or audit into a new one"
            ) from None

    @classmethod
    def _from_dict(cls, data: dict[str, Any], already_done: bool) -> RunOutcome:
        return cls(
            sequence=data["sequence"],
            bag_path=Path(data["bag"]) if data["bag"] else None,
            since_ms=data["since_ms"],
            until_ms=data["until_ms"],
            records=data["records"],
            skipped_duplicates=data["skipped_duplicates"],
            findings=data["findings"],
            by_severity=data["by_severity"],
            fail_on=data["fail_on"],
            merkle_root=data["merkle_root"],
            tagmanifest_sha256=data["tagmanifest_sha256"],
            attachments=data["attachments"],
            already_done=already_done,
            relooked=data.get("relooked", 0),
            lost_hours=data.get("lost_hours", 0),
            policy_changed_from=data.get("policy_changed_from"),
        )

    @property
    def failing(self) -> int:
        floor = fail_threshold(self.fail_on)
        return sum(n for name, n in self.by_severity.items() if SEVERITY_RANK[name] >= floor)

    @property
    def exit_code(self) -> int:
        return 1 if self.failing else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "bag": str(self.bag_path) if self.bag_path else None,
            "report": str(self.bag_path / layout.REPORT / "report.html") if self.bag_path else None,
            "window": {
                "since": format_instant(self.since_ms),
                "until": format_instant(self.until_ms),
            },
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "already_done": self.already_done,
            "records": self.records,
            "skipped_duplicates": self.skipped_duplicates,
            "relooked": self.relooked,
            "lost_hours": self.lost_hours,
            "policy_changed_from": self.policy_changed_from,
            "findings": self.findings,
            "by_severity": self.by_severity,
            "fail_on": self.fail_on,
            "failing": self.failing,
            "merkle_root": self.merkle_root,
            "tagmanifest_sha256": self.tagmanifest_sha256,
            "attachments": self.attachments,
            "exit_code": self.exit_code,
        }


@dataclass
class Progress:
    """Callbacks the CLI uses to show progress; the default does nothing."""

    started: Callable[[int], None] = lambda total: None
    partition_done: Callable[[Partition, PartitionOutcome], None] = lambda p, o: None
    phase: Callable[[str], None] = lambda name: None


def run_audit(settings: RunSettings, progress: Progress | None = None) -> RunOutcome | None:
    """Runs one audit; None when `--incremental` finds no new complete hour to audit.

    A Ctrl-C or SIGTERM stops it wherever it comes, even one whose exception Python only
    printed (its handler ran in a finalizer or an at-fork hook): it is kept and raised again
    (`_Archiver.archive`), before the commit as if raised there, after it once the bag is
    published, since a committed run cannot be taken back: it exits 130 or 143 all the same."""
    progress = progress or Progress()
    if settings.fail_on not in FAIL_ON_LEVELS:
        raise ConfigError(
            f"--fail-on {settings.fail_on!r} is not one of {', '.join(FAIL_ON_LEVELS)}"
        )
    key = load_signing_key(settings.key_path)
    policy = load_policy(settings.policy_path)
    validator = RecordValidator(settings.profile)
    executor = make_executor(settings.executor, settings.workers, **settings.executor_options)
    # Read by now (the key's passphrase, the client secret in `settings`): the workers and
    # every other child get them from the settings, not from the environment.
    with (
        _naming_the_files(settings),
        secrets_hidden([settings.source.client_secret]),
        stops_kept() as stops,
    ):
        outcome = _locked_run(settings, progress, key, policy, validator, executor, stops)
        if stops and outcome is not None and not outcome.already_done:
            log.info(
                "run %d was committed and its bag published before the stop took effect",
                outcome.sequence,
            )
        raise_kept(stops)
        return outcome


def _locked_run(settings, progress, key, policy, validator, executor, stops) -> RunOutcome | None:
    """The run itself, holding the locks of its state database and of its folder of bags.

    The lock is taken before the database is opened: a run holds its database open in SQLite's
    exclusive mode, so a second run that opened it first was refused by SQLite and blamed
    "another program" (an sqlite3 shell) instead of naming the run that holds the lock."""
    make_folder_of(settings.state_path)  # its errors name the state, not its lock file
    with StateLock(settings.state_path), StateLock.of_bag_folder(settings.out_dir):
        _refuse_a_newer_head(settings.out_dir)
        state = State(settings.state_path)
        try:
            _refuse_a_lost_state(state, settings)
            _publish_committed(state, settings.out_dir)
            window = _window(settings, state)
            if window is None:
                return None
            since_ms, until_ms = window
            digest = config_digest(
                {
                    "source": [
                        settings.source.base_url,
                        settings.source.org,
                        settings.source.app,
                        settings.source.api,
                        settings.source.hour_timezone,
                    ],
                    "policy": policy.applied_sha256,
                    "schemas": validator.schema_digests(),
                    "profile": settings.profile,
                    "attachments": settings.attachments,
                    "as_of_ms": settings.as_of_ms,
                    "key": fingerprint(key.public_key()),
                    "recheck": settings.recheck,
                    "fail_on": settings.fail_on,
                    "namespace": settings.namespace,
                }
            )
            done = state.completed_outcome(since_ms, until_ms, digest)
            if done is not None and not settings.recheck:
                return RunOutcome.from_dict(done, already_done=True)
            run = state.begin_run(
                since_ms,
                until_ms,
                digest,
                _relook_plan(settings, since_ms, until_ms),
                settings.now_ms(),
                policy.applied_sha256,
            )
            changed_from = _policy_changed_from(state, settings.out_dir, policy.applied_sha256)
            # Retention and holds are judged when the run began (kept by a resumed run, so its
            # reused hours agree), unless --as-of fixes the instant: the source holds the
            # records now, so a backfill judged as of its window's end hid every over-retention
            # since then and every hold begun since.
            reference_ms = settings.as_of_ms if settings.as_of_ms is not None else run.started_at_ms
            spool_dir = (
                settings.out_dir / layout.SPOOL_FOLDER / f"run-{run.sequence:06d}-{digest[:12]}"
            )
            stage_settings = StageSettings(
                source=settings.source,
                policy_path=str(settings.policy_path),
                profile=settings.profile,
                reference_ms=reference_ms,
                salt_key=derive_salt_key(key),
                spool_dir=str(spool_dir),
                fetch_attachments=settings.attachments == "fetch",
                fetched_before=_fetched_spans(state.runs()),
                policy_sha256=policy.sha256,
                term_files_sha256=term_file_digests(policy),
            )
            partitions = list(partitions_between(*run.relook)) if run.relook else []
            partitions += partitions_between(since_ms, until_ms)
            if run.relook:
                log.info(
                    "fetching %s .. %s again for records that reached the source late",
                    format_instant(run.relook[0]),
                    format_instant(run.relook[1]),
                )
            progress.started(len(partitions))
            archiver = _Archiver(
                settings,
                state,
                run,
                key,
                policy,
                validator,
                spool_dir,
                reference_ms,
                stage_settings.fetched_before,
                changed_from,
            )
            find_machine_pace(settings.source)
            raise_kept(stops)  # one swallowed while the run was planned
            with closing(executor.run(partitions, stage_settings)) as spooled, fewer_collections():
                return archiver.archive(
                    partitions,
                    _checkpointed(spooled, state, run.sequence, progress, partitions),
                    stops,
                )
        finally:
            state.close()


@contextmanager
def _naming_the_files(settings: RunSettings) -> Iterator[None]:
    """Notes which files an error is about where the error does not say: SQLite names no
    database, and a full disk or an I/O error (raised by a write, not an open) names no file."""
    try:
        yield
    except sqlite3.Error as error:
        note = f"state database: {settings.state_path}"
        state_disk = {"the state database": settings.state_path.parent}
        full = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        if full and not disks.refusing(errno.ENOSPC, state_disk):  # SQLite deleted its files
            note += (
                f" (its disk has room; SQLite also writes temporary files in "
                f"{disks.temporary_folder()}: is that disk full?)"
            )
        error.add_note(note)
        raise
    except OSError as error:
        if error.filename is None and error.errno is not None:
            note = disks.note_refusing(error, _run_folders(settings))
            if not note and not _published_into(settings.out_dir):
                note = f"writing the run's bag and spool under {settings.out_dir}"
            if note:  # after publishing, the line says what was done
                error.add_note(note)
        raise


def _published_into(out_dir: Path) -> bool:
    """Whether this command published a bag into `out_dir` (one app's, of several)."""
    return any(
        run.published and run.bag.parent.resolve() == out_dir.resolve() for run in durable.runs()
    )


def _run_folders(settings: RunSettings) -> dict[str, Path]:
    """What a run writes, by where: a write that names no file was to one of these."""
    temporary = disks.temporary_folder()
    return {
        f"the run's bag and spool ({settings.out_dir})": settings.out_dir,
        f"the state database ({settings.state_path})": settings.state_path.parent,
        f"the temporary files of the report and of SQLite ({temporary})": Path(temporary),
    }


_FINISHED_BAG = re.compile(r"run-(\d+)-.+")


def _finished_runs(out_dir: Path) -> dict[int, str]:
    """The published bags in `out_dir`, by run number (a bag is published by renaming its
    hidden `.NAME.partial` folder to `run-NNNNNN-...`)."""
    if not out_dir.is_dir():
        return {}
    found = {}
    for entry in out_dir.iterdir():
        match = _FINISHED_BAG.fullmatch(entry.name)
        if match and entry.is_dir():
            found[int(match[1])] = entry.name
    return found


def _refuse_a_newer_head(out_dir: Path) -> None:
    """Refuses to chain a run onto a bag of a newer format (`check_bag_format`), before the
    state is opened (and upgraded) or a bag begun: this version would read the head's bag-info
    as its own format and link a bag of its format to one it does not understand. The newest
    published bag is the chain's head; a state behind it is refused next anyway, and a head a
    killed run committed but did not publish is checked before it is (`_publish_committed`)."""
    bags = _finished_runs(out_dir)
    if bags:
        check_bag_format(out_dir / bags[max(bags)], "chain a run onto")


def _refuse_a_lost_state(state: State, settings: RunSettings) -> None:
    """Refuses a run whose state database is behind its out folder (emptied, deleted, or
    restored from an old backup): its next run would repeat a run number the folder already
    holds and break the chain legal verifies. A bag is published only after its run is
    committed, so a state that is whole always records every bag in its folder."""
    last = state.last_completed()
    recorded = last.sequence if last else 0
    bags = _finished_runs(settings.out_dir)
    newest = max(bags, default=0)
    if newest <= recorded:
        return
    knows = f"records runs only up to {recorded}" if recorded else "records no completed run"
    raise ConfigError(
        f"{settings.out_dir} holds run {newest} ({bags[newest]}) but the state database "
        f"{settings.state_path} {knows}; restore a backup of the state database taken after run "
        f"{newest} was published; without one, start a new chain, with a new out folder and a new "
        "state database (another out folder alone would continue this chain from the old state "
        "and fork it)"
    )


def _checkpointed(
    spooled: Iterator[tuple[Partition, PartitionOutcome]],
    state: State,
    sequence: int,
    progress: Progress,
    partitions: list[Partition],
) -> Iterator[tuple[Partition, PartitionOutcome]]:
    """The executor's outcomes as they arrive, each checkpointed in the state and reported before
    the coordinator archives it. Phase "archive" starts when the last partition is spooled: from
    then on the coordinator works alone (the last partition, findings, report, signature)."""
    last = partitions[-1]
    for partition, outcome in spooled:
        state.partition_done(sequence, partition.start_ms, outcome.records, outcome.spool_sha256)
        progress.partition_done(partition, outcome)
        if partition == last:
            progress.phase("archive")
        yield partition, outcome


def _policy_changed_from(state: State, out_dir: Path, policy_sha256: str) -> str | None:
    """The previous run's policy digest when this run applies another policy (None when it is
    the same, or there is no previous run), told in one log line: a policy or a term list edited
    between scheduled runs changes every verdict from then on, and nothing else said so. The
    digest is `Policy.applied_sha256`: the Policy-SHA256, or with term files one over it and
    them. A state made before the runs kept the digest gives it from the previous bag-info."""
    last = state.last_completed()
    if last is None:
        return None
    previous = last.policy_sha256 or _bag_policy(last.bag_in(out_dir))
    if previous is None or previous == policy_sha256:
        return None
    log.warning(
        "the policy changed since run %d: its digest (Policy-SHA256, with any term files) %s, "
        "was %s",
        last.sequence,
        policy_sha256[:12],
        previous[:12],
    )
    return previous


def _bag_policy(bag: Path | None) -> str | None:
    """The policy digest of a bag's bag-info (`applied_sha256_in_info`), if the bag and its
    Policy-SHA256 are there."""
    if bag is None:
        return None
    try:
        fields, _problems = parse_bag_info((bag / layout.BAG_INFO).read_bytes(), layout.BAG_INFO)
    except OSError:
        return None
    return applied_sha256_in_info(fields)


def _publish_committed(state: State, out_dir: Path) -> None:
    """Finishes what a run killed after its commit left: the rename of its bag, its spool."""
    last = state.last_completed()
    if last is None or not last.bag_path:
        return
    final = last.bag_in(out_dir)
    partial = partial_path_for(final.parent, final.name)
    if not final.exists() and partial.exists():
        check_bag_format(partial, "chain a run onto")  # the head `_refuse_a_newer_head` missed
        log.warning("publishing %s, committed by a run that was stopped before renaming it", final)
        publish_bag(partial, final)
        durable.finished(last.sequence, final)
    for spool in (out_dir / layout.SPOOL_FOLDER).glob("run-*"):
        if int(spool.name.split("-")[1]) <= last.sequence:
            shutil.rmtree(spool, ignore_errors=True)


def _window(settings: RunSettings, state: State) -> tuple[int, int] | None:
    """The run's window, widened to whole hours as a fixed window is (a partition is an hour).

    The first `--incremental` run of a chain, given no `--since`, starts at the oldest hour the
    source still keeps (`_oldest_kept`): that is the app's whole history, and a scheduled audit
    whose first run refused would let the source delete it hour by hour."""
    if settings.incremental:
        last = state.last_completed()
        since = last.until_ms if last else settings.since_ms
        if since is None:
            since = _oldest_kept(settings)
            log.warning(
                "first run of this chain: from %s, the oldest hour the source keeps "
                "(retention_days %g); give --since to start elsewhere",
                format_instant(since),
                settings.source.retention_days,
            )
        since -= since % HOUR_MS
        newest = settings.now_ms() - settings.ready_delay_hours * HOUR_MS
        until = newest - newest % HOUR_MS
        if settings.until_ms is not None:
            until = min(until, -(-settings.until_ms // HOUR_MS) * HOUR_MS)
        if until <= since:
            return None
        check_window(since, until)
        return since, until
    if settings.since_ms is None or settings.until_ms is None:
        raise ConfigError("give --since and --until, or --incremental")
    check_forwards(settings.since_ms, settings.until_ms)
    since = settings.since_ms - settings.since_ms % HOUR_MS
    until = -(-settings.until_ms // HOUR_MS) * HOUR_MS
    check_window(since, until)
    return since, until


def _relook_plan(
    settings: RunSettings, since_ms: int, until_ms: int
) -> Callable[[RunRecord | None, int], tuple[tuple[int, int] | None, int | None]]:
    """How a new run deals with records that reach an hour's file after the hour was fetched
    (Easemob writes its files late, and answers 404 for an hour whose file it has not written,
    as for an hour without messages): the hours it fetches again, and the chain's settled end.

    An hour is settled once a run has fetched it at least `late_hours` after it ended. The chain
    keeps the end of its settled hours; an `--incremental` run fetches again, once, the hours
    after that end which have since become `late_hours` old, then moves the end up to what it
    fetched for good. So each hour is fetched at most twice, and a chain that runs hourly fetches
    one old hour a run. Hours count as fetched when the run started: a run that replaces a killed
    one reuses what that one spooled, and keeps its start. A fixed window carries the chain's
    settled end unchanged. An hour the source may have deleted by now (`retention_days`, less a
    margin for the run's own length) is not fetched again: it would answer as expired, though
    its first fetch was archived (`_Archiver._not_fetched_again` reports such hours).
    """
    late_ms = settings.late_hours * HOUR_MS

    def planned(
        last: RunRecord | None, started_ms: int
    ) -> tuple[tuple[int, int] | None, int | None]:
        cutoff = started_ms - late_ms
        cutoff -= cutoff % HOUR_MS
        settled = last.settled_until_ms if last else None
        if not settings.incremental:
            if settled is not None and since_ms > settled:
                return None, settled  # the hours between stay as they were fetched
            return None, max(since_ms if settled is None else settled, min(until_ms, cutoff))
        if settled is None:
            # Nothing was fetched before a first run's window; a chain an earlier version made
            # may have fetched its last run's hours too early.
            settled = since_ms if last is None else max(since_ms - late_ms, last.since_ms)
        settled = max(settled, min(_oldest_kept(settings), since_ms))
        relook_until = min(since_ms, cutoff)
        relook = (settled, relook_until) if relook_until > settled else None
        return relook, max(settled, min(until_ms, cutoff))

    return planned


# How long before the source's retention ends a run stops fetching an hour, a first time or a
# second: a run may take this long between planning and fetching its oldest hour.
_RETENTION_MARGIN_MS = 3 * HOUR_MS


def _oldest_kept(settings: RunSettings) -> int:
    """The start of the oldest whole hour the source still keeps by `retention_days`, less
    `_RETENTION_MARGIN_MS`."""
    kept_ms = int(settings.source.retention_days * DAY_MS) - _RETENTION_MARGIN_MS
    return -(-(settings.now_ms() - kept_ms) // HOUR_MS) * HOUR_MS


class _Archiver:
    """The coordinator's side of a run: spool -> bag, findings, report, state. Single-threaded,
    the only writer of the bag and of the state database."""

    def __init__(
        self,
        settings,
        state,
        run,
        key,
        policy,
        validator,
        spool_dir,
        reference_ms,
        fetched,
        policy_changed_from=None,
    ):
        self.settings = settings
        # the previous run's policy digest (`Policy.applied_sha256`)
        self.policy_changed_from = policy_changed_from
        # what each retention rule says once its period ends, for the index (`auditor due`)
        self._then = retention_actions(policy)
        self.state = state
        self.run = run
        self.key = key
        self.policy = policy
        self.validator = validator
        self.spool_dir = spool_dir
        self.reference_ms = reference_ms
        self.fetched = fetched  # spans of hours earlier runs fetched (`_fetched_spans`)
        # runs whose records without a msg_id the state does not hold (`auditor.unrecorded`)
        self._unrecorded = unrecorded.unrecorded_runs(state.db) if run.relook else []
        self.source = settings.source
        self.name = (
            f"run-{run.sequence:06d}-{Partition(run.since_ms).label()}"
            f"-{Partition(run.until_ms).label()}"
        )
        self.severities: Counter[str] = Counter()
        self.findings = 0
        self.skipped = 0
        self.relooked = 0
        self.attachments = 0
        # the hours the source refused this run: nothing archived from them can be looked for
        self._refused_hours: set[int] = set()
        self._lost_hours: list[int] = []
        self._hours_strays = self._records_served = 0
        self._strays_told = False
        self._add_finding_lines: Callable[[Iterable[bytes]], int] | None = None
        self.report: ReportBuilder | None = None
        self.db = state.db
        # The run's archived pairs, keyed by the hour that served them first: an hour's rows,
        # sorted, go in after every earlier hour's, so each insert lands at the end of the
        # B-tree whatever order the source's msg_ids have. Keyed by msg_id, an insert of a
        # msg_id that did not grow with time went to a random leaf: 12 us a row after 250,000
        # rows against 1.7 in key order (bench/README.md). A pair is found by its hour, which
        # its timestamp fixes (`_IN_RUN_HOUR`); a pair without one is in `run_untimed`.
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS run_messages (msg_id TEXT NOT NULL,"
            " content_hash BLOB NOT NULL, timestamp_ms INTEGER, retain_until_ms INTEGER,"
            " hour_ms INTEGER NOT NULL, verdict INTEGER, seq INTEGER,"
            " PRIMARY KEY (hour_ms, msg_id, content_hash)) WITHOUT ROWID"
        )
        self.db.execute("DROP INDEX IF EXISTS temp.run_messages_by_id")
        self.db.execute("DELETE FROM run_messages")
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS run_untimed (msg_id TEXT NOT NULL,"
            " content_hash TEXT NOT NULL, PRIMARY KEY (msg_id, content_hash)) WITHOUT ROWID"
        )
        self.db.execute("DELETE FROM run_untimed")
        # (hour, least pair, greatest pair) of each lot of pairs indexed (`_in_id_order`)
        self._indexed_spans: list[tuple[int, tuple[str, bytes], tuple[str, bytes]]] = []
        self._hour_spans = HourSpans(self.db)  # where `_kept` looks for a msg_id in other hours
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS run_unidentified"
            " (content_hash TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        self.db.execute("DELETE FROM run_unidentified")
        # (msg_id, content) pairs archived from outside the hour of their timestamp (`_kept`),
        # by that timestamp, so an hour loads only the strays it could repeat: a source serving
        # every record in a wrong hour held them all in a set (about 200 bytes each)
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS run_strays (timestamp_ms INTEGER NOT NULL,"
            " msg_id TEXT NOT NULL, content_hash TEXT NOT NULL,"
            " PRIMARY KEY (timestamp_ms, msg_id, content_hash)) WITHOUT ROWID"
        )
        self.db.execute("DELETE FROM run_strays")
        # The least and greatest msg_id earlier runs archived ((None, None) for none): nothing
        # writes `messages` until this run commits, so a batch of msg_ids outside this range
        # needs no query (a first run's, and an incremental run's newer messages).
        self._archived_ids = state.archived_id_range()
        self._verdicts = RunVerdicts(state.db)  # the index rows' (rule, action) ids
        self._verbatim: list[tuple] = []  # rows of the messages kept verbatim (`state_verbatim`)
        self._judge_verbatim: Judge | None = None

    def bag_info(self) -> dict[str, str]:
        source = self.source
        digests = self.validator.schema_digests()
        return {
            "Source-API": source.api,
            "Source-Base-URL": source.base_url,
            "Source-Organization": source.org,
            "Source-Application": source.app,
            "Hour-Timezone": source.hour_timezone,
            "Window-Since": format_instant(self.run.since_ms),
            "Window-Until": format_instant(self.run.until_ms),
            **(
                {
                    "Fetched-Again-Since": format_instant(self.run.relook[0]),
                    "Fetched-Again-Until": format_instant(self.run.relook[1]),
                }
                if self.run.relook
                else {}
            ),
            "Policy-File": Path(self.settings.policy_path).name,
            "Policy-SHA256": self.policy.sha256,
            **info_labels(self.policy.term_files),
            "Policy-Reference-Time": format_instant(self.reference_ms),
            "Schema-Profile": self.settings.profile,
            "Schemas-SHA256": hashlib.sha256(
                orjson.dumps(digests, option=orjson.OPT_SORT_KEYS)
            ).hexdigest(),
            **{f"Schema-SHA256-{name}": digest for name, digest in sorted(digests.items())},
            "Fail-On": self.settings.fail_on,
            "Tool-Version": __version__,
        }

    def run_info(self, writer: BagWriter) -> RunInfo:
        source = self.source
        return RunInfo(
            sequence=self.run.sequence,
            since_ms=self.run.since_ms,
            until_ms=self.run.until_ms,
            source={
                "api": source.api,
                "base_url": source.base_url,
                "org": source.org,
                "app": source.app,
            },
            hour_timezone=source.hour_timezone,
            merkle_root=writer.merkle_root(),
            tree_size=writer.record_count,
            key_fingerprint=fingerprint(self.key.public_key()),
            previous_tagmanifest_sha256=self.run.previous_tagmanifest_sha256,
            policy_file=Path(self.settings.policy_path).name,
            policy_sha256=self.policy.sha256,
            fail_on=self.settings.fail_on,
            attachments=self.attachments,
            attachments_note="skipped (--attachments skip)"
            if self.settings.attachments == "skip"
            else "",
            bag_name=self.name,
            previous_bag_name=writer.previous_name() or "",
            reference_ms=self.reference_ms,
            fetched_again_ms=self.run.relook,
            term_files=tuple(info_labels(self.policy.term_files).values()),
            # as `auditor report` reads it from the bag: its Bagging-Date, the UTC day the bag is
            # signed, moments after the report is written (a run signing its bag just after
            # midnight UTC states the day before)
            archived_on=f"{datetime.now(UTC):%Y-%m-%d} by easemob-auditor {__version__}",
        )

    def emit(
        self,
        finding: dict[str, Any],
        record: dict[str, Any] | None = None,
        place: tuple[int | None, str | None] | None = None,
        parsed: bool = False,
    ) -> None:
        """Writes a finding into the bag as it comes, and counts and reports it (`place`: its
        record's send time and sender, for the report's charts and CSV). The record a schema
        finding is about goes to the report beside it, for the schema table to show, never into
        the finding: the CSV and JSONL the run writes are what `auditor report` writes from the
        bag, whose findings do not hold the record (nor the attachment secrets it may hold).

        `parsed`: the finding was read from JSON (a worker's spool), so each `null` in it is
        None, never a NaN, and its canonical form is orjson's sorted output unless a float
        needs the reference's spelling (`canonical_of`): a run with a finding a record spares
        looking for NaN in each. The report spools the same bytes."""
        line = canonical_of(finding, _sorted_json(finding)) if parsed else canonical(finding)
        self._add_finding_lines((line,))
        self.severities[finding["severity"]] += 1
        self.findings += 1
        shown = record if record is not None and finding["category"] == "schema" else None
        self.report.observe_finding(finding, place, shown, line)

    def archive(
        self,
        partitions: list[Partition],
        spooled: Iterable[tuple[Partition, PartitionOutcome]],
        stops: list[BaseException],
    ) -> RunOutcome:
        """Archives the partitions as `spooled` hands them over (in the order of `partitions`),
        then signs the bag, commits the run and publishes the bag.

        A stop (Ctrl-C, SIGTERM) whose exception a finalizer swallowed (`stops`, kept by the
        caller) is raised again once the hours are archived and just before the commit: the
        run then commits and publishes nothing, and the next run resumes it. One swallowed
        after the commit is raised by the caller once the bag is published too."""
        settings = self.settings
        writer = BagWriter(
            settings.out_dir,
            self.name,
            self.key,
            self.run.previous_tagmanifest_sha256,
            self.run.sequence,
            self.bag_info(),
            namespace=settings.namespace,
        )
        self.spool_dir.mkdir(parents=True, exist_ok=True)  # before any worker made it
        for made in self.spool_dir.parent, self.spool_dir:  # as an earlier version left them?
            conform(made)
        drop_partial_downloads(self.spool_dir)
        _drop_stale_partial_bags(settings.out_dir, self.name)
        self.report = ReportBuilder(
            self.run_info(writer), policy=policy_view(self.policy, layout.POLICY)
        )
        self._add_finding_lines = writer.add_finding_lines
        with writer:
            writer.add_file(layout.POLICY.removeprefix(f"{layout.DATA}/"), self.policy.raw)
            for each in self.policy.term_files:
                writer.add_file(each.archived.removeprefix(f"{layout.DATA}/"), each.raw)
            if settings.attachments == "skip":
                writer.attachments_skipped("--attachments skip")
            gap = _unaudited_before(self.state.runs(), self.run.since_ms)
            if gap is not None:
                finding = _unaudited(*gap)
                log.warning("%s", finding["message"])
                self.emit(finding)
            if self.policy_changed_from is not None:
                self.emit(_policy_changed(self.policy_changed_from, self.policy))
            if (passed := self._not_fetched_again()) is not None:
                log.warning("%s", passed["message"])
                self.emit(passed)
            for expected, (partition, outcome) in zip(partitions, spooled, strict=True):
                if partition != expected:
                    raise RuntimeError(f"executor handed over {partition}, not {expected}")
                self._archive_partition(writer, partition, outcome)
                crashpoints.reached("archive.partition")
            raise_kept(stops)
            self._tell_lost_hours(writer)
            if not self._strays_told and (
                strays := mostly_strays_in_run(
                    self._hours_strays, self._records_served, strays_cause(self.source)
                )
            ):
                self.emit(strays.to_dict())
            if settings.recheck:
                for finding in self._disappeared():
                    self.emit(finding)
            self.report.run_info = self.run_info(writer)
            formats = bag_formats(settings.report_lang)
            # The page is written in a child from here, forked before the state's thread starts
            # indexing this run's messages, while this process writes the CSV.
            with (
                self.report.rendering(self.spool_dir / "report", formats) as rendered,
                self.state.completing_run(
                    self.run.sequence,
                    "run_messages",
                    "run_unidentified",
                    in_key_order=self._in_id_order(),
                    verdicts=self._verdicts.added,
                    verbatim=self._verbatim,
                ) as completion,
            ):
                for filename, path in sorted(rendered().items()):
                    writer.add_file(f"report/{filename}", path)
                crashpoints.reached("archive.report")
                summary = writer.finish(publish=False)
                crashpoints.reached("archive.signed")
                raise_kept(stops)
                final = settings.out_dir / self.name
                outcome = RunOutcome(
                    sequence=self.run.sequence,
                    bag_path=final,
                    since_ms=self.run.since_ms,
                    until_ms=self.run.until_ms,
                    records=summary.record_count,
                    skipped_duplicates=self.skipped,
                    relooked=self.relooked,
                    findings=self.findings,
                    by_severity=dict(self.severities),
                    fail_on=settings.fail_on,
                    merkle_root=summary.merkle_root,
                    tagmanifest_sha256=summary.tagmanifest_sha256,
                    attachments=self.attachments,
                    lost_hours=len(self._lost_hours),
                    policy_changed_from=self.policy_changed_from,
                )
                completion.commit(
                    record_count=summary.record_count,
                    finding_count=self.findings,
                    tree_size=summary.tree_size,
                    merkle_root=summary.merkle_root,
                    tagmanifest_sha256=summary.tagmanifest_sha256,
                    bag_path=final.name,
                    outcome=outcome.to_dict(),
                )
        durable.committed(self.run.sequence, final)
        crashpoints.reached("archive.committed")
        publish_bag(summary.path, final)
        durable.published(self.run.sequence, final)
        crashpoints.reached("archive.published")
        shutil.rmtree(self.spool_dir, ignore_errors=True)
        return outcome

    def _tell_lost_hours(self, writer: BagWriter) -> None:
        """Hours the source no longer serves, told where the operator and legal look, not only
        in findings: one error line (a scheduled run's log), bag-info (`verify-chain`)."""
        if not self._lost_hours:
            return
        count, first, last = len(self._lost_hours), self._lost_hours[0], self._lost_hours[-1]
        hours = f"{count} hour{'s' * (count != 1)} between {format_instant(first)} and "
        hours += format_instant(last + HOUR_MS)
        writer.add_info(layout.HOURS_LOST, hours)
        log.error(
            "%s %s lost to this archive: the source no longer serves %s (%s hour-expired "
            "%s what it answered)",
            hours,
            *(
                ("is", "it", "its", "finding says")
                if count == 1
                else ("are", "them", "their", "findings say")
            ),
        )

    def _archive_partition(
        self, writer: BagWriter, partition: Partition, outcome: PartitionOutcome
    ) -> None:
        """One spooled partition into the bag: its findings, its records, what was unreadable.

        Each spool file is read a line or a piece at a time, never whole: an hour of garbage or
        of findings would otherwise cost the coordinator memory in proportion to it. The spool
        digest the worker returned is checked over the very bytes archived, hashed as they are
        read, so a spool rewritten meanwhile (by a worker orphaned from a killed run) can never
        be signed; it is checked before anything is signed, and the bag is given up. The digest
        takes the findings after the records, so they are read twice: the bytes told first
        must be the bytes read again (`told`)."""
        label = partition.label(self.source.tz)
        self._records_served += outcome.records
        paths = spool_paths(self.spool_dir, partition, outcome.attempt)
        relook = self.run.relook
        second_look = (
            _SecondLook(label)
            if relook
            and partition.start_ms < relook[1]
            and fetched_before(self.fetched, partition.start_ms)
            else None
        )
        told = hashlib.sha256()
        verbatim: list[tuple[str, int]] = []
        with paths["findings"].open("rb") as spooled_findings:
            for line in spooled_findings:
                told.update(line)
                finding = orjson.loads(line)
                if finding["rule"] == "not-canonical-json" and (kept := place(finding)):
                    verbatim.append(kept)
                if finding["rule"] in _REFUSED:
                    self._refused_hours.add(partition.start_ms)
                if finding["rule"] == "hour-expired":
                    self._lost_hours.append(partition.start_ms)
                if finding["rule"] == "served-in-another-hour":
                    self._hours_strays += finding["details"]["count"]
                    self._strays_told |= finding["severity"] == "high"
                if second_look is not None and finding["rule"] == "conflicting-content":
                    continue  # told again only for a variant new in this look, read again below
                self.emit(finding)
        digest = hashlib.sha256()
        counts = RecordCounts.from_json(outcome.counts)
        with paths["records"].open("rb") as spooled:
            kept = self._kept(_batches(spooled, digest), writer, partition, counts, second_look)
            writer.add_partition_lines(label, itertools.chain.from_iterable(kept))
        again = hashlib.sha256()
        for piece in _findings_again(paths["findings"], second_look is not None):
            again.update(piece)
            digest.update(piece)
            if second_look is not None and _CONFLICT in piece:
                finding = orjson.loads(piece)
                if finding["rule"] == "conflicting-content" and (
                    finding["msg_id"] in second_look.new_ids
                ):
                    self.emit(finding)
        if second_look is not None:
            self.relooked += second_look.known
            self.emit(second_look.finding())
        if verbatim:
            self._index_verbatim(paths["unreadable"], verbatim)
        pieces = _hashed_pieces(paths["unreadable"], digest)
        if first := next(pieces, b""):
            writer.add_file(f"unreadable/{label}.txt", itertools.chain((first,), pieces))
        if digest.hexdigest() != outcome.spool_sha256 or again.digest() != told.digest():
            raise InputError(
                f"{paths['records']}: the spool of hour {label} changed after its "
                "worker finished; not signing it (run again to redo the hour)"
            )
        self.report.observe_counts(counts)
        self.report.observe_source_copies(outcome.duplicates)

    def _index_verbatim(self, spooled: Path, places: list[tuple[str, int]]) -> None:
        """The messages of an hour kept verbatim (`places`: their findings' file and line),
        judged as the worker judged them, for the state's `verbatim_messages`: `auditor due`
        tells their retention though they have no leaf. Rare, so nothing of it runs per record."""
        if self._judge_verbatim is None:
            self._judge_verbatim = Judge(self.policy, self.reference_ms)
        known, add = self._verdicts.ids, self._verdicts.add
        for kept in kept_in_spool(spooled, places, self._judge_verbatim):
            verdict = known.get((kept.rule, kept.action))
            if verdict is None:
                verdict = add(kept.rule, kept.action)
            self._verbatim.append(state_verbatim.row(self.run.sequence, kept, verdict))

    def _kept(
        self,
        batches: Iterator[list[bytes]],
        writer: BagWriter,
        partition: Partition,
        counts: RecordCounts,
        second_look: _SecondLook | None = None,
    ) -> Iterator[list[tuple[bytes, str]]]:
        """The spooled records this run archives, as (canonical bytes, salt) in a list a batch
        of lines, emitting findings; the records it does not archive are taken out of the
        worker's `counts`.

        This runs once per record on the single coordinator, so it takes what it needs from the
        header a worker wrote, parses a record again only when a schema finding has to show it,
        and asks the database about earlier runs once per batch of lines (`_earlier_versions`),
        a batch small enough that its parsed headers never outlive the garbage collector's
        youngest generations. The worker counted the records for the report; each finding is
        given its record's send time and sender here, so the report keeps no window of records.
        Only a record the bag holds dates findings, as when the report is rendered from the bag:
        a finding about a message an earlier run archived stays undated.

        A message is archived once per run. Its (msg_id, content) pair fixes its bytes, hence
        its timestamp, and `settle` keeps a record with a timestamp only in the hour holding it.
        So only a pair without a timestamp, or with one outside its hour (a stray), is looked up
        in the run's index; any other pair can only repeat within its hour (`seen`) or as an
        earlier stray with a timestamp in this hour (`strays`, from the run's `run_strays`).
        Its msg_id may still be another hour's under another content (an edit re-sent later,
        each version timed in its hour): its msg_id is looked up only in the earlier hours whose
        span of msg_ids holds it (`HourSpans`), and a conflict is told on the later version; a
        stray or a pair without a timestamp is looked up there the same way, after its repeats.
        A record without a msg_id repeats one of this hour (`anonymous`) or of an earlier hour of
        the run (`run_unidentified`): both tables are indexed as the hour ends, so the run's
        memory holds one hour of them, whatever the history.

        In an hour fetched a second time (`second_look`), what an earlier run archived is only
        counted, and a record without a msg_id is looked up among those earlier runs archived
        (those of a state an earlier version wrote: in their bags, `auditor.unrecorded`); what
        is new reached the source late, and a finding says so.
        """
        place_waiting = self.report.place_waiting
        verdicts: Counter[tuple[str, str]] = Counter()
        archived_earlier: Counter[int] = Counter()
        emit, reached = self.emit, crashpoints.reached
        then = self._then
        verdict_ids, new_verdict = self._verdicts.ids, self._verdicts.add
        lookup = self.db.execute
        start, end = partition.start_ms, partition.end_ms
        strays = set(lookup(_STRAYS_OF_HOUR, (start, end)).fetchall())
        stray_ids = {identity for identity, _ in strays}
        floor, ceiling, elsewhere = self._hour_spans.other_hours(start)
        told: set[str] = set()  # msg_ids found in another hour, once an hour
        new_strays: list[tuple[int, str, str]] = []
        untimed: list[tuple[str, str]] = []
        anonymous: set[str] = set()
        seen: set[tuple[str, str]] = set()
        indexed: list[tuple[str, bytes, int | None, int | None, int, int, int]] = []
        seq = writer.record_count

        def not_archived(kind: str, chat: str, sent: int | None) -> None:
            """A record served again in this run, or archived by an earlier one."""
            counts.remove(kind, chat, sent)
            self.skipped += 1

        anonymous_before: set[str] = set()
        unrecorded_here: set[str] | None = None  # read from an earlier version's bags at need
        for batch in batches:
            entries = [line.partition(b"\t") for line in batch]
            headers = orjson.loads(b"[%b]" % b",".join([entry[0] for entry in entries]))
            earlier = self._earlier_versions(headers)
            if second_look is not None:
                contents = [header[1] for header in headers if header[7] is None]
                anonymous_before = self.state.unidentified_archived(contents)
                if contents and self._unrecorded:
                    if unrecorded_here is None:
                        unrecorded_here = unrecorded.anonymous_archived(
                            self.settings.out_dir, self._unrecorded, start
                        )
                    anonymous_before |= unrecorded_here.intersection(contents)
            kept: list[tuple[bytes, str]] = []
            for header, (_header, _tab, line_end) in zip(headers, entries, strict=True):
                # `later`: a hold that begins after the reference time, for the index only
                (
                    salt, content, disposition, rule, retain_until, findings, references,
                    identity, sent, kind, chat, who, *later,
                ) = header  # fmt: skip
                if identity is not None:
                    pair = (identity, content)
                    if pair in seen:
                        not_archived(kind, chat, sent)
                        continue
                    if sent is not None and start <= sent < end:
                        repeated = pair in strays
                        if stray_ids and not repeated and identity in stray_ids:
                            findings.append(conflicting_content(identity).to_dict())
                        elif (
                            identity <= ceiling
                            and identity >= floor
                            and not repeated
                            and identity not in told
                            and elsewhere(identity)
                        ):
                            told.add(identity)
                            findings.append(conflicting_content(identity).to_dict())
                    elif sent is None:
                        repeated = lookup(_IN_RUN_UNTIMED, pair).fetchone() is not None
                        if not repeated:
                            untimed.append(pair)
                            if floor <= identity <= ceiling and elsewhere(identity):
                                findings.append(conflicting_content(identity).to_dict())
                    else:
                        found = (
                            sent - sent % HOUR_MS,
                            identity,
                            _BYTES(content),
                            sent,
                            identity,
                            content,
                        )
                        repeated = lookup(_IN_RUN_HOUR, found).fetchone() is not None
                        if not repeated:
                            new_strays.append((sent, identity, content))
                            if floor <= identity <= ceiling and elsewhere(identity):
                                findings.append(conflicting_content(identity).to_dict())
                    if repeated:
                        not_archived(kind, chat, sent)
                        continue
                    seen.add(pair)
                    if later:
                        until, action, verdict_rule = held_later(later[0], retain_until)
                    else:
                        action = "hold" if disposition == "hold" else then.get(rule)
                        until, verdict_rule = retain_until, rule
                    verdict = verdict_ids.get((verdict_rule, action))
                    if verdict is None:
                        verdict = new_verdict(verdict_rule, action)
                    indexed.append((identity, _BYTES(content), sent, until, start, verdict, seq))
                    versions = earlier.get(identity)
                    if versions:
                        same = [run for digest, run in versions if digest == content]
                        if same:
                            if second_look is None:
                                not_archived(kind, chat, sent)
                                archived_earlier[same[0]] += 1
                            else:
                                counts.remove(kind, chat, sent)
                                second_look.known += 1
                            continue
                        findings.append(_changed(identity, versions[0][1]))
                        if second_look is not None:
                            second_look.new_ids.add(identity)
                    elif second_look is not None:
                        findings.append(second_look.late(identity))
                elif content in anonymous or (
                    lookup(_IN_RUN_UNIDENTIFIED, (content,)).fetchone() is not None
                ):
                    not_archived(kind, chat, sent)
                    continue
                elif content in anonymous_before:
                    anonymous.add(content)
                    counts.remove(kind, chat, sent)
                    second_look.known += 1
                    continue
                else:
                    anonymous.add(content)
                    if second_look is not None:
                        findings.append(second_look.late(None))
                if identity is not None:
                    place_waiting(identity, sent, who)
                canonical = line_end[:-1]
                verdicts[disposition, rule] += 1
                if findings:
                    shown = any(finding["category"] == "schema" for finding in findings)
                    record = orjson.loads(canonical) if shown else None
                    for finding in findings:
                        finding["seq"] = seq
                        emit(finding, record, (sent, who), True)
                for reference in references:
                    self._attach(writer, reference, seq, (sent, who))
                seq += 1
                kept.append((canonical, salt))
                reached("archive.record")
            yield kept
            if len(indexed) + len(anonymous) >= _INDEX_HELD:  # a large hour: indexed now
                self._index_hour(indexed, new_strays, untimed, anonymous)
        for (disposition, rule), count in verdicts.items():  # in the order first seen
            self.report.observe_verdict(disposition, rule, count)
        for first_run, messages in sorted(archived_earlier.items()):
            emit(
                _already_archived(
                    partition.label(self.source.tz), first_run, messages, self._bag_of(first_run)
                )
            )
        self._index_hour(indexed, new_strays, untimed, anonymous)

    def _index_hour(
        self,
        indexed: list[tuple[str, bytes, int | None, int | None, int, int, int]],
        strays: list[tuple[int, str, str]],
        untimed: list[tuple[str, str]],
        anonymous: set[str],
    ) -> None:
        """An hour's archived pairs, strays and contents without a msg_id into the run's
        temporary tables, emptied: asked about only past `seen` and `anonymous`, which hold
        the whole hour, so when they are written changes no answer. The pairs go in sorted,
        so that the hour's rows fill the end of `run_messages` in order (compared as whole
        tuples, which differ by their pair: a third the cost of a key function)."""
        indexed.sort()
        if indexed:
            self._indexed_spans.append((indexed[0][4], _PAIR(indexed[0]), _PAIR(indexed[-1])))
        with self._temporary() as db:
            if indexed:  # with its strays' and untimed records' msg_ids, in the transaction
                odd = itertools.chain((stray[1] for stray in strays), (pair[0] for pair in untimed))
                self._hour_spans.add(indexed, indexed[0][4], odd)
            _insert_rows(db, "run_messages", 7, indexed)
            db.executemany("INSERT INTO run_untimed VALUES (?, ?)", untimed)
            db.executemany("INSERT OR IGNORE INTO run_strays VALUES (?, ?, ?)", strays)
            db.executemany(
                "INSERT OR IGNORE INTO run_unidentified VALUES (?)", ((c,) for c in anonymous)
            )
        indexed.clear()
        strays.clear()
        untimed.clear()
        anonymous.clear()

    def _in_id_order(self) -> bool:
        """Whether `run_messages`, read in its key order (hour, then pair), is in pair order
        but for lots of neighbouring hours: then the commit's copy, in that order, inserts each
        row near the one before in the state's index, and sorting it first costs more than it
        saves (snowflake msg_ids, whose servers' clocks differ by seconds, overlap only there).
        Only msg_ids scattered across the run's hours (a legacy export) need the sort."""
        settled: tuple[str, bytes] | None = None  # the greatest pair before the previous lot
        previous: tuple[str, bytes] | None = None
        for _hour, least, greatest in sorted(self._indexed_spans, key=lambda span: span[0]):
            if settled is not None and least < settled:
                return False
            if previous is not None:
                settled = previous if settled is None else max(settled, previous)
            previous = greatest
        return True

    def _bag_of(self, sequence: int) -> str | None:
        """The folder name of the bag run `sequence` wrote, as the state recorded it."""
        found = self.state.run(sequence)
        return PurePath(found.bag_path).name if found is not None and found.bag_path else None

    def _earlier_versions(self, headers: list[list[Any]]) -> dict[str, list[tuple[str, int]]]:
        """What earlier runs archived under the msg_ids of a batch of spooled headers:
        (content sha256, first run) by msg_id, in content order."""
        identities = list({header[7] for header in headers if header[7] is not None})
        earlier: dict[str, list[tuple[str, int]]] = {}
        if not _overlaps(identities, self._archived_ids):
            return earlier
        rows = self.db.execute(
            "SELECT msg_id, content_hash, first_run FROM messages"
            f" WHERE msg_id IN ({','.join('?' * len(identities))}) ORDER BY msg_id, content_hash",
            identities,
        )
        for identity, digest, first_run in rows:
            earlier.setdefault(identity, []).append((digest, first_run))
        return earlier

    def _not_fetched_again(self) -> dict[str, Any] | None:
        """The finding about the hours the chain fetched once, too early to be sure of them,
        that this run did not fetch again because the source may have deleted them since."""
        last = self.state.last_completed()
        if not self.settings.incremental or last is None or last.settled_until_ms is None:
            return None
        relook = self.run.relook
        since = last.settled_until_ms
        first = relook[0] if relook else self.run.settled_until_ms
        until = min(since if first is None else first, self.run.since_ms)
        if until <= since:
            return None
        since_text, until_text = format_instant(since), format_instant(until)
        return Finding(
            None,
            "coverage",
            "not-fetched-again",
            "low",
            f"hours {since_text} .. {until_text} were fetched once, less than late_hours after "
            "they ended, and are now too old to fetch again (the source keeps hour files "
            f"{self.source.retention_days:g} days, retention_days): records that reached the "
            "source after that first fetch are not in the archive; schedule runs more often",
            details={"since": since_text, "until": until_text},
        ).to_dict()

    @contextmanager
    def _temporary(self) -> Iterator[sqlite3.Connection]:
        """One transaction around writes to the temporary tables: the state database is in
        autocommit mode, where each row inserted would be a transaction of its own."""
        self.db.execute("BEGIN")
        try:
            yield self.db
        except BaseException:
            roll_back(self.db)
            raise
        self.db.execute("COMMIT")

    def _attach(
        self,
        writer: BagWriter,
        reference: dict[str, Any],
        seq: int,
        place: tuple[int | None, str | None],
    ) -> None:
        if "error" in reference:
            self.emit(
                Finding(
                    reference.get("msg_id"),
                    "attachment",
                    "download-failed",
                    "medium",
                    f"attachment {reference['url']} could not be fetched: {reference['error']}",
                    pointer=reference.get("pointer"),
                ).to_dict()
                | {"seq": seq},
                place=place,
            )
            return
        stored = self.spool_dir / "attachments" / reference["sha256"]
        ref = {key: value for key, value in reference.items() if key not in ("sha256", "size")}
        writer.add_attachment(stored, ref | {"seq": seq})
        self.attachments += 1

    def _disappeared(self) -> Iterator[dict[str, Any]]:
        """Messages an earlier run archived from the files of this window's hours that the
        source no longer served. A message sent in one of them but served in a later hour's file
        is not looked for here (a state made before the index kept the hour goes by send time)."""
        window = (self.run.since_ms, self.run.until_ms)
        # built once from the whole table (SQLite sorts it), not kept up per row while archiving
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS temp.run_messages_by_id ON run_messages (msg_id)"
        )
        # A row's hour is in the window, or it has none and its send time is. The hour index
        # holds only rows served outside their timestamp's hour (`SERVED_ELSEWHERE`); any other
        # row's hour is within an hour of its send time, which the time index finds.
        rows = self.db.execute(
            "SELECT m.msg_id, m.first_run, m.retain_until_ms,"
            " coalesce(m.hour_ms, m.timestamp_ms - m.timestamp_ms % 3600000) FROM messages m"
            f" WHERE (m.hour_ms >= :since AND m.hour_ms < :until AND {_SERVED_ELSEWHERE}"
            " OR m.timestamp_ms > :since - 3600000 AND m.timestamp_ms < :until + 3600000"
            " AND (m.hour_ms >= :since AND m.hour_ms < :until"
            " OR m.hour_ms IS NULL AND m.timestamp_ms >= :since AND m.timestamp_ms < :until))"
            " AND NOT EXISTS (SELECT 1 FROM run_messages r WHERE r.msg_id = m.msg_id)"
            " ORDER BY m.timestamp_ms, m.msg_id, m.content_hash",  # whatever the plan
            {"since": window[0], "until": window[1]},
        )
        for identity, first_run, retain_until, hour in rows:
            if hour in self._refused_hours:
                continue  # the hour's own finding says the source no longer holds it
            early = retain_until is None or retain_until > self.reference_ms
            yield Finding(
                identity,
                "disappeared",
                "missing-at-source",
                "high" if early else "info",
                f"message archived in run {first_run} is no longer served by the source"
                + (" before its retention ended" if early else " (its retention had ended)"),
                details={"first_run": first_run, "retain_until": retain_until},
            ).to_dict()


def _drop_stale_partial_bags(out_dir: Path, name: str) -> None:
    """Removes the unpublished bags of killed runs other than this one's (which its writer
    replaces): a run replacing a killed one covers another window, so its bag has another name,
    and an hourly schedule left one behind per kill. Only a run holding the state's lock gets
    here, and only runs of this state write into this folder."""
    keep = partial_path_for(out_dir, name).name
    for stale in Path(out_dir).glob(f"{layout.PARTIAL_PREFIX}run-*{layout.PARTIAL_SUFFIX}"):
        if stale.name != keep and stale.is_dir() and not stale.is_symlink():
            log.info("removing %s, the unpublished bag of a run that was stopped", stale.name)
            shutil.rmtree(stale)


_SERVED_ELSEWHERE = SERVED_ELSEWHERE.format(m="m")
_PAIR = operator.itemgetter(0, 1)  # (msg_id, content hash) of a row of `run_messages`
# A content hash as `run_messages` and the state's index keep it: a bytearray, since Python
# 3.11's sqlite3 binds one as it is but sends `bytes` through its adapter protocol, whose two
# missed attribute lookups raise and format an AttributeError each (~2,700 instructions a row).
_BYTES = bytearray.fromhex
# A pair with a timestamp was archived by this run from the hour holding it, or as a stray
_IN_RUN_HOUR = (
    "SELECT 1 FROM run_messages WHERE hour_ms = ? AND msg_id = ? AND content_hash = ?"
    " UNION ALL SELECT 1 FROM run_strays WHERE timestamp_ms = ? AND msg_id = ?"
    " AND content_hash = ?"
)
_IN_RUN_UNTIMED = "SELECT 1 FROM run_untimed WHERE msg_id = ? AND content_hash = ?"
_IN_RUN_UNIDENTIFIED = "SELECT 1 FROM run_unidentified WHERE content_hash = ?"
_STRAYS_OF_HOUR = (
    "SELECT msg_id, content_hash FROM run_strays WHERE timestamp_ms >= ? AND timestamp_ms < ?"
)
_BATCH_LINES = 500  # also the most msg_ids one query binds (SQLite allows 32,766)
# Pairs of an hour's records held before they are indexed (at its end, unless it has more): the
# run's index is only asked about a pair not in `seen`, which holds all of the hour's, so when
# they are indexed changes no answer.
_INDEX_HELD = 20_000
_STATEMENT_ROWS = (64, 8, 1)
_READ_BYTES = 1 << 20


# Partition findings of an hour the source refused: nothing of it can be looked for there.
_REFUSED = frozenset({"hour-expired", "hour-not-fetched-again"})


def _fetched_spans(runs: list[dict[str, Any]]) -> tuple[tuple[int, int], ...]:
    """The hours completed runs fetched (windows and second looks), as sorted disjoint spans."""
    spans = sorted(
        span
        for run in runs
        if run["status"] == "completed"
        for span in (
            (run["since_ms"], run["until_ms"]),
            (run["relook_since_ms"], run["relook_until_ms"]),
        )
        if span[0] is not None and span[1] is not None
    )
    merged: list[tuple[int, int]] = []
    for since, until in spans:
        if merged and since <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], until))
        else:
            merged.append((since, until))
    return tuple(merged)


class _SecondLook:
    """An hour fetched a second time, for records that reached the source after the first."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.known = 0
        self.late_records = 0
        self.new_ids: set[str] = set()

    def late(self, identity: str | None) -> dict[str, Any]:
        self.late_records += 1
        if identity is not None:
            self.new_ids.add(identity)
        what = f"message {identity}" if identity is not None else "a record without a msg_id"
        return Finding(
            identity,
            "coverage",
            "late-arrival",
            "info",
            f"{what} was not in the source's file for hour {self.label} when an earlier run "
            "fetched it; archived by this run's second look at the hour",
            details={"hour": self.label},
        ).to_dict()

    def finding(self) -> dict[str, Any]:
        return Finding(
            None,
            "coverage",
            "hour-fetched-again",
            "info",
            f"hour {self.label} fetched again for records that reached the source late: "
            f"{self.late_records} new, {self.known} archived before",
            details={"hour": self.label, "late": self.late_records, "archived_before": self.known},
        ).to_dict()


def _overlaps(identities: list[str], archived: tuple[str | None, str | None]) -> bool:
    """Whether any of `identities` may lie in the range [least, greatest] of msg_ids `archived`
    (SQLite orders TEXT by its UTF-8 bytes, which is the code point order of `str`)."""
    least, greatest = archived
    if not identities or least is None or greatest is None:
        return False
    return max(identities) >= least and min(identities) <= greatest


def _insert_rows(db: sqlite3.Connection, table: str, width: int, rows: list[tuple]) -> None:
    """`rows` into `table` by statements of `_STATEMENT_ROWS` rows, the most that fit first:
    `executemany` steps, resets and releases the GIL once a row, 4,900 instructions a row more
    than a statement of 64 rows (bench/README.md, twenty-seventh session)."""
    row = f"({', '.join('?' * width)})"
    done = 0
    for size in _STATEMENT_ROWS:
        whole = done + (len(rows) - done) // size * size
        if whole == done:
            continue
        statement = f"INSERT INTO {table} VALUES {', '.join([row] * size)}"
        values = list(itertools.chain.from_iterable(rows[done:whole]))
        step = width * size
        for start in range(0, len(values), step):
            db.execute(statement, values[start : start + step])
        done = whole


def _batches(spooled: BinaryIO, digest: Any) -> Iterator[list[bytes]]:
    """The lines of a spool file, each ending in a newline, in batches of at most
    `_BATCH_LINES`, every byte read fed to `digest` on the way.

    `BytesIO.readlines` finds line ends with memchr, where `bytes.split` tests byte by byte.
    """
    rest = b""
    while chunk := spooled.read(_READ_BYTES):
        digest.update(chunk)
        lines = io.BytesIO(rest + chunk).readlines()
        rest = b"" if lines[-1].endswith(b"\n") else lines.pop()
        for start in range(0, len(lines), _BATCH_LINES):
            yield lines[start : start + _BATCH_LINES]
    if rest:
        yield [rest + b"\n"]


_CONFLICT = b'"conflicting-content"'


def _findings_again(path: Path, by_line: bool) -> Iterator[bytes]:
    """A partition's spooled findings read again: a line at a time when they are looked at
    (an hour's second look tells its conflicts here), else a piece at a time."""
    with path.open("rb") as spooled:
        if by_line:
            yield from spooled
        else:
            while piece := spooled.read(_READ_BYTES):
                yield piece


def _hashed_pieces(path: Path, digest: Any) -> Iterator[bytes]:
    """The bytes of `path` a piece at a time, each taken into `digest` as it is read."""
    with path.open("rb") as spooled:
        while piece := spooled.read(_READ_BYTES):
            digest.update(piece)
            yield piece


def _unaudited_before(runs: list[dict[str, Any]], since_ms: int) -> tuple[int, int] | None:
    """The stretch between the end of what earlier completed runs audited and `since_ms`, when
    they end before it: the hours this run leaves behind it unaudited (it begins after a gap)."""
    ends = [
        run["until_ms"]
        for run in runs
        if run["status"] == "completed" and run["since_ms"] < since_ms
    ]
    covered = max(ends, default=since_ms)
    return (covered, since_ms) if covered < since_ms else None


def _unaudited(since_ms: int, until_ms: int) -> dict[str, Any]:
    since, until = format_instant(since_ms), format_instant(until_ms)
    return Finding(
        None,
        "coverage",
        "unaudited-hours",
        "high",
        f"no run of this chain audited {since} .. {until}, between the end of the earlier runs "
        f"and this run's window, and an --incremental run starts where the newest run ended: "
        f"audit them with --since {since} --until {until} while the source still holds them",
        details={"since": since, "until": until},
    ).to_dict()


def _policy_changed(previous: str, policy: Policy) -> dict[str, Any]:
    """The finding that the policy changed since the previous run; with term files on either
    side the digests compared are over the policy file and them (`applied_sha256`), which
    bag-info's Policy-SHA256 alone does not show, so the message says so."""
    current = policy.applied_sha256
    what = (
        f"another policy file than the previous run of the chain (Policy-SHA256 {current[:12]}"
        if not policy.term_files
        else f"another policy file or term list than the previous run of the chain (the digest "
        f"over its Policy-SHA256 and its term files' SHA-256 {current[:12]}"
    )
    return Finding(
        None,
        "coverage",
        "policy-changed",
        "info",
        f"this run applied {what}, was {previous[:12]}): verdicts may differ from earlier runs' "
        "for the same messages",
        details={"previous_policy_sha256": previous, "policy_sha256": current},
    ).to_dict()


def _already_archived(
    label: str, first_run: int, messages: int, bag: str | None = None
) -> dict[str, Any]:
    """The finding about the messages of an hour that an earlier run archived with the same
    content. One per hour and run, not per message: a recheck of a month re-reads millions of
    them, and a line each made findings and a CSV longer than a spreadsheet shows, while the bag
    of `first_run` holds each one (`auditor prove` gives its proof) and the state says which.
    Its message says where their findings are: this run reports none about them, so its own
    verdict may pass over messages `first_run` found fault with."""
    some = "1 message" if messages == 1 else f"{messages} messages"
    where = f"run {first_run}'s report" + (f" (bag {bag}, data/report/)" if bag else "")
    return Finding(
        None,
        "duplicate",
        "archived-earlier",
        "info",
        f"{some} of hour {label} already archived by run {first_run} with the same content; "
        f"not archived again, nor reported here: their findings are in {where}",
        details={"hour": label, "first_run": first_run, "messages": messages},
    ).to_dict()


def _changed(identity: str, first_run: int) -> dict[str, Any]:
    return Finding(
        identity,
        "changed",
        "content-changed-at-source",
        "high",
        f"message {identity} differs from the version archived by run {first_run}",
        details={"first_run": first_run},
    ).to_dict()


def _sorted_json(finding: dict[str, Any]) -> bytes | None:
    """orjson's sorted-keys bytes of a finding read from JSON, None where orjson cannot write
    them (`canonical_of` then takes the reference's way)."""
    try:
        return orjson.dumps(finding, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
