"""Local files as the source of `auditor run --from`: prepared once by the coordinator, then read
an hour at a time by the workers (`LocalHoursSource`).

`prepared_inputs` runs before any worker starts:
- a folder `auditor pull` wrote (it holds its checkpoint), given alone, is read where it is: an
  hour is its `<YYYYMMDDHH>.jsonl` and `<YYYYMMDDHH>.unreadable.txt`, what the pull was served
  for it, so the run archives the bytes a run from the network would have. A pull writes the
  file of every hour it completes, empty or not, so an hour of the window without one was never
  pulled: it is refused, not archived as empty. An hour whose files are not those the pull's
  checkpoint describes is archived as found, with a warning and a high finding (`_checked`): the
  coordinator only notes what the checkpoint says of each hour, and the worker hashes the hour's
  files as it reads them for the run (`digested`), so the folder is read once.
  Each file's stamp is noted, and a worker refuses an hour whose file changed since (an
  `auditor pull --refetch` into the folder meanwhile);
- other files (exports, Easemob's own hour downloads) are sorted into one file per hour by
  `LocalFileSource`, each file read once, in a folder of the run's own under `--out` (where a
  Dask cluster's workers see it too); a line that is not a record is kept, as an unreadable
  piece of its hour, for the archive and a finding.

The inputs are known by the names of the paths given, not the paths (a bag goes to people who
need not know the machine's folders), and by a SHA-256 over every file's path, size, mtime and
inode (`PreparedInputs.description`, the bag's `Source-Base-URL`): the run's settings digest
changes with the inputs, so edited inputs are a new run, never "already done" and never resumed
from hours spooled from the old ones.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timezone
from pathlib import Path
from typing import TypeVar

import orjson

from auditor.archive.untrusted import shown
from auditor.errors import ConfigError, InputError, os_reason
from auditor.jsonl import INPUT_FILE, ParsedLine, parse_lines, read_opened
from auditor.operator_files import open_operator_file, read_operator_file
from auditor.partitions import (
    HOUR_MS,
    MAX_WINDOW_MS,
    Partition,
    check_forwards,
    check_window,
    format_instant,
    parse_hour_timezone,
    partitions_between,
)
from auditor.records import Record
from auditor.sources.digested import Digest, digested
from auditor.sources.interface import HourExpired, Source, Unreadable
from auditor.sources.legacy import LegacyQuerySource
from auditor.sources.local import (
    PULL_METADATA,
    LocalFileSource,
    Origin,
    Stamp,
    changed,
    in_seconds,
    read_sorted_hour,
    stamp,
)
from auditor.sources.pull import (
    CHECKPOINT,
    CHECKPOINT_LIMIT,
    EXPIRED,
    JOURNAL,
    Checkpoint,
    read_expiry,
)
from auditor.sources.settle import PartitionResult, settle

PULLED_FILE = re.compile(r"(\d{10})(\.jsonl|\.unreadable\.txt|\.expired\.txt)")
WORK_PREFIX = "local-"
STAMPS = "stamps.json"
NAMES_SHOWN = 3

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PreparedInputs:
    """Local files ready for a run's workers: where they read the hours, and what the inputs
    are known by."""

    folder: Path
    pulled: bool  # a pull's folder (hours named by label) or sorted exports (`read_sorted_hour`)
    stamps: Path | None  # the pull folder's files as first seen
    hour_timezone: str
    description: str
    hours: tuple[Partition, ...]  # every hour the inputs hold, oldest first
    # Where the first record of the oldest and of the newest hour was read (exports only): a
    # window they stretch too far, or hours left out of it, are named by them.
    edges: tuple[Origin | None, Origin | None] = (None, None)

    def window(self, since_ms: int | None, until_ms: int | None) -> tuple[int, int]:
        """The window given, its missing ends taken from the hours the inputs hold; a pull's
        folder must hold every hour of it. A window given backwards is refused first, alone:
        the warning about the hours it leaves out would only bury the mistake."""
        if since_ms is not None and until_ms is not None:
            check_forwards(since_ms, until_ms)
        if not self.hours:
            raise InputError(f"{self.description}: no hour to audit")
        since = since_ms if since_ms is not None else self.hours[0].start_ms
        until = until_ms if until_ms is not None else self.hours[-1].end_ms
        if until <= since and None in (since_ms, until_ms):
            raise InputError(f"{self.description}: no hour in the window given")
        if None in (since_ms, until_ms) and until - since > MAX_WINDOW_MS:
            raise InputError(self._stretched(since, until, since_ms is None, until_ms is None))
        check_window(since, until)
        if self.pulled:
            held = set(self.hours)
            zone = parse_hour_timezone(self.hour_timezone)
            missing = [p.label(zone) for p in partitions_between(since, until) if p not in held]
            if missing:
                listed = ", ".join(missing[:NAMES_SHOWN]) + (
                    ", ..." if len(missing) > NAMES_SHOWN else ""
                )
                raise InputError(
                    f"{shown(self.folder)}: {len(missing)} hour(s) of the window were not pulled "
                    f"({listed}; not ready at the source, or the pull was stopped): pull them, "
                    "or audit a window of pulled hours"
                )
        left_out = [p for p in self.hours if not since <= p.start_ms < until]
        if left_out:
            edge = self.edges[0] if left_out[0] == self.hours[0] else self.edges[1]
            log.warning(
                "%s: %d hour(s) the inputs hold lie outside the window (%s .. %s) and are not "
                "audited by this run: give --since and --until around them to audit them%s",
                self.description,
                len(left_out),
                format_instant(left_out[0].start_ms),
                format_instant(left_out[-1].end_ms),
                "" if edge is None else f"; the farthest was first read at {edge}",
            )
        return since, until

    def _stretched(self, since: int, until: int, from_start: bool, to_end: bool) -> str:
        """Why a window taken from the inputs is longer than one run audits, naming where the
        records that set its ends were read: a timestamp in seconds puts its record in 1970."""
        edges = [
            edge
            for edge, taken in zip(self.edges, (from_start, to_end), strict=True)
            if taken and edge
        ]
        wrong = [edge for edge in edges if edge.timestamp and in_seconds(edge.timestamp)]
        named = "; ".join(map(str, wrong or edges))
        cause = f": the record that sets it was read at {named}" if named else ""
        return (
            f"{self.description}: the records span {format_instant(since)} .. "
            f"{format_instant(until)}, more than the {MAX_WINDOW_MS // HOUR_MS:,} hours (ten "
            f"years) one run may audit{cause}; correct a wrong timestamp (Easemob's are in "
            "milliseconds) and run again, or give --since and --until around the hours to audit "
            "(what lies outside them is not audited by that run)"
        )


@contextmanager
def prepared_inputs(
    inputs: Sequence[str | Path], hour_timezone: str | None, work_parent: Path
) -> Iterator[PreparedInputs]:
    """The inputs prepared for a run (see the module), in a folder of their own under
    `work_parent` that is removed on the way out; `hour_timezone` None for the pull's own zone,
    or UTC."""
    paths = [Path(item) for item in inputs]
    for path in paths:
        if not path.exists():
            raise InputError(f"{shown(path)}: no such file or folder")
        if not path.is_dir() and _is_pull_folder(path.parent):
            # read as an export, a record served in another hour's file would move to its own
            # hour, and the pieces kept as unreadable beside it would be left out
            raise ConfigError(
                f"{shown(path)} is in a folder auditor pull wrote: give --from the folder "
                f"({shown(path.parent)}), and --since and --until for some of its hours"
            )
    pulled = [path for path in paths if _is_pull_folder(path)]
    if pulled and len(paths) > 1:
        raise ConfigError(
            f"{shown(pulled[0])} is a folder auditor pull wrote: give it alone to --from, or "
            "give the other files in a run of their own"
        )
    with work_folder(work_parent.resolve()) as work:  # workers may run in another folder
        if pulled:
            yield _prepared_pull(paths[0], hour_timezone, work)
            return
        zone = hour_timezone or "UTC"
        source = LocalFileSource(
            paths, parse_hour_timezone(zone), keep_unreadable=True, spool_parent=work
        )
        try:
            hours = tuple(source.partitions())
            edges = (source.origin(hours[0]), source.origin(hours[-1])) if hours else (None, None)
            files = [(str(path.resolve()), list(seen)) for path, seen in source.stamps.items()]
            yield PreparedInputs(
                folder=source.sorted_folder(),
                pulled=False,
                stamps=None,
                hour_timezone=zone,
                description=_described(paths, len(files), files),
                hours=hours,
                edges=edges,
            )
        finally:
            source.close()


def _is_pull_folder(path: Path) -> bool:
    return path.is_dir() and ((path / CHECKPOINT).exists() or (path / JOURNAL).exists())


def _prepared_pull(given: Path, hour_timezone: str | None, work: Path) -> PreparedInputs:
    """A pull's folder, read where it is: its hours, and its files' stamps noted in `work`."""
    folder = given.resolve()
    zone = _pull_zone(folder, hour_timezone)
    tz = parse_hour_timezone(zone)
    stamps: dict[str, Stamp] = {}
    hours: list[Partition] = []
    for entry in sorted(folder.iterdir()):
        match = PULLED_FILE.fullmatch(entry.name)
        if match is not None:
            try:
                hour = Partition.from_label(match[1], tz)
            except ConfigError:
                raise InputError(f"{shown(entry)}: not named for an hour (YYYYMMDDHH)") from None
            stamps[entry.name] = stamp(entry)
            if match[2] in (".jsonl", EXPIRED):
                hours.append(hour)
        elif entry.suffix.lower() in (".jsonl", ".json", ".gz") and entry.name not in PULL_METADATA:
            raise InputError(
                f"{shown(entry)}: not a file auditor pull writes, in the folder it pulled into; "
                "move it out, or audit it in a run of its own"
            )
    described = _checkpoint_entries(folder)
    (work / STAMPS).write_bytes(orjson.dumps({"stamps": stamps, "described": described}))
    return PreparedInputs(
        folder=folder,
        pulled=True,
        stamps=work / STAMPS,
        hour_timezone=zone,
        description=_described([given], len(stamps), sorted(stamps.items())),
        hours=tuple(sorted(hours)),
    )


# What a pull's checkpoint says of an hour that its file cannot: (key, least worth reporting,
# what goes unreported without it), for `PartitionResult`'s field of the same name.
PULL_NOTES = (
    ("files", 2, "{} different files the source served for the hour"),
    ("earlier", 1, "{} record(s) of an earlier pull the source no longer served"),
)


# What a worker needs of an hour's checkpoint entry to check its files (`_checked`).
CHECKED = ("records", "sha256", "unreadable", "unreadable_sha256", "files", "earlier")


def _checkpoint_entries(folder: Path) -> dict[str, dict[str, dict[str, object]]] | None:
    """What the pull's checkpoint says of each hour (`CHECKED`), for the workers to check the
    hour's files against as they read them: `hours` as recorded, and `renamed`, what its
    journal says of hour files a killed pull renamed and had not recorded yet; None when there
    is no checkpoint to check against (a pull killed before it wrote one), or it is damaged,
    with a warning."""
    recorded = _recorded_zone(folder)
    if recorded is None:
        return None
    zone = recorded if recorded == "UTC" else f"UTC{recorded}"
    try:
        checkpoint = Checkpoint.load(folder, zone, read_only=True)
    except InputError as damaged:  # the hours' own files are what the run archives
        log.warning(
            "%s; hours served as different files, or holding records the source no longer "
            "served, or whose files were altered since the pull, go unreported",
            damaged,
        )
        return None
    return {
        name: {
            label: {key: entry[key] for key in CHECKED if key in entry}
            for label, entry in entries.items()
        }
        for name, entries in (
            ("hours", checkpoint.hours),
            ("renamed", checkpoint.renamed_unrecorded()),
        )
    }


def _checked(
    folder: Path, label: str, entry: dict[str, object] | None, hour: Digest, pieces: Digest | None
) -> dict[str, object]:
    """What the pull's checkpoint says of the hour (`entry`, None when it describes none) that
    its files cannot, found as the hour was read (`hour`, `pieces`), for the run to report as
    findings: that the pull kept what the source served in different files together (`files`)
    or kept records the source no longer served on `--refetch` (`earlier`), only while the hour
    file is still the one the checkpoint describes; and, when the hour's files are no longer
    those the checkpoint describes (edited, cut short, replaced or added since the pull), what
    it says of them and what was found (`altered`), with a warning: the run archives what the
    folder holds, and says so."""
    path = folder / f"{label}.jsonl"
    if entry is None:
        log.warning(
            "%s: an hour file the pull's checkpoint does not describe (%d lines found; a "
            "pull killed before it recorded the hour leaves one: pull again to record it); "
            "archived as it is now, with a high finding",
            shown(path),
            hour.lines,
        )
        seen = {"lines": hour.lines, "sha256": hour.sha256}
        return {"altered": {"file": shown(path.name), "checkpoint": None, "found": seen}}
    if not isinstance(entry.get("sha256"), str):
        return {}
    notes: dict[str, object] = {
        key: value
        for key, least, _what in PULL_NOTES
        if type(value := entry.get(key)) is int and value >= least
    }
    if notes and hour.sha256 != entry["sha256"]:
        lost = " and the ".join(
            what.format(notes[key]) for key, _, what in PULL_NOTES if key in notes
        )
        log.warning(
            "%s: not the file the pull's checkpoint describes, so the %s go unreported; "
            "pull the hour again with --refetch",
            shown(path),
            lost,
        )
        notes = {}
    altered = _altered(folder, label, entry, hour, pieces)
    if altered is not None:
        notes["altered"] = altered
    return notes


def _altered(
    folder: Path, label: str, entry: dict[str, object], hour: Digest, pieces: Digest | None
) -> dict[str, object] | None:
    """What the checkpoint says of the hour's files and what was found, when they differ (the
    hour file by its sha256, its unreadable pieces by their sha256 too, or by their number in a
    checkpoint from before it kept theirs), each named in a warning; else None."""
    path, pieces_path = folder / f"{label}.jsonl", folder / f"{label}.unreadable.txt"
    records, described = entry.get("records"), entry.get("unreadable", 0)
    recorded = entry.get("unreadable_sha256")
    kept, kept_sha256 = (pieces.lines, pieces.sha256) if pieces is not None else (0, None)
    same_pieces = kept == described and (not isinstance(recorded, str) or kept_sha256 == recorded)
    if hour.sha256 == entry["sha256"] and same_pieces:
        return None
    said: dict[str, object] = {"records": records, "sha256": entry["sha256"]}
    seen: dict[str, object] = {"lines": hour.lines, "sha256": hour.sha256}
    if hour.sha256 != entry["sha256"]:
        log.warning(
            "%s: not the file the pull's checkpoint describes (%s records, %d lines found); "
            "archived as it is now, with a high finding",
            shown(path),
            records,
            hour.lines,
        )
    if not same_pieces:
        said["pieces"], seen["pieces"] = described, kept
        if isinstance(recorded, str):
            said["pieces_sha256"], seen["pieces_sha256"] = recorded, kept_sha256
    if kept != described:
        log.warning(
            "%s: not the file the pull's checkpoint describes (%s unreadable pieces, %d found); "
            "archived as it is now, with a high finding",
            shown(pieces_path),
            described,
            kept,
        )
    elif not same_pieces:
        log.warning(
            "%s: not the file the pull's checkpoint describes (its %s unreadable pieces, sha256 "
            "%s; sha256 %s found); archived as it is now, with a high finding",
            shown(pieces_path),
            described,
            recorded,
            kept_sha256,
        )
    return {"file": shown(path.name), "checkpoint": said, "found": seen}


def _pull_zone(folder: Path, given: str | None) -> str:
    """The zone the pull named its hours in; one given must be the same."""
    recorded = _recorded_zone(folder)
    if given is None:
        return recorded or "UTC"
    if recorded is not None and parse_hour_timezone(recorded) != parse_hour_timezone(given):
        raise ConfigError(
            f"{shown(folder)} holds hours named in {recorded}, not {given}: give the pull's "
            "--hour-timezone, or none"
        )
    return given


def _recorded_zone(folder: Path) -> str | None:
    """The zone in the pull's checkpoint (`UTC`, `UTC+08:00`) as an offset (`+08:00`), or None
    for a pull killed before it wrote one."""
    path = folder / CHECKPOINT
    if path.exists():
        data = read_operator_file(path, "checkpoint of auditor pull", CHECKPOINT_LIMIT)
    else:
        path = folder / JOURNAL
        with open_operator_file(path, "checkpoint journal of auditor pull") as handle:
            data = handle.readline()
        if not data.endswith(b"\n"):
            return None
    try:
        recorded = orjson.loads(data)["hour_timezone"]
        return recorded.removeprefix("UTC") or "UTC"
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise InputError(f"{shown(path)}: not a checkpoint of auditor pull") from None


def _described(paths: list[Path], files: int, identity: object) -> str:
    """The names of the paths given, how many files they hold, and the first 64 bits of the
    SHA-256 of `identity` (each file's path and stamp)."""
    names = [shown(path.name or path.resolve().name) for path in paths]
    if len(names) > NAMES_SHOWN:
        names[NAMES_SHOWN:] = [f"{len(names) - NAMES_SHOWN} more"]
    try:
        stamped = orjson.dumps(identity)
    except orjson.JSONEncodeError:  # a name not in UTF-8: its bytes, as the file system has them
        stamped = json.dumps(identity, ensure_ascii=False).encode(errors="surrogateescape")
    digest = hashlib.sha256(stamped).hexdigest()
    return f"local files {', '.join(names)} ({files} files, stat sha256 {digest[:16]})"


@contextmanager
def work_folder(parent: Path) -> Iterator[Path]:
    """A folder of this run's own under `parent`, locked while in use; the folders of runs
    killed before they removed theirs are removed first (their lock died with them)."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{shown(parent)}: cannot create it ({os_reason(error)})") from None
    for stale in parent.glob(f"{WORK_PREFIX}*"):
        if _abandoned(stale):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=parent))
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(descriptor)


def _abandoned(folder: Path) -> bool:
    """Whether no process holds the lock of a work folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


class LocalHoursSource(Source):
    """The hours of prepared local files (`prepared_inputs`), each read from its own file."""

    name = "local"
    # Files pulled through the legacy API hold its entity fields, and neither a pull folder nor
    # an export says which API it came from: hour-file records never carry them.
    entity_fields = LegacyQuerySource.entity_fields

    def __init__(
        self, folder: Path, hour_timezone: timezone, pulled: bool, stamps: Path | None = None
    ) -> None:
        self.folder = folder
        self.hour_timezone = hour_timezone
        self.pulled = pulled
        self.stamps = stamps
        self._seen: dict[str, Stamp] | None = None
        self._described: dict[str, dict[str, dict[str, object]]] | None = None

    def describe(self) -> dict[str, str]:
        return {
            "api": self.name,
            "folder": self.folder.name,
            "hour_timezone": self.hour_timezone.tzname(None) or "UTC",
        }

    def fetch(self, partition: Partition, spill_dir: Path | None = None) -> PartitionResult:
        """As `Source.fetch`, with what the pull's checkpoint says of the hour that its files
        cannot (`_checked`), checked against them as they are read."""
        if not self.pulled:
            return super().fetch(partition, spill_dir)
        label, read = partition.label(self.hour_timezone), _Read()
        result = settle(partition, self._pulled(label, read), self.entity_fields, spill_dir)
        described = self._checkpoint()
        if described is None or read.hour is None:
            return result
        entry = described["hours"].get(label)
        renamed = described["renamed"].get(label)
        if renamed is not None and renamed.get("sha256") == read.hour.sha256:
            entry = renamed  # the file a killed pull renamed, as its journal line describes it
        notes = _checked(self.folder, label, entry, read.hour, read.pieces)
        return replace(result, **notes) if notes else result

    def served(self, partition: Partition) -> Iterator[Record | Unreadable]:
        if not self.pulled:
            return read_sorted_hour(self.folder, partition)
        return self._pulled(partition.label(self.hour_timezone), _Read())

    def _pulled(self, label: str, read: _Read) -> Iterator[Record | Unreadable]:
        """The hour file's records (a line that is not one as an unreadable piece), then the
        pieces the pull kept as unreadable; each file's digest noted in `read` once read."""
        hour, pieces = f"{label}.jsonl", f"{label}.unreadable.txt"
        seen = self._stamps()
        if hour not in seen and f"{label}{EXPIRED}" in seen:
            raise self._expired(label, f"{label}{EXPIRED}")
        if hour not in seen:
            raise InputError(f"{shown(self.folder / hour)}: the hour was not pulled; pull it first")
        for parsed in self._read(hour, lambda path: _records(path, read)):
            if parsed.record is None:
                yield Unreadable(
                    f"{hour}:{parsed.line}", parsed.error or "not a record", parsed.raw
                )
            else:
                yield parsed.record
        if pieces in seen:
            for number, raw in enumerate(self._read(pieces, lambda p: _lines(p, read)), start=1):
                yield Unreadable(f"{pieces}:{number}", _reason(raw), raw)
        elif (self.folder / pieces).exists():
            raise changed(self.folder / pieces, "it appeared after the run began")

    def _expired(self, label: str, name: str) -> HourExpired:
        """The hour the pull recorded as expired, as the source said then (judged when the
        pull wrote its file)."""
        (reason,) = self._read(name, lambda path: iter((read_expiry(path),)))
        gone = HourExpired.from_reason(label, reason, self._stamps()[name][1] // 1_000_000)
        if gone is None:
            raise InputError(
                f"{shown(self.folder / name)}: not an expiry file auditor pull wrote; pull the "
                "hour again with --refetch"
            )
        return gone

    def _read(self, name: str, reader: Callable[[Path], Iterator[T]]) -> Iterator[T]:
        """What `reader` reads from a file of the folder, refused when the file is not the one
        the run began with, or changes as it is read."""
        path, expected = self.folder / name, self._stamps()[name]
        if stamp(path) != expected:
            raise changed(path, "since the run began")
        yield from reader(path)
        if stamp(path) != expected:
            raise changed(path, "as it was read")

    def _stamps(self) -> dict[str, Stamp]:
        if self._seen is None:
            loaded = orjson.loads(self.stamps.read_bytes()) if self.stamps else {}
            self._seen = {name: tuple(value) for name, value in loaded.get("stamps", {}).items()}
            self._described = loaded.get("described")
        return self._seen

    def _checkpoint(self) -> dict[str, dict[str, dict[str, object]]] | None:
        """What the pull's checkpoint says of each hour (`_checkpoint_entries`)."""
        self._stamps()
        return self._described


@dataclass(slots=True)
class _Read:
    """The digests of an hour's files in a pull's folder, each noted once it has been read."""

    hour: Digest | None = None
    pieces: Digest | None = None


def _records(path: Path, read: _Read) -> Iterator[ParsedLine]:
    """The lines of an hour file (`jsonl.read_file`), hashed on the way."""
    with digested(path, INPUT_FILE) as (reader, raw):
        yield from read_opened(reader, str(path))
        read.hour = raw.digest()


def _lines(path: Path, read: _Read) -> Iterator[bytes]:
    """The lines of a pull's `.unreadable.txt`, each a piece as served (its line breaks were
    written as spaces), hashed on the way."""
    with digested(path, "file of unreadable lines") as (reader, raw):
        for line in reader:
            yield line[:-1] if line.endswith(b"\n") else line
        read.pieces = raw.digest()


def _reason(raw: bytes) -> str:
    """Why a piece the pull kept is not a record, found again (the pull kept the bytes only)."""
    found: list[ParsedLine] = list(parse_lines([raw], "")) if raw.strip() else []
    for parsed in found:
        if parsed.record is None and parsed.error:
            return parsed.error
    return "not a record (so kept by auditor pull)"
