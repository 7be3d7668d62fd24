"""Settling the raw records served for an hour into its partition: window, duplicates, order.

Shared by every source, so the rules that keep a message from being lost or counted twice live in
one place:

- a record whose timestamp lies outside `[start, end)` belongs to another hour, but stays in the
  hour that served it (counted as `outside`): dropping it would lose it whenever its own hour's
  file lacks it, and a run archives a message once however many hours served it; a record with
  no usable timestamp also stays in the hour that served it;
- records are keyed by `msg_id` (by a hash of their content when they have none): exact copies
  are dropped and counted, while different contents under one msg_id are all kept and reported;
  a record's content is its JSON with sorted keys, the bytes `records.content_hash` hashes,
  compared as bytes (and hashed only where a hash is needed: no msg_id, or a tie to break);
- two contents under one msg_id that differ as bytes are compared again as the archive will
  write them (`same_message`): RFC 8785 bytes, without the fields the source adds about its own
  storage. Equal there (`1.0` and `1`, or a Usergrid entity read twice) they are one message, so
  the later is a copy, not a conflict, as the coordinator would keep only one of them anyway;
- the result is sorted by `(timestamp, msg_id)`, content hash breaking ties, with records lacking
  either last in arrival order, so the same served set always gives the same bytes.

An hour is settled in memory up to `SPILL_RECORDS` served items. Past that, when the caller gives
a folder (`spill_dir`: a worker gives its run's spool), it is settled on disk instead
(`_settle_spilled`), with the same rules and the same result: an hour of a million records held
whole in memory took 2.4 GB, about 2.4 KB a record as parsed dicts, their sorted-key bytes and
what indexes them. Records are written in sorted runs (`marshal`, which gives back every value
exactly as read, its keys in their order) to unnamed temporary files in that folder (gone with
the process, however it ends), merged by msg_id to drop copies and find conflicts, then sorted
again into the archive's order and read back one at a time (`SpilledRecords`).
`AUDITOR_SETTLE_SPILL_RECORDS` sets the threshold (tests set it tiny to take the disk path).
"""

from __future__ import annotations

import heapq
import json
import marshal
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson

from auditor.archive.canonical import CanonicalizationError, canonical
from auditor.jsonl import allow_deep_nesting
from auditor.partitions import Partition
from auditor.records import LATEST_MS, Record, content_hash, msg_id, timestamp_ms


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A piece of served data that is not a JSON object: where it was (`hour:line`), why, and its
    bytes as served, so the archive can keep them verbatim."""

    where: str
    error: str
    raw: bytes = b""

    def __str__(self) -> str:
        return f"{self.where}: {self.error}"


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """The records of one hour as they will be archived, and what was set aside on the way.

    `records` are exactly as received, deduplicated and sorted. `conflicts` are msg_ids that
    arrived with two or more different messages (`same_message`); every variant is kept in
    `records`, so the pipeline can report them. `duplicates` counts copies dropped, exact or of
    the same message; `outside` counts kept records whose timestamp belongs to another hour;
    `unreadable` says where served data could not be read as a record even after retries
    (`hour:line: reason`).

    `content`, when not empty, holds for each of `records` its JSON with sorted keys as orjson
    writes it (what `records.content_hash` hashes), or None where orjson cannot write it: the
    archive starts its canonical bytes from them instead of serialising the record again.
    """

    partition: Partition
    records: tuple[Record, ...]
    duplicates: int = 0
    conflicts: tuple[str, ...] = ()
    outside: int = 0
    # A tuple, or for an hour settled on disk whose pieces outgrew `_RUN_BYTES`, `SpilledPieces`.
    unreadable: Sequence[Unreadable] = ()
    content: tuple[bytes | None, ...] = ()
    # The records (and `content`) held on disk instead, for an hour settled there: then
    # `records` and `content` are empty, and `entries()` reads them back, once.
    spilled: SpilledRecords | None = None
    # How many different files the source served for the hour, whose records were kept
    # together (`hourfiles._union`): more than one is a source that lies.
    files: int = 1
    # Records an earlier pull of the hour got that the source no longer served when the hour
    # was pulled again (`pull._with_earlier`), kept beside those it served.
    earlier: int = 0
    # For an hour read from a pull's folder whose files are not those its checkpoint describes
    # (`folder._altered`): the file, and what the checkpoint says of it and what was found.
    altered: Mapping[str, Any] | None = None

    @property
    def count(self) -> int:
        """How many records the hour has, in memory or on disk."""
        return len(self.spilled) if self.spilled is not None else len(self.records)

    def entries(self) -> Iterator[tuple[Record, bytes | None]]:
        """Each record with its `content` (None where there is none), in order."""
        if self.spilled is not None:
            return iter(self.spilled)
        return zip(self.records, self.content or (None,) * len(self.records), strict=True)

    def peek(self) -> Iterator[tuple[Record, bytes | None]]:
        """What `entries` gives, leaving it to be read again (by `entries`)."""
        if self.spilled is not None:
            return self.spilled.peek()
        return self.entries()

    def close(self) -> None:
        """Removes what the hour holds on disk, if anything."""
        if self.spilled is not None:
            self.spilled.close()


# Served items (records and unreadable pieces) settled in memory; an hour with more is settled
# on disk when the caller gives a folder for it.
SPILL_RECORDS = 20_000
# Usergrid's entity fields, which a legacy ql entity carries and an hour-file record lacks (the
# legacy source's `Source.entity_fields`); here, so that what reads bags again (state_rebuild,
# due) knows them without importing the legacy source and its HTTP client.
LEGACY_ENTITY_FIELDS = frozenset({"uuid", "type", "created", "modified"})
# Sources whose records carry fields about their own storage, left out of a message's content.
_ENTITY_SOURCES = ("legacy", "local")
SPILL_ENV = "AUDITOR_SETTLE_SPILL_RECORDS"
_RUN_BYTES = 16 << 20  # bytes of records sorted in memory before they are written as one run
_ENTRY_OVERHEAD = 200  # what a record's tuple and objects cost beside its bytes, roughly
_FRAME = struct.Struct("<II")
_PIECE_FRAME = struct.Struct("<I")
_READ_BUFFER = 1 << 16


def entity_fields_of(info: dict[str, str]) -> frozenset[str] | None:
    """The source's own keys its run left out of a message's content hash, by the bag's
    `Source-API` (see `content_sha256`)."""
    return LEGACY_ENTITY_FIELDS if info.get("Source-API") in _ENTITY_SOURCES else None


def spill_threshold() -> int:
    """`SPILL_RECORDS`, or what `AUDITOR_SETTLE_SPILL_RECORDS` says (at least 1): tests take
    the disk path with a tiny one."""
    value = os.environ.get(SPILL_ENV, "").strip()
    return max(1, int(value)) if value else SPILL_RECORDS


def settle(
    partition: Partition,
    served: Iterable[Record | Unreadable],
    entity_fields: frozenset[str] = frozenset(),
    spill_dir: str | Path | None = None,
) -> PartitionResult:
    """The partition's records from what a source served for it, in arrival order.

    `entity_fields` are the source's keys about its own storage (`Source.entity_fields`). With
    `spill_dir`, an hour of more than `spill_threshold()` served items is settled on disk there
    (the result's `spilled`, to be `close`d), else in memory as without it."""
    if spill_dir is None:
        return _settle(partition, served, entity_fields)
    items = iter(served)
    limit = spill_threshold()
    first = list(islice(items, limit))
    if len(first) < limit:
        return _settle(partition, first, entity_fields)
    return _settle_spilled(partition, _taken(first, items), entity_fields, Path(spill_dir))


def _taken(first: list[Record | Unreadable], rest: Iterator[Record | Unreadable]) -> Iterator[Any]:
    """The items of `first`, each let go once given, then those of `rest`."""
    first.reverse()
    while first:
        yield first.pop()
    del first
    yield from rest


def _settle(
    partition: Partition,
    served: Iterable[Record | Unreadable],
    entity_fields: frozenset[str],
) -> PartitionResult:
    """`settle` in memory."""
    variants: dict[str, bytes | set[bytes]] = {}  # a key's contents: one, or a set of several
    messages: dict[str, set[bytes | None]] = {}  # `same_message` of each, once a key has two
    conflicts: set[str] = set()
    ordered: list[tuple[int, str, str, Record, bytes | None]] = []
    trailing: list[tuple[Record, bytes | None]] = []
    duplicates = outside = 0
    unreadable: list[Unreadable] = []
    start, end = partition.start_ms, partition.end_ms
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    for item in served:
        if isinstance(item, Unreadable):
            unreadable.append(item)
            continue
        instant = item.get("timestamp")
        if type(instant) is not int or not 0 <= instant < LATEST_MS:
            instant = timestamp_ms(item)
        identity = item.get("msg_id")
        if type(identity) is not str:
            identity = msg_id(item)
        try:
            # Copied to their length: orjson's bytes keep its 4 KiB write buffer, 17 MB an hour.
            content: bytes | None = memoryview(dumps(item, option=sort_keys)).tobytes()
            data = content
        except TypeError:
            allow_deep_nesting()
            content, data = None, json.dumps(item, sort_keys=True).encode()
        key = identity if identity is not None else "#" + sha256(data).hexdigest()
        seen = variants.get(key)
        if seen is None:
            variants[key] = data
        elif (
            seen == data
            or (type(seen) is set and data in seen)
            or _one_message(messages, key, seen, item, entity_fields)
        ):
            duplicates += 1
            continue
        else:
            if identity is not None:
                conflicts.add(identity)
            if type(seen) is set:
                seen.add(data)
            else:
                variants[key] = {seen, data}
        if instant is not None and not start <= instant < end:
            outside += 1
        if instant is None or identity is None:
            trailing.append((item, content))
        else:
            ordered.append((instant, identity, "", item, content))
    if conflicts:
        ordered = [
            entry if entry[1] not in conflicts else (*entry[:2], _digest(entry), *entry[3:])
            for entry in ordered
        ]
    ordered.sort(key=itemgetter(0, 1, 2))
    return PartitionResult(
        partition=partition,
        records=tuple(entry[3] for entry in ordered) + tuple(entry[0] for entry in trailing),
        duplicates=duplicates,
        conflicts=tuple(sorted(conflicts)),
        outside=outside,
        unreadable=tuple(unreadable),
        content=tuple(entry[4] for entry in ordered) + tuple(entry[1] for entry in trailing),
    )


def same_message(record: Record, entity_fields: frozenset[str]) -> bytes:
    """What says whether two records hold the same message: the record's RFC 8785 bytes, as the
    archive writes it, without `entity_fields` (a legacy entity's uuid and modification time
    are Usergrid's, not the message's). Raises CanonicalizationError as `canonical` does."""
    if entity_fields and not entity_fields.isdisjoint(record):
        record = {key: value for key, value in record.items() if key not in entity_fields}
    return canonical(record)


def content_sha256(
    record: Record, canonical_bytes: bytes, entity_fields: frozenset[str] | None
) -> str:
    """The hex SHA-256 the state indexes a message's content by: of its archived canonical
    bytes, or of `same_message` when it carries entity fields, so that a legacy entity served
    again with a new uuid or modification time is the same content. Shared by the run and by
    `state rebuild`, which must compute exactly what the run did."""
    if entity_fields and not entity_fields.isdisjoint(record):
        return sha256(same_message(record, entity_fields)).hexdigest()
    return sha256(canonical_bytes).hexdigest()


def _one_message(
    messages: dict[str, set[bytes | None]],
    key: str,
    seen: bytes | set[bytes],
    record: Record,
    entity_fields: frozenset[str],
) -> bool:
    """Whether `record`, whose bytes differ from every content seen under `key`, is the same
    message as one of them (`same_message`); if not, it is noted as one more. Runs only for a
    second content under a key, so the earlier one is read back from its bytes here once."""
    found = messages.get(key)
    if found is None:
        assert type(seen) is bytes, "a key with several contents has their messages noted"
        found = messages[key] = {_message_or_none(json.loads(seen), entity_fields)}
    message = _message_or_none(record, entity_fields)
    if message is not None and message in found:
        return True
    found.add(message)
    return False


def _message_or_none(record: Record, entity_fields: frozenset[str]) -> bytes | None:
    """`same_message`, or None for a record with no RFC 8785 form (equal to nothing)."""
    try:
        return same_message(record, entity_fields)
    except CanonicalizationError:
        return None


def _digest(entry: tuple[int, str, str, Record, bytes | None]) -> str:
    """`records.content_hash` of an ordered record: what orders the variants of one msg_id."""
    content = entry[4]
    return sha256(content).hexdigest() if content is not None else content_hash(entry[3])


# -- settling on disk ---------------------------------------------------------------------------


class _Runs:
    """Entries (a head, compared, and a record's `marshal` bytes) sorted by head, in runs of
    about `_RUN_BYTES` written to unnamed temporary files of `folder`, read back merged. Heads
    are unique (they end in, or hold, the record's arrival number), so the bytes are never
    compared."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[IO[bytes]] = []
        self.pending: list[tuple[tuple[Any, ...], bytes]] = []
        self.held = 0

    def add(self, head: tuple[Any, ...], blob: bytes, size: int) -> None:
        self.pending.append((head, blob))
        self.held += size + len(blob) + _ENTRY_OVERHEAD
        if self.held >= _RUN_BYTES:
            self._write()

    def _write(self) -> None:
        self.pending.sort(key=itemgetter(0))
        # Closed by `close`, having been read back; unnamed on Linux (O_TMPFILE).
        handle = tempfile.TemporaryFile(dir=self.folder, prefix=".settle-")  # noqa: SIM115
        self.files.append(handle)
        write, frame, dumps = handle.write, _FRAME.pack, marshal.dumps
        for head, blob in self.pending:
            data = dumps(head)
            write(frame(len(data), len(blob)))
            write(data)
            write(blob)
        handle.flush()
        self.pending = []
        self.held = 0

    def merged(self) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        """Every entry added, in head order (again at each call, until `close`)."""
        if self.pending and self.files:
            self._write()
        if not self.files:
            self.pending.sort(key=itemgetter(0))
            return iter(self.pending)
        return heapq.merge(*(_read_run(handle) for handle in self.files))

    def close(self) -> None:
        self.pending = []
        for handle in self.files:
            handle.close()
        self.files = []


def _read_run(handle: IO[bytes]) -> Iterator[tuple[tuple[Any, ...], bytes]]:
    handle.seek(0)
    reader = open(handle.fileno(), "rb", buffering=_READ_BUFFER, closefd=False)  # noqa: SIM115
    read, unpack, size, loads = reader.read, _FRAME.unpack, _FRAME.size, marshal.loads
    with reader:
        while frame := read(size):
            head_size, blob_size = unpack(frame)
            head = loads(read(head_size))
            yield head, read(blob_size)


class SpilledRecords:
    """An hour's settled records on disk, in the archive's order: `len()` of them, read back
    once by iterating (`peek` leaves them to be read again), each as (record, its `content` or
    None). `close` removes the files (the system does, should the process end first)."""

    def __init__(self, runs: _Runs, count: int) -> None:
        self._runs = runs
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[Record, bytes | None]]:
        try:
            yield from self.peek()
        finally:
            self.close()

    def peek(self) -> Iterator[tuple[Record, bytes | None]]:
        """The records as iterating gives them, the files kept to be read again."""
        loads = marshal.loads
        for head, blob in self._runs.merged():
            yield loads(blob), head[5]

    def close(self) -> None:
        self._runs.close()


class _Pieces:
    """An hour's unreadable pieces as they arrive: held until they take `_RUN_BYTES`, then
    written to disk (`SpilledPieces`) with every one after, so that an hour of garbage settled
    on disk is not held whole in memory any more than its records are."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.held: list[Unreadable] = []
        self.size = 0
        self.spilled: SpilledPieces | None = None

    def add(self, piece: Unreadable) -> None:
        if self.spilled is not None:
            self.spilled.add(piece)
            return
        self.held.append(piece)
        self.size += len(piece.raw) + len(piece.where) + len(piece.error) + _ENTRY_OVERHEAD
        if self.size >= _RUN_BYTES:
            self.spilled = SpilledPieces(self.folder)
            for each in self.held:
                self.spilled.add(each)
            self.held = []

    def result(self) -> Sequence[Unreadable]:
        return tuple(self.held) if self.spilled is None else self.spilled


class SpilledPieces(Sequence[Unreadable]):
    """Unreadable pieces on disk, in arrival order, read back at each iteration (by `pread`, so
    that two readings never share a file position). The unnamed file goes with this object,
    not with `PartitionResult.close`: a refetch hands the pieces on to the hour it settles
    again (`pull._with_earlier`)."""

    def __init__(self, folder: Path) -> None:
        # Closed when this object goes; unnamed on Linux (O_TMPFILE).
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".settle-")  # noqa: SIM115
        self._count = 0

    def add(self, piece: Unreadable) -> None:
        data = marshal.dumps((piece.where, piece.error, piece.raw))
        self._file.write(_PIECE_FRAME.pack(len(data)) + data)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Unreadable]:
        self._file.flush()
        descriptor, offset, size = self._file.fileno(), 0, _PIECE_FRAME.size
        for _ in range(self._count):
            (length,) = _PIECE_FRAME.unpack(os.pread(descriptor, size, offset))
            where, error, raw = marshal.loads(os.pread(descriptor, length, offset + size))
            offset += size + length
            yield Unreadable(where, error, raw)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("piece index out of range")
        return next(islice(self, index, None))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]


def _settle_spilled(
    partition: Partition,
    served: Iterable[Record | Unreadable],
    entity_fields: frozenset[str],
    folder: Path,
) -> PartitionResult:
    """`settle` on disk, for an hour too large to hold.

    First every record is written, with its key (msg_id, or its content's hash) and arrival
    number, in runs sorted by (key, arrival): merged, the records of one key come together in
    arrival order, and the rules of `_settle` are applied to them alone. What is kept is written
    again in runs sorted by (timestamp, msg_id, content hash where the msg_id has conflicts,
    arrival), those lacking a timestamp or msg_id after all others in arrival order: merged,
    that is `_settle`'s order (its sort is stable, and the arrival number decides what it
    leaves in arrival order)."""
    unreadable = _Pieces(folder)
    start, end = partition.start_ms, partition.end_ms
    dumps, sort_keys, blob_of = orjson.dumps, orjson.OPT_SORT_KEYS, marshal.dumps
    by_key = _Runs(folder)
    arrival = 0
    try:
        for item in served:
            if isinstance(item, Unreadable):
                unreadable.add(item)
                continue
            instant = item.get("timestamp")
            if type(instant) is not int or not 0 <= instant < LATEST_MS:
                instant = timestamp_ms(item)
            identity = item.get("msg_id")
            if type(identity) is not str:
                identity = msg_id(item)
            try:
                data = memoryview(dumps(item, option=sort_keys)).tobytes()  # as in `_settle`
                has_content = True
            except TypeError:
                allow_deep_nesting()
                data, has_content = json.dumps(item, sort_keys=True).encode(), False
            key = identity if identity is not None else "#" + sha256(data).hexdigest()
            by_key.add(
                (key, arrival, instant, identity, has_content, data), blob_of(item), len(data)
            )
            arrival += 1
        ordered = _Runs(folder)
        try:
            kept, duplicates, outside, conflicts = _kept(
                by_key.merged(), ordered, entity_fields, start, end
            )
        except BaseException:
            ordered.close()
            raise
    finally:
        by_key.close()
    return PartitionResult(
        partition=partition,
        records=(),
        duplicates=duplicates,
        conflicts=tuple(sorted(conflicts)),
        outside=outside,
        unreadable=unreadable.result(),
        spilled=SpilledRecords(ordered, kept),
    )


def _kept(
    entries: Iterator[tuple[tuple[Any, ...], bytes]],
    ordered: _Runs,
    entity_fields: frozenset[str],
    start: int,
    end: int,
) -> tuple[int, int, int, set[str]]:
    """`_settle`'s rules over entries merged by (key, arrival), what is kept added to
    `ordered`: (records kept, duplicates, outside, msg_ids with conflicts)."""
    conflicts: set[str] = set()
    kept = duplicates = outside = 0
    loads = marshal.loads
    for key, group in groupby(entries, key=lambda entry: entry[0][0]):
        first, *others = group  # a msg_id's records: one, or a few
        survivors = [first]
        seen: bytes | set[bytes] = first[0][5]
        messages: dict[str, set[bytes | None]] = {}
        for entry in others:
            data = entry[0][5]
            if (
                seen == data
                or (type(seen) is set and data in seen)
                or _one_message(messages, key, seen, loads(entry[1]), entity_fields)
            ):
                duplicates += 1
                continue
            if entry[0][3] is not None:  # as `_settle`: the msg_id of the variant arriving
                conflicts.add(entry[0][3])
            if type(seen) is set:
                seen.add(data)
            else:
                seen = {seen, data}
            survivors.append(entry)
        for (_key, arrival, instant, identity, has_content, data), blob in survivors:
            content = data if has_content else None
            if instant is not None and not start <= instant < end:
                outside += 1
            if instant is None or identity is None:
                head: tuple[Any, ...] = (1, 0, "", "", arrival, content)
            else:
                digest = ""
                if len(survivors) > 1 and identity in conflicts:
                    digest = (
                        sha256(content).hexdigest()
                        if content is not None
                        else content_hash(loads(blob))
                    )
                head = (0, instant, identity, digest, arrival, content)
            ordered.add(head, blob, len(data))
            kept += 1
    return kept, duplicates, outside, conflicts
