"""The report's record counts of one partition, taken by the worker that processed it.

The report counts every archived record by message type, chat type and hour. Counting is cheap
where the record's facts are at hand anyway (the worker), and was a tenth of the single
coordinator's work when done there record by record; so a worker counts its partition and the
coordinator merges the counts once per partition (`ReportBuilder.observe_counts`), taking out
the few records it does not archive (duplicates) with `remove`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import tzinfo
from itertools import repeat
from operator import add, floordiv, itemgetter
from typing import Any

from auditor.partitions import HOUR_MS


def zone_offset_ms(zone: tzinfo) -> int:
    """The fixed offset of the report's zone (the source's hour zone), in milliseconds."""
    offset = zone.utcoffset(None)
    return int(offset.total_seconds() * 1000) if offset else 0


class RecordCounts:
    """Records by message type, chat type and hour of the report's zone (hours since the epoch,
    shifted by `offset_ms`), in the order each name was first seen; JSON-able for the spool. A
    record without a send time counts in `untimed`, in no hour: the report says it has no usable
    time rather than dating it by the hour file that served it."""

    __slots__ = ("chats", "hours", "offset_ms", "records", "types", "untimed")

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms
        self.records = 0
        self.types: Counter[str] = Counter()
        self.chats: Counter[str] = Counter()
        self.hours: Counter[int] = Counter()
        self.untimed = 0

    @classmethod
    def of(cls, offset_ms: int, facts: Sequence[Sequence[Any]], start_ms: int) -> RecordCounts:
        """The counts of the records of the partition starting at `start_ms`, from their facts
        (`report.model.RecordFacts`: msg_id, send time, message type, chat type, sender).

        A worker pays one append a record for this: the names are counted by `Counter` in C,
        and nearly every record of an hour was sent in the report hour holding the partition's
        start, so only the others get an hour of their own (or, without a send time, none).
        Counting each record in Python cost a worker about as much as the coordinator saved.
        """
        counts = cls(offset_ms)
        counts.records = len(facts)
        counts.types.update(map(itemgetter(2), facts))
        counts.chats.update(map(itemgetter(3), facts))
        first = (start_ms + offset_ms) // HOUR_MS
        low = first * HOUR_MS - offset_ms
        high = low + HOUR_MS
        elsewhere = [
            sent for sent in map(itemgetter(1), facts) if sent is None or not low <= sent < high
        ]
        if len(facts) > len(elsewhere):
            counts.hours[first] = len(facts) - len(elsewhere)
        if None in elsewhere:
            counts.untimed = elsewhere.count(None)
            elsewhere = [sent for sent in elsewhere if sent is not None]
        counts.hours.update(map(floordiv, map(add, elsewhere, repeat(offset_ms)), repeat(HOUR_MS)))
        return counts

    @classmethod
    def gathering(cls, offset_ms: int, start_ms: int) -> GatheredCounts:
        """What `of` counts, from the facts given a batch at a time (`GatheredCounts.add`), for
        an hour too large to keep every record's facts until its end."""
        return GatheredCounts(cls(offset_ms), start_ms)

    def remove(self, kind: str, chat: str, sent: int | None) -> None:
        """Takes back one record counted (a duplicate not archived), given its send time or None
        for a record without one; a name left at zero is forgotten."""
        self.records -= 1
        counted: list[tuple[Counter[Any], Any]] = [(self.types, kind), (self.chats, chat)]
        if sent is None:
            self.untimed -= 1
        else:
            counted.append((self.hours, (sent + self.offset_ms) // HOUR_MS))
        for counter, key in counted:
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def to_json(self) -> dict[str, Any]:
        return {
            "offset_ms": self.offset_ms,
            "records": self.records,
            "types": list(self.types.items()),
            "chats": list(self.chats.items()),
            "hours": list(self.hours.items()),
            "untimed": self.untimed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordCounts:
        counts = cls(int(data["offset_ms"]))
        counts.records = int(data["records"])
        counts.types.update({str(name): int(n) for name, n in data["types"]})
        counts.chats.update({str(name): int(n) for name, n in data["chats"]})
        counts.hours.update({int(hour): int(n) for hour, n in data["hours"]})
        counts.untimed = int(data.get("untimed", 0))  # absent from a spool of an older version
        return counts


class GatheredCounts:
    """`RecordCounts.of` over facts given in batches: the same counts, in the same order (the
    hour holding the partition's start first, then the others as first seen)."""

    __slots__ = ("counts", "elsewhere", "first", "high", "in_first", "low")

    def __init__(self, counts: RecordCounts, start_ms: int) -> None:
        self.counts = counts
        self.first = (start_ms + counts.offset_ms) // HOUR_MS
        self.low = self.first * HOUR_MS - counts.offset_ms
        self.high = self.low + HOUR_MS
        self.in_first = 0
        self.elsewhere: Counter[int] = Counter()

    def add(self, facts: Sequence[Sequence[Any]]) -> None:
        counts, low, high = self.counts, self.low, self.high
        counts.records += len(facts)
        counts.types.update(map(itemgetter(2), facts))
        counts.chats.update(map(itemgetter(3), facts))
        elsewhere = [
            sent for sent in map(itemgetter(1), facts) if sent is None or not low <= sent < high
        ]
        self.in_first += len(facts) - len(elsewhere)
        if None in elsewhere:
            counts.untimed += elsewhere.count(None)
            elsewhere = [sent for sent in elsewhere if sent is not None]
        offset = counts.offset_ms
        self.elsewhere.update(map(floordiv, map(add, elsewhere, repeat(offset)), repeat(HOUR_MS)))

    def result(self) -> RecordCounts:
        counts = self.counts
        if self.in_first:
            counts.hours[self.first] = self.in_first
        counts.hours.update(self.elsewhere)
        return counts
