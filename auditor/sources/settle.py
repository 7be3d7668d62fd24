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
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from operator import itemgetter

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
    unreadable: tuple[Unreadable, ...] = ()
    content: tuple[bytes | None, ...] = ()


def settle(
    partition: Partition,
    served: Iterable[Record | Unreadable],
    entity_fields: frozenset[str] = frozenset(),
) -> PartitionResult:
    """The partition's records from what a source served for it, in arrival order.

    `entity_fields` are the source's keys about its own storage (`Source.entity_fields`)."""
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
