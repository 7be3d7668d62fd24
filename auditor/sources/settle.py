"""Settling the raw records served for an hour into its partition: window, duplicates, order.

Shared by every source, so the rules that keep a message from being lost or counted twice live in
one place:

- a record whose timestamp lies outside `[start, end)` belongs to another hour, but stays in the
  hour that served it (counted as `outside`): dropping it would lose it whenever its own hour's
  file lacks it, and a run archives a message once however many hours served it; a record with
  no usable timestamp also stays in the hour that served it;
- records are keyed by `msg_id` (by a hash of their content when they have none): exact copies
  are dropped and counted, while different contents under one msg_id are all kept and reported;
- the result is sorted by `(timestamp, msg_id)`, content hash breaking ties, with records lacking
  either last in arrival order, so the same served set always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from auditor.partitions import Partition
from auditor.records import Record, content_hash, msg_id, timestamp_ms


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
    arrived with two or more different contents; every variant is kept in `records`, so the
    pipeline can report them. `duplicates` counts exact copies dropped; `outside` counts kept
    records whose timestamp belongs to another hour; `unreadable` says where served data could
    not be read as a record even after retries (`hour:line: reason`).
    """

    partition: Partition
    records: tuple[Record, ...]
    duplicates: int = 0
    conflicts: tuple[str, ...] = ()
    outside: int = 0
    unreadable: tuple[Unreadable, ...] = ()


def settle(partition: Partition, served: Iterable[Record | Unreadable]) -> PartitionResult:
    """The partition's records from what a source served for it, in arrival order."""
    variants: dict[str, set[str]] = {}
    conflicts: set[str] = set()
    ordered: list[tuple[int, str, str, Record]] = []
    trailing: list[Record] = []
    duplicates = outside = 0
    unreadable: list[Unreadable] = []
    for item in served:
        if isinstance(item, Unreadable):
            unreadable.append(item)
            continue
        instant = timestamp_ms(item)
        stray = instant is not None and not partition.contains(instant)
        identity = msg_id(item)
        digest = content_hash(item)
        key = identity if identity is not None else "#" + digest
        seen = variants.setdefault(key, set())
        if digest in seen:
            duplicates += 1
            continue
        if seen and identity is not None:
            conflicts.add(identity)
        seen.add(digest)
        outside += stray
        if instant is None or identity is None:
            trailing.append(item)
        else:
            ordered.append((instant, identity, digest, item))
    ordered.sort(key=lambda entry: entry[:3])
    return PartitionResult(
        partition=partition,
        records=tuple(entry[3] for entry in ordered) + tuple(trailing),
        duplicates=duplicates,
        conflicts=tuple(sorted(conflicts)),
        outside=outside,
        unreadable=tuple(unreadable),
    )
