"""`auditor pull`: a window of history into one file per hour, resumable after any crash.

Each hour is written as `<YYYYMMDDHH>.jsonl` (the label in the source's hour zone; the records as
received, one JSON line each, settled as in `settle.py`) under a temporary name, fsynced, journaled
and renamed: its checkpoint entry (records, sha256) is appended to `checkpoint.journal` before the
rename (`Checkpoint.renaming`), the hour's one journal line, so every hour file in the folder is
vouched for by a line or the checkpoint whenever the pull is killed, and the line of a file never
renamed matches no file. The journal is folded into `checkpoint.json` (written the same way as an
hour) after each of the first hours and then less often as it grows (`Checkpoint.added`). Served
data that is not a record is kept verbatim, one piece a line, in `<YYYYMMDDHH>.unreadable.txt`,
written before its hour file and
counted in the checkpoint with the file's size and sha256 (a run from the folder checks it
against them), never dropped (a `--refetch` keeps those only an earlier pull got
after the new fetch's). An hour the source no longer keeps (`HourExpired`) is recorded too, with
no records, so no later pull asks for it again: `<YYYYMMDDHH>.expired.txt` holds why in one
line, written like an hour file (`.txt`: a run or `validate` reading the folder takes no such
file for records). A run killed at any moment leaves complete hour files, a checkpoint listing
only complete hours, and at most a stray temporary file, so the next run skips
what is done and ends with the same bytes an uninterrupted run would have written. An hour file
renamed after its journal line is listed as the line describes it (found with the sha256 the line
names), even over an older entry: fetching the hour again would lose what the checkpoint says of
it that its file cannot (`files`: served as different files; `earlier`: records a `--refetch`
kept that the source no longer serves). Expiry files, and hour files whose line a crash or a
full disk cut short (dropped, and cut off the journal), are adopted from disk rather than fetched
again. The checkpoint and `conflicts.jsonl` are pure functions of the hour files, with no
clock in them, for the same reason; a pull that ends leaves no journal, unless it holds a line
an older auditor wrote without its entry, of an hour outside its window.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from auditor import crashpoints
from auditor.archive.untrusted import shown
from auditor.errors import ConfigError, InputError, LockHeldError, os_reason
from auditor.fsutil import fsync_folders, make_folders, write_atomically
from auditor.jsonl import read_file, record_line
from auditor.operator_files import open_operator_file, read_operator_file
from auditor.partitions import Partition, check_forwards, format_instant, partitions_between
from auditor.processes import raise_kept, stops_kept
from auditor.records import Record, msg_id
from auditor.sources.interface import (
    HourExpired,
    PartitionNotReady,
    PartitionResult,
    Source,
    Unreadable,
)
from auditor.sources.settle import settle

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.json"
JOURNAL = "checkpoint.journal"
CONFLICTS = "conflicts.jsonl"
FORMAT = "auditor-pull/1"
# The checkpoint and its journal are read whole: about 150 bytes an hour (a century of hours is
# 130 MB) plus the msg_ids in conflict; a regular file past this is not one.
CHECKPOINT_LIMIT = 256 << 20
HOUR_FILE = "pulled hour file"
EXPIRED = ".expired.txt"
EXPIRY_LIMIT = 64 << 10  # an expiry file holds one line: the reason, the source's answer shortened


@dataclass(frozen=True, slots=True)
class HourOutcome:
    """What happened to one hour: `pulled`, `done` (by an earlier run), `expired` (the source no
    longer keeps it: recorded with no records, `detail` says why) or `not_ready` (`clocks`
    names how the source's clock stood against this machine's when they differ, since a wrong
    clock is why an hour stays not ready)."""

    label: str
    partition: Partition
    status: str
    records: int = 0
    duplicates: int = 0
    conflicts: int = 0
    outside: int = 0
    unreadable: int = 0
    detail: str = ""
    clocks: str = ""
    files: int = 1  # different files the source served for the hour, kept together
    earlier: int = 0  # records an earlier pull got that the source no longer serves, kept


@dataclass(frozen=True, slots=True)
class PullSummary:
    out_dir: Path
    hours: tuple[HourOutcome, ...]

    @property
    def records(self) -> int:
        return sum(hour.records for hour in self.hours)

    def with_status(self, status: str) -> list[HourOutcome]:
        return [hour for hour in self.hours if hour.status == status]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file in the pull folder, refused unless it is a regular file (a FIFO in
    its place waited for a writer for ever)."""
    digest = hashlib.sha256()
    with open_operator_file(path, HOUR_FILE) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """One pull at a time per output folder (an flock on the folder, released on any exit)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeldError(f"another auditor pull is writing to {shown(folder)}") from None
        yield
    finally:
        os.close(descriptor)


class _Written:
    """Counts an hour's records as its file is written: how many, and the versions of each
    conflicting msg_id, for the checkpoint. The records pass through once (a spilled hour can
    be read only once)."""

    def __init__(self, conflicts: Iterable[str]) -> None:
        self.records = 0
        self._wanted = set(conflicts)
        self.conflicts: dict[str, int] = {}

    def count(self, record: Record) -> None:
        self.records += 1
        if self._wanted:
            identity = msg_id(record)
            if identity in self._wanted:
                self.conflicts[identity] = self.conflicts.get(identity, 0) + 1

    def lines(self, records: Iterable[Record]) -> Iterator[bytes]:
        """Each record's line, counted as it goes."""
        for record in records:
            crashpoints.reached("pull.writing")
            self.count(record)
            yield record_line(record)


def _hour_entries(hours: object) -> dict[str, dict[str, Any]]:
    """`hours` of a checkpoint, each hour's entry a mapping; TypeError for any other shape (a
    file edited by hand), which the readers answer as a damaged checkpoint: an entry that was a
    list stopped `run --from` as an internal error (exit 70)."""
    if not isinstance(hours, dict) or not all(isinstance(entry, dict) for entry in hours.values()):
        raise TypeError("not a mapping of hours to entries")
    return hours


class Checkpoint:
    """The hours of a folder that are complete: records, sha256 and conflicting msg_ids each."""

    def __init__(self, folder: Path, zone: str) -> None:
        self.folder = folder
        self.zone = zone
        self.hours: dict[str, dict[str, Any]] = {}
        self._unsaved: list[str] = []
        # What the hour file about to be renamed says nothing of itself (`renaming`), by label
        self.notes: dict[str, dict[str, Any]] = {}
        self._ahead: dict[str, Any] = {}  # the `entry` of each `renaming` line, for `_pending`

    @classmethod
    def load(cls, folder: Path, zone: str, read_only: bool = False) -> Checkpoint:
        """The saved checkpoint with the journal's hours over it: an hour pulled again by
        `--refetch` since the last save has its new entry there. `read_only` (a run reading the
        folder) leaves a journal line a crash cut short in place, dropped all the same."""
        checkpoint = cls(folder, zone)
        path = folder / CHECKPOINT
        if path.exists():
            data = read_operator_file(path, "checkpoint of auditor pull", CHECKPOINT_LIMIT)
            try:
                document = orjson.loads(data)
                hours = _hour_entries(document["hours"])
                recorded_zone = document["hour_timezone"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise InputError(
                    f"{shown(path)}: not a checkpoint of auditor pull; use another --out"
                ) from None
            checkpoint._check_zone(recorded_zone)
            checkpoint.hours = dict(hours)
        for label, entry in checkpoint._journaled(read_only):
            checkpoint.hours[label] = entry
            checkpoint._unsaved.append(label)
        return checkpoint

    def _check_zone(self, recorded_zone: object) -> None:
        if recorded_zone != self.zone:
            raise ConfigError(
                f"{shown(self.folder)} holds hours labelled in {recorded_zone}, not {self.zone}; "
                "pull with the same --hour-timezone or into another --out"
            )

    def _journaled(self, read_only: bool) -> Iterator[tuple[str, dict[str, Any]]]:
        """The journal's (label, entry) pairs.

        A last line without its newline is an append a crash or a full disk cut short, the one
        shape an append-only file is left in by them: it is dropped and cut off the file (as
        SQLite drops a WAL's torn last frame), or the next append would be glued to it. Its hour
        loses nothing: it is adopted from its file. A damaged line before the last is not that
        shape, and is refused; the journal only saves a resumed pull from reading its hours'
        files, so the line says that removing it is safe."""
        path = self.folder / JOURNAL
        if not path.exists():
            return
        data = read_operator_file(path, "checkpoint journal of auditor pull", CHECKPOINT_LIMIT)
        lines = data.splitlines(keepends=True)
        if lines and not lines[-1].endswith(b"\n"):
            if not read_only:
                _cut_torn_line(path, len(data) - len(lines[-1]), len(lines))
            lines.pop()
        for number, line in enumerate(lines, start=1):
            try:
                item = orjson.loads(line)
                label, recorded_zone = item["hour"], item["hour_timezone"]
                if "renaming" in item:
                    self._check_zone(recorded_zone)
                    self.notes[label] = dict(item["renaming"])
                    self._ahead[label] = item.get("entry")
                    continue
                entry = _hour_entries({label: item["entry"]})[label]
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise InputError(
                    f"{shown(path)}: line {number} of {len(lines)} is damaged (not a journal "
                    "entry of auditor pull, and not a last line cut short by a crash); remove "
                    "the journal and pull again: the hours it lists are read again from their "
                    "files"
                ) from None
            self._check_zone(recorded_zone)
            yield label, entry

    def renaming(self, label: str, entry: dict[str, Any]) -> None:
        """Journals the `entry` of an hour file, synced and about to be renamed into place: the
        hour's one journal line, so that no kill leaves a renamed file its folder does not
        vouch for (a run from the folder takes it as the line describes it, and the next pull
        lists it by hashing it, not reading its records: `complete_file`), while a file never
        renamed, or changed since, matches no line.

        The line names the file's sha256 and what the checkpoint says of it beyond its records
        (`files`, `earlier`) under `renaming`, and holds the whole `entry` too: an auditor from
        before these lines (56a4a85 to 42b6105) takes every journal line for an entry and
        refused the folder at one without ("line N is damaged"); with it, such a one takes the
        hour as complete once its file is renamed, and fetches it again if it was not."""
        notes = {key: entry[key] for key in ("sha256", "files", "earlier") if key in entry}
        self._journal({"hour": label, "renaming": notes, "entry": entry})
        crashpoints.reached("pull.noted")
        self.notes[label], self._ahead[label] = notes, entry

    def _journal(self, line: dict[str, Any]) -> None:
        line["hour_timezone"] = self.zone
        with (self.folder / JOURNAL).open("ab") as journal:
            journal.write(orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n")

    def _pending(self) -> list[bytes]:
        """The `renaming` lines of hour files on disk that no entry lists yet: those without an
        entry (written by an older auditor) or whose entry names another sha256, which
        `_take_renamed` cannot list; a pull of the hour adopts their files. A line whose file
        never came is dropped. Hashes a file only for such a line, which a pull that ends well
        leaves none of."""
        kept = []
        for label, noted in sorted(self.notes.items()):
            digest = noted.get("sha256")
            path = self.folder / f"{label}.jsonl"
            if self.hours.get(label, {}).get("sha256") == digest or not path.exists():
                continue
            if file_sha256(path) == digest:
                line = {"hour": label, "renaming": noted, "hour_timezone": self.zone}
                if self._ahead.get(label) is not None:
                    line["entry"] = self._ahead[label]
                kept.append(orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n")
        return kept

    def _take_renamed(self) -> None:
        """Lists each hour file renamed after its `renaming` line and not recorded since (the
        pull was killed, or stopped by an error; an hour outside the window of the pull that
        read the line) as the line describes it, once the file is found with the sha256 the
        line names; hashes only the files of such lines."""
        for label, entry in self.renamed_unrecorded().items():
            path = self.folder / f"{label}.jsonl"
            if path.exists() and file_sha256(path) == entry["sha256"]:
                self.add(label, entry)
                self._unsaved.append(label)

    def renamed_unrecorded(self) -> dict[str, dict[str, Any]]:
        """The entry each `renaming` line holds, by label, unless a later line recorded it: what
        a pull killed or stopped between renaming an hour file and recording it would have
        recorded, vouching for the file only while it has the sha256 the line names (a line
        from before entries were journaled with it, or edited out of shape, is left out)."""
        return {
            label: entry
            for label, entry in self._ahead.items()
            if _listable(entry)
            and entry["sha256"] == self.notes[label].get("sha256")
            and self.hours.get(label) != entry
        }

    def complete_file(self, label: str) -> dict[str, Any] | None:
        """The entry of an hour whose file is on disk with the recorded sha256, or with the one
        its `renaming` line names (the hour listed then as that line describes it, over any
        older entry: the file was renamed after it), else None. Hashes the file once."""
        entry = self.hours.get(label)
        ahead = self.renamed_unrecorded().get(label) if label in self._ahead else None
        path = self.folder / f"{label}.jsonl"
        listed = entry is not None and "expired" not in entry
        if not (listed or ahead) or not path.exists():
            return None
        digest = file_sha256(path)
        if ahead is not None and digest == ahead["sha256"]:
            self.add(label, ahead)
            self._unsaved.append(label)
            return ahead
        if entry is None or not listed:
            return None
        if digest != entry.get("sha256"):
            if self.notes.get(label, {}).get("sha256") != digest:  # else one to adopt
                log.warning("%s does not match its checkpoint; pulling the hour again", shown(path))
            return None
        return entry

    def add(self, label: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Lists the hour file with its `hour_entry`."""
        self.hours[label] = entry
        self._settled(label)  # adopted, or superseded by this file
        return entry

    def _settled(self, label: str) -> None:
        self.notes.pop(label, None)
        self._ahead.pop(label, None)

    def complete_expiry(self, label: str) -> dict[str, Any] | None:
        """The entry of an hour recorded as expired whose expiry file is on disk as recorded."""
        entry = self.hours.get(label)
        path = expired_path(self.folder, label)
        if entry is None or "expired" not in entry or not path.exists():
            return None
        return entry if read_expiry(path) == entry["expired"] else None

    def add_expired(self, partition: Partition, label: str, reason: str) -> dict[str, Any]:
        entry = {
            "start": format_instant(partition.start_ms),
            "records": 0,
            "conflicts": {},
            "expired": reason,
        }
        self.hours[label] = entry
        self._settled(label)
        return entry

    def added(self, label: str, journaled: bool = False) -> None:
        """Records the hour just added: a line appended to the journal unless it holds one
        already (`journaled`: its `renaming` line), which a kill leaves whole or cut (its hour
        is then adopted from its file, or fetched again if `--refetch` changed it). The whole
        checkpoint is saved after each of the first eight hours, then once the journal holds
        an eighth of the hours listed: saving it after each of N hours wrote N²/2 entries (a
        year of hours: 38 million); this way the entries written stay under nine times the
        final count."""
        if not journaled:
            self._journal({"hour": label, "entry": self.hours[label]})
        crashpoints.reached("pull.journaled")
        self._unsaved.append(label)
        if len(self._unsaved) * 8 >= len(self.hours):
            self.save()

    def save(self) -> None:
        """Writes every entry to `checkpoint.json`, hours renamed and not yet recorded included
        (`_take_renamed`: a pull stopped by an error between the two), then drops the journal
        it now holds, but for the `renaming` lines without an entry, of hour files renamed and
        not yet adopted (`_pending`)."""
        self._take_renamed()
        document = {"format": FORMAT, "hour_timezone": self.zone, "hours": self.hours}
        write_atomically(
            self.folder / CHECKPOINT,
            [orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), b"\n"],
        )
        crashpoints.reached("pull.checkpointed")
        pending = self._pending()
        if pending:
            write_atomically(self.folder / JOURNAL, pending)
        else:
            (self.folder / JOURNAL).unlink(missing_ok=True)
        self._unsaved = []
        lines = (
            orjson.dumps(
                {"hour": label, "msg_id": identity, "variants": variants},
                option=orjson.OPT_SORT_KEYS,
            )
            + b"\n"
            for label in sorted(self.hours)
            for identity, variants in sorted(self.hours[label]["conflicts"].items())
        )
        write_atomically(self.folder / CONFLICTS, lines)


def _listable(entry: object) -> bool:
    """Whether a journal line's `entry` has what the pull reads of an hour's entry: one edited
    out of that shape stopped the pull with an internal error once listed."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and type(entry.get("records")) is int
        and isinstance(entry.get("conflicts"), dict)
    )


def hour_entry(
    partition: Partition,
    written: _Written,
    digest: str,
    unreadable: int = 0,
    files: int = 1,
    earlier: int = 0,
    pieces: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """What the checkpoint says of an hour file, and of its unreadable pieces' file (`pieces`:
    its size and sha256), which a run from the folder checks them against."""
    entry = {
        "start": format_instant(partition.start_ms),
        "records": written.records,
        "sha256": digest,
        "conflicts": written.conflicts,
    }
    if unreadable:
        entry["unreadable"] = unreadable
    if unreadable and pieces is not None:
        entry["unreadable_bytes"], entry["unreadable_sha256"] = pieces
    if files > 1:
        entry["files"] = files
    if earlier:
        entry["earlier"] = earlier
    return entry


def _cut_torn_line(path: Path, whole: int, number: int) -> None:
    """Truncates the journal to its whole lines, saying so in one line."""
    log.warning(
        "%s: its last line (%d) was cut short by a crash or a full disk: dropped (%d bytes), "
        "its hour is read again from its file",
        shown(path),
        number,
        path.stat().st_size - whole,
    )
    os.truncate(path, whole)


def unreadable_path(folder: Path, label: str) -> Path:
    return folder / f"{label}.unreadable.txt"


def _keep_unreadable(
    folder: Path, label: str, pieces: Sequence[Unreadable], earlier: _EarlierLines
) -> tuple[int, str] | None:
    """Writes the hour's unreadable pieces, then the `earlier` lines (or removes a stale file
    when there are none), a piece at a time: an hour of garbage is not held whole. Returns the
    file's size and sha256, None without one."""
    path = unreadable_path(folder, label)
    if not pieces and not earlier:
        path.unlink(missing_ok=True)
        return None
    size = 0

    def counted(lines: Iterable[bytes]) -> Iterator[bytes]:
        nonlocal size
        for line in lines:
            size += len(line)
            yield line

    new = (piece.raw.replace(b"\n", b" ") + b"\n" for piece in pieces)
    digest = write_atomically(path, counted(chain(new, (line + b"\n" for line in earlier))))
    return size, digest


def _piece_key(line: bytes) -> bytes:
    """What `_earlier_pieces` counts a piece by: 16 bytes however long the piece."""
    return hashlib.blake2b(line, digest_size=16).digest()


@dataclass(frozen=True)
class _EarlierLines:
    """The lines of the hour's unreadable file a refetch keeps, by their numbers: read again
    from the file when written, so a large file's lines are never held together."""

    path: Path | None = None
    numbers: array[int] = field(default_factory=lambda: array("Q"))

    def __len__(self) -> int:
        return len(self.numbers)

    def __iter__(self) -> Iterator[bytes]:
        if self.path is None or not self.numbers:
            return
        wanted = iter(self.numbers)
        next_number = next(wanted)
        with open_operator_file(self.path, "file of unreadable lines") as handle:
            for number, line in enumerate(handle):
                if number == next_number:
                    yield line.removesuffix(b"\n")
                    next_number = next(wanted, -1)
                    if next_number < 0:
                        return


def _earlier_pieces(folder: Path, label: str, pieces: Sequence[Unreadable]) -> _EarlierLines:
    """The lines of the hour's unreadable file that the new fetch's `pieces` do not hold (each as
    many more times as the file holds it): what a `--refetch` keeps of an earlier pull's
    unreadable data, as it keeps the records the source no longer serves; the source's
    damaged bytes are evidence too. Pieces are counted by digest, lines kept by number."""
    path = unreadable_path(folder, label)
    if not path.exists():
        return _EarlierLines()
    served = Counter(_piece_key(piece.raw.replace(b"\n", b" ")) for piece in pieces)
    kept = array("Q")
    with open_operator_file(path, "file of unreadable lines") as handle:
        for number, line in enumerate(handle):
            key = _piece_key(line.removesuffix(b"\n"))
            if served[key]:
                served[key] -= 1
            else:
                kept.append(number)
    return _EarlierLines(path, kept)


def expired_path(folder: Path, label: str) -> Path:
    return folder / f"{label}{EXPIRED}"


def read_expiry(path: Path) -> str:
    """The reason an expiry file holds (written by `_record_expiry`)."""
    data = read_operator_file(path, "expiry file of auditor pull", EXPIRY_LIMIT)
    return data.decode(errors="replace").removesuffix("\n")


def _expiry_reason(gone: HourExpired) -> str:
    """Why the hour is gone, one printable line: the source's answer is its own text."""
    return shown(gone.reason)


def _unreadable_file(folder: Path, label: str) -> tuple[int, tuple[int, str] | None]:
    """The lines of the hour's unreadable file, counted in pieces (each may be a long one), and
    its size and sha256 (None without the file), in one read."""
    path = unreadable_path(folder, label)
    if not path.exists():
        return 0, None
    digest, lines, size = hashlib.sha256(), 0, 0
    with open_operator_file(path, "file of unreadable lines") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            lines += block.count(b"\n")
            size += len(block)
    return lines, (size, digest.hexdigest())


def _records_of(path: Path) -> Iterator[Record]:
    """The records of an hour file a pull wrote, each line one."""
    for parsed in read_file(path):
        if parsed.record is None:
            raise InputError(f"{shown(path)}, line {parsed.line}: {parsed.error}")
        yield parsed.record


def _adopt(path: Path, partition: Partition) -> _Written:
    """The counts of an hour file written by a pull that died before its checkpoint (a large
    one settled on disk, as when it was pulled)."""
    result = settle(partition, _records_of(path), spill_dir=path.parent)
    try:
        written = _Written(result.conflicts)
        for record, _content in result.entries():
            written.count(record)
        return written
    finally:
        result.close()


def pull(
    source: Source,
    since_ms: int,
    until_ms: int,
    out_dir: str | Path,
    *,
    refetch: bool = False,
    on_hour: Callable[[HourOutcome], None] | None = None,
) -> PullSummary:
    """Pulls every hour overlapping `[since_ms, until_ms)` into `out_dir`, skipping done hours.

    `refetch` pulls done hours again (to pick up records that arrived late); one the source no
    longer keeps, or now serves nothing for, stays as it was, and one it serves without some
    records the earlier pull got keeps them too (`earlier`). An hour the source reports not
    ready is left out of the checkpoint and listed; one it no longer keeps is recorded as
    expired, with no records, and listed; other source errors stop the pull with every
    completed hour kept.

    A Ctrl-C or SIGTERM whose exception Python only printed (its handler ran in a finalizer)
    is kept and raised again once the hour it came in is recorded, not lost: the pull went on
    to its last hour and exited 0.
    """
    check_forwards(since_ms, until_ms)
    folder = Path(out_dir)
    try:
        fsync_folders(make_folders(folder))  # its name durable before the hours it will list
    except OSError as error:
        raise ConfigError(
            f"cannot create the output folder {shown(folder)} ({os_reason(error)})"
        ) from None
    zone = source.hour_timezone.tzname(None) or "UTC"
    outcomes: list[HourOutcome] = []
    with _exclusive(folder), stops_kept() as stops:
        for stray in folder.glob(".*.tmp"):
            stray.unlink()
        checkpoint = Checkpoint.load(folder, zone)
        try:
            for partition in partitions_between(since_ms, until_ms):
                raise_kept(stops)
                outcome = _pull_hour(source, partition, checkpoint, refetch)
                outcomes.append(outcome)
                log.info("hour %s: %s, %d records", outcome.label, outcome.status, outcome.records)
                if on_hour is not None:
                    on_hour(outcome)
            raise_kept(stops)
        except BaseException:
            # A source that failed stops the pull with every completed hour listed; the journal
            # holds them already, so a save the same full disk refuses must not hide the error.
            with suppress(OSError):
                checkpoint.save()
            raise
        checkpoint.save()
        raise_kept(stops)
    outside = source.held_outside(since_ms, until_ms)
    if outside:
        log.warning("%s", outside)
    return PullSummary(folder, tuple(outcomes))


def _pull_hour(
    source: Source, partition: Partition, checkpoint: Checkpoint, refetch: bool
) -> HourOutcome:
    label = partition.label(source.hour_timezone)
    path = checkpoint.folder / f"{label}.jsonl"
    kept = _kept(partition, label, checkpoint)
    if kept is not None and not refetch:
        return kept
    try:
        result = source.fetch(partition, spill_dir=checkpoint.folder)
    except HourExpired as gone:  # a refetch keeps what an earlier pull got: nothing more comes
        return kept or _record_expiry(partition, label, checkpoint, _expiry_reason(gone))
    except PartitionNotReady as error:
        return HourOutcome(label, partition, "not_ready", detail=error.detail, clocks=error.clocks)
    done = kept if kept is not None and kept.status == "done" else None  # only with `refetch`
    served = result.count or result.unreadable
    if done is not None and (done.records or done.unreadable) and not served:
        # nothing now (an hour file's 404, no legacy rows) for an hour that held records: the
        # source deleted them, or lies; writing the hour as empty would lose what was pulled
        result.close()
        log.warning(
            "hour %s: the source now serves nothing for the hour (an hour file: 404, no "
            "file); keeping the %d record(s) pulled before",
            label,
            done.records,
        )
        return done
    earlier, earlier_pieces = 0, _EarlierLines()
    if done is not None:
        earlier_pieces = _earlier_pieces(checkpoint.folder, label, result.unreadable)
        result, earlier = _with_earlier(source, partition, label, checkpoint, result, done)
    unreadable = len(result.unreadable) + len(earlier_pieces)
    written = _Written(result.conflicts)
    pieces: tuple[int, str] | None = None

    def entry(digest: str) -> dict[str, Any]:
        return hour_entry(partition, written, digest, unreadable, result.files, earlier, pieces)

    def renaming(digest: str) -> None:
        checkpoint.renaming(label, entry(digest))

    try:
        expired_path(checkpoint.folder, label).unlink(missing_ok=True)
        pieces = _keep_unreadable(checkpoint.folder, label, result.unreadable, earlier_pieces)
        digest = write_atomically(
            path,
            written.lines(record for record, _content in result.entries()),
            renaming,
        )
    finally:
        result.close()
    crashpoints.reached("pull.renamed")
    checkpoint.add(label, entry(digest))
    checkpoint.added(label, journaled=True)
    for line, problem in enumerate(result.unreadable, start=1):
        log.warning(
            "hour %s: unreadable data (%s), kept as line %d of %s",
            label,
            problem,
            line,
            unreadable_path(checkpoint.folder, label).name,
        )
    if earlier_pieces:
        log.warning(
            "hour %s: the source no longer serves %d unreadable piece(s) an earlier pull got; "
            "kept as the last lines of %s",
            label,
            len(earlier_pieces),
            unreadable_path(checkpoint.folder, label).name,
        )
    return HourOutcome(
        label,
        partition,
        "pulled",
        written.records,
        result.duplicates,
        len(result.conflicts),
        result.outside,
        unreadable,
        files=result.files,
        earlier=earlier,
    )


def _with_earlier(
    source: Source,
    partition: Partition,
    label: str,
    checkpoint: Checkpoint,
    result: PartitionResult,
    kept: HourOutcome,
) -> tuple[PartitionResult, int]:
    """The hour as refetched, with every record of the file an earlier pull completed (`kept`)
    that the source no longer serves (a record changed since is kept in both versions, a
    conflict), and how many those are. A compliance archive must not lose a message because the
    source stopped serving it: deleted, recalled, or past a retention it applies record by
    record."""
    path = checkpoint.folder / f"{label}.jsonl"
    if not kept.records or _holds_every_line(result, path):
        return result, 0
    served = result.count

    def together() -> Iterator[Record]:
        for record, _content in result.entries():
            yield record
        yield from _records_of(path)

    try:
        union = settle(partition, together(), source.entity_fields, checkpoint.folder)
    finally:
        result.close()
    earlier = union.count - served
    if earlier:
        log.warning(
            "hour %s: the source no longer serves %d record(s) an earlier pull got; kept beside "
            "the %d it serves now",
            label,
            earlier,
            served,
        )
    same = {"duplicates": result.duplicates, "unreadable": result.unreadable}
    return replace(union, files=result.files, **same), earlier


def _holds_every_line(result: PartitionResult, path: Path) -> bool:
    """Whether each line of the hour file `path` is the line of one of `result`'s records, in
    the same order: the union is then `result` itself (each record of the file a copy), found
    by comparing bytes rather than by settling the file's records and `result`'s again (twice
    the hour's records, and most refetches lose none). A line whose bytes differ but not its
    length is compared again by content, its JSON with sorted keys (read from it once, only
    then), which `settle` keys a record by: a record served again with its keys in another
    order is a copy there too. A record set elsewhere in the order is not found here: the union
    is settled then."""
    with open_operator_file(path, HOUR_FILE) as earlier:
        wanted = earlier.readline()
        content: bytes | None = None  # of `wanted`, once a record's line differs from it
        for record, served in result.peek():
            if not wanted:
                break
            if (line := record_line(record)) != wanted:
                if served is None or len(line) != len(wanted):  # keys moved keep the length
                    continue
                if content is None:
                    content = _sorted_content(wanted)
                if served != content:
                    continue
            wanted, content = earlier.readline(), None
        return not wanted


def _sorted_content(line: bytes) -> bytes:
    """A record line's JSON with sorted keys, as `settle` writes a record's content; b"" (no
    record's content) for a line orjson cannot read or write back."""
    try:
        return orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return b""


def _kept(partition: Partition, label: str, checkpoint: Checkpoint) -> HourOutcome | None:
    """The hour as an earlier pull completed it (a file or an expiry, as the checkpoint lists it
    or as a pull killed before its journal line left it on disk); None to fetch it."""
    entry = checkpoint.complete_file(label) or checkpoint.complete_expiry(label)
    if entry is None:
        entry = _adopted(partition, label, checkpoint)
        if entry is None:
            return None
    if "expired" in entry:
        return HourOutcome(label, partition, "expired", detail=entry["expired"])
    return HourOutcome(
        label,
        partition,
        "done",
        entry["records"],
        conflicts=len(entry["conflicts"]),
        unreadable=entry.get("unreadable", 0),
        files=entry.get("files", 1),
        earlier=entry.get("earlier", 0),
    )


def _adopted(partition: Partition, label: str, checkpoint: Checkpoint) -> dict[str, Any] | None:
    """The entry of an hour file or expiry file renamed before its journal line, now added.

    An hour file beside an expiry entry is newer than it (recording an expiry removes the hour
    file first, and pulling the hour removes the expiry file first): a `--refetch` that got the
    hour, from an export, was killed before its journal line. So is one beside an entry of
    another sha256 that the journal names as about to be renamed (`Checkpoint.renaming`): a
    `--refetch` that kept records the source no longer serves, which fetching the hour again
    would lose."""
    folder = checkpoint.folder
    entry = checkpoint.hours.get(label)
    path = folder / f"{label}.jsonl"
    noted = checkpoint.notes.get(label)
    if path.exists() and (
        entry is None
        or "expired" in entry
        or (noted is not None and noted.get("sha256") == file_sha256(path))
    ):
        written = _adopt(path, partition)
        unreadable, pieces = _unreadable_file(folder, label)
        digest = file_sha256(path)
        noted = checkpoint.notes.get(label, {})
        files, earlier = noted.get("files", 1), noted.get("earlier", 0)
        if noted.get("sha256") != digest or type(files) is not int or type(earlier) is not int:
            files, earlier = 1, 0
        entry = hour_entry(partition, written, digest, unreadable, files, earlier, pieces)
        checkpoint.add(label, entry)
    elif entry is None and expired_path(folder, label).exists():
        entry = checkpoint.add_expired(partition, label, read_expiry(expired_path(folder, label)))
    else:
        return None
    checkpoint.added(label)
    return entry


def _record_expiry(
    partition: Partition, label: str, checkpoint: Checkpoint, reason: str
) -> HourOutcome:
    """Records an hour the source no longer keeps, with no records, so no later pull asks for
    it again. An hour file left on disk did not match the checkpoint (it would have been kept
    otherwise): it goes, as a pull of the hour would have replaced it."""
    folder = checkpoint.folder
    (folder / f"{label}.jsonl").unlink(missing_ok=True)
    unreadable_path(folder, label).unlink(missing_ok=True)
    write_atomically(expired_path(folder, label), reason.encode() + b"\n")
    crashpoints.reached("pull.renamed")
    checkpoint.add_expired(partition, label, reason)
    checkpoint.added(label)
    return HourOutcome(label, partition, "expired", detail=reason)
