"""Easemob's current history API: one signed, expiring gzip file of JSON lines per hour.

Per hour: ask for the download URL, fetch the file without the bearer token, read it leniently
(lines, or objects back to back). An expired URL (403) or a file that arrives corrupt, cut short,
expanding past its limit (a gzip bomb), empty or with lines that are not records is fetched again
through a fresh URL; the last is kept if it stays so (at once when it came twice byte for byte: a
server's own bad line comes back every time, and each look spends one of Easemob's 10 hour files
a minute), the others fail the hour. 404 means the hour had no messages, unless a file was served
for it before: then a file with lines that are not records is kept (also when a look again is
refused), and a damaged one fails the hour. 400 "expired or unstored" means not generated yet or
deleted already; only the hour's age tells them apart: `HourExpired` once it is past the source's
retention (`expired`) by both the source's clock and this machine's, else `PartitionNotReady`.
Hours are named in the cluster's zone (UTC or Beijing).
"""

from __future__ import annotations

import io
import logging
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, timezone
from hashlib import blake2b, sha256
from pathlib import Path
from typing import Generic, TypeVar

from auditor.errors import SourceError
from auditor.jsonl import GUNZIP_FLOOR, GUNZIP_RATIO, ParsedLine, parse_buffer, record_line
from auditor.partitions import DAY_MS, HOUR_MS, Partition, format_instant
from auditor.records import Record
from auditor.sources.easemob import EasemobClient, UrlExpired
from auditor.sources.interface import (
    EasemobSource,
    HourExpired,
    PartitionNotReady,
    PartitionResult,
    Unreadable,
)
from auditor.sources.settle import settle

log = logging.getLogger(__name__)


MiB = 1 << 20
# Expanding more than this many times, the file is weighed as well: each line break, `{` and `[`
# counts as this many bytes, about what its Python objects cost once parsed (a bytes, a dict, an
# unreadable piece), so that 200 MB of `{}` lines (70 million dicts) is refused too. Real files
# never get here, and counting costs a fifth of parsing, so they are not counted.
WEIGHED_RATIO = 20
OBJECT_WEIGHT = 64
_CHUNK = 4 * MiB  # inflated at most at a time
_SLICE = 256 * 1024  # compressed bytes given at a time (its unread rest is copied each time)
_ZEROS = re.compile(b"\0*")
_BLANK = re.compile(rb"[ \t\n\r\x0b\x0c]*")  # what `bytes.strip` strips
# A downloaded file this large or larger is read a piece at a time when the caller settles large
# hours on disk (`HourFileSource.fetch`): about 20,000 records, whose parsed dicts take 50 MB.
# A smaller one is read whole, as before: faster, since reading a piece at a time must weigh
# every piece for `gunzip`'s limit, which costs a fifth of parsing it.
STREAM_BYTES = 1 << 20
EMPTY = (
    "an empty hour file: Easemob answers 404 for an hour without messages, so the server "
    "served a broken file or lied"
)
# Easemob keeps hour files 3 days unless a contract says 7, 90 or 180.
RETENTION_DAYS = 3.0
# A refused hour counts as expired this much before its retention has passed by the judging
# clock: a source that counts from the hour's start, or deletes a little early, would otherwise
# leave one refused hour at the edge that is never judged expired, which stops a chain behind
# the retention for good (the edge moves on by an hour each hour). An hour Easemob has not
# generated yet is a day old at most.
EXPIRY_MARGIN_MS = HOUR_MS
# A refused hour that ended longer ago than this is past any delay of Easemob's in writing its
# file ("fetch after 24 hours"): when it is not yet expired by `retention_days`, that setting is
# likely above what the source keeps, which stops every run at it while more hours expire.
WRITTEN_LONG_AGO_MS = 2 * DAY_MS
ANSWER_SHOWN = 200  # characters of the source's answer an expired hour's finding quotes
# The source's clock and this machine's further apart than this are named with a refused hour.
CLOCKS_AGREE_MS = HOUR_MS


class _Damaged(Exception):
    """The file did not decompress, or expanded past its limit."""


def read_hour_file(data: bytes, label: str) -> list[Record | Unreadable]:
    """The records of a downloaded hour file (gzip, or plain if already decoded in transit).

    A file with nothing in it (no bytes, a gzip of nothing, or only whitespace) is one
    unreadable piece (`EMPTY`) holding what it held: an hour without messages has no file.
    Raises `_Damaged` for a corrupt gzip or one that expands past `gunzip`'s limit.
    """
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data)

    def unreadable(parsed: ParsedLine) -> Unreadable:
        return Unreadable(f"{label}:{parsed.line}", parsed.error or "unreadable", parsed.raw)

    found = parse_buffer(data, label, unreadable)
    if not found:  # every line blank
        return [Unreadable(label, EMPTY, data)]
    return found


def stream_hour_file(data: bytes, label: str) -> Iterator[Record | Unreadable]:
    """What `read_hour_file` returns, one item at a time: the file is inflated (as `gunzip`
    does, refused at the same point with `_Damaged`, which then ends the items) and parsed a
    piece of whole lines at a time, so that neither the inflated file nor its parsed records
    are ever held whole. A file of blank lines is one `EMPTY` piece holding them, at the end."""

    def unreadable(parsed: ParsedLine) -> Unreadable:
        return Unreadable(f"{label}:{parsed.line}", parsed.error or "unreadable", parsed.raw)

    pieces: Iterable[bytes] = (
        _inflated(data)
        if data[:2] == b"\x1f\x8b"
        else (data[at : at + _CHUNK] for at in range(0, len(data), _CHUNK))
    )
    unended: list[bytes] = []  # the pieces of a line not yet ended, joined once it ends
    line = 1
    blank: list[bytes] | None = []  # what was read while every line was blank
    for piece in pieces:
        if blank is not None:
            if _BLANK.fullmatch(piece):
                blank.append(piece)
            else:  # a line that is not blank yields a record or a piece: it cannot be empty
                blank = None
        cut = piece.rfind(b"\n") + 1
        if not cut:
            unended.append(piece)
            continue
        lines = b"".join([*unended, piece[:cut]]) if unended else piece[:cut]
        unended = [piece[cut:]] if cut < len(piece) else []
        found = parse_buffer(lines, label, unreadable, line)
        line += _line_count(lines)
        del lines
        if found:
            blank = None
            yield from found
    if unended:
        rest = b"".join(unended)
        del unended
        found = parse_buffer(rest, label, unreadable, line)
        if found:
            blank = None
            yield from found
    if blank is not None:
        yield Unreadable(label, EMPTY, b"".join(blank))


def _line_count(lines: bytes) -> int:
    """`len(lines.splitlines())` for bytes ending in a line break, without the list."""
    count = lines.count(b"\n")
    if b"\r" in lines:
        count += lines.count(b"\r") - lines.count(b"\r\n")
    return count


def _inflated(data: bytes) -> Iterator[bytes]:
    """`gunzip(data)` a piece at a time, raising `_Damaged` where it does (after the pieces
    inflated before). It weighs every piece, since those before are gone when the weight
    starts to count; `gunzip` weighs only then, which is why it does not collect these pieces
    (that took it 1.7-3.6 times as long on a 20,000-record hour, measured)."""
    limit = max(GUNZIP_FLOOR, GUNZIP_RATIO * len(data))
    weighed_from = WEIGHED_RATIO * len(data)
    size = weight = 0
    for chunk in _chunks(data):
        size += len(chunk)
        weight += _weight(chunk)
        if size + (weight if size > weighed_from else 0) > limit:
            raise _Damaged(_bomb(limit, len(data)))
        yield chunk


def _chunks(data: bytes) -> Iterator[bytes]:
    """The inflated bytes of the gzip members in `data` (zero padding between them), at most
    `_CHUNK` at a time and never empty, `_Damaged` where they are corrupt or cut short: the one
    loop of `gunzip` and `_inflated`, which weigh the pieces as each needs."""
    view = memoryview(data)
    start = 0
    while start < len(data):
        if data[start : start + 2] != b"\x1f\x8b":
            raise _Damaged(f"corrupt gzip (bytes that are not gzip at offset {start:,})")
        inflater = zlib.decompressobj(wbits=31)
        position, pending = start, b""
        while not inflater.eof:
            if not pending:
                if position >= len(data):
                    raise _Damaged("corrupt gzip (cut short)")
                pending = view[position : position + _SLICE]
                position += len(pending)
            try:
                chunk = inflater.decompress(pending, _CHUNK)
            except zlib.error as error:
                raise _Damaged(f"corrupt gzip ({error})") from None
            pending = inflater.unconsumed_tail
            if chunk:
                yield chunk
        start = _ZEROS.match(data, position - len(inflater.unused_data)).end()


def _bomb(limit: int, compressed: int) -> str:
    return (
        f"a gzip bomb or damaged gzip (it expands past {limit // MiB} MiB: "
        f"{GUNZIP_RATIO} times its {compressed:,} bytes, at least "
        f"{GUNZIP_FLOOR // MiB} MiB)"
    )


def gunzip(data: bytes) -> bytes:
    """`gzip.decompress(data)` (members one after another, zero padding between them), refused
    (`_Damaged`) once it expands past `GUNZIP_RATIO` times `data`, or `GUNZIP_FLOOR` if more:
    memory stays bounded by the bytes on the wire. Beyond `WEIGHED_RATIO` times, each line break
    and object counts as `OBJECT_WEIGHT` bytes more. Inflated a slice at a time, into a buffer
    that is returned without a copy."""
    limit = max(GUNZIP_FLOOR, GUNZIP_RATIO * len(data))
    weighed_from = WEIGHED_RATIO * len(data)
    out = io.BytesIO()
    weight: int | None = None  # of the objects, once the file expands past `weighed_from`
    for chunk in _chunks(data):
        out.write(chunk)
        size = out.tell()
        if weight is not None:
            weight += _weight(chunk)
        elif size > weighed_from:
            weight = _weight(out.getvalue())
        if size + (weight or 0) > limit:
            raise _Damaged(_bomb(limit, len(data)))
    return out.getvalue()


def _vanished(label: str, problem: str) -> SourceError:
    """An hour whose file was served, then said not to exist: passing it as an hour without
    messages would lose what the file held, and a file kept from an earlier look is kept."""
    return SourceError(
        f"hour {label}: {problem}, then the source answered that the hour has no file (404 "
        "storage_object_not_found), though it had served one: run again later"
    )


def _empty(found: list[Record | Unreadable]) -> bool:
    """Whether `read_hour_file` found an empty file."""
    return len(found) == 1 and isinstance(found[0], Unreadable) and found[0].error == EMPTY


def expired(partition: Partition, retention_days: float, now_ms: int) -> bool:
    """Whether an hour refused as not available is past the source's retention at `now_ms`."""
    return now_ms - partition.end_ms >= retention_days * DAY_MS - EXPIRY_MARGIN_MS


def clocks_apart(stated_ms: int | None, machine_ms: int) -> str:
    """How the source's clock (`stated_ms`, from its answer) stands against this machine's when
    they differ by more than `CLOCKS_AGREE_MS`, else "": it decides whether a refused hour is
    expired, so a wrong one is named where the verdict is."""
    if stated_ms is None or abs(stated_ms - machine_ms) <= CLOCKS_AGREE_MS:
        return ""
    gap = abs(stated_ms - machine_ms)
    amount, unit = (gap / HOUR_MS, "hour") if gap < 2 * DAY_MS else (gap / DAY_MS, "day")
    shown = round(amount, 1)
    side = "ahead of" if stated_ms > machine_ms else "behind"
    return (
        f"the source's clock reads {format_instant(stated_ms - stated_ms % 1000)}, "
        f"{shown:g} {unit}{'s' * (shown != 1)} {side} this machine's"
    )


def _shortened(text: str) -> str:
    return text if len(text) <= ANSWER_SHOWN else text[: ANSWER_SHOWN - 1] + "…"


def _weight(data: bytes) -> int:
    """What the lines and objects in `data` add to its size in memory, roughly."""
    breaks = data.count(b"\n") + data.count(b"\r")
    return OBJECT_WEIGHT * (breaks + data.count(b"{") + data.count(b"["))


class HourFileSource(EasemobSource):
    """Hours from `GET /{org}/{app}/chatmessages/{YYYYMMDDHH}` and the file it points to."""

    name = "hourfiles"

    def __init__(
        self,
        client: EasemobClient,
        hour_timezone: timezone = UTC,
        attempts: int | None = None,
        retention_days: float = RETENTION_DAYS,
    ) -> None:
        super().__init__(client, hour_timezone)
        self.attempts = attempts if attempts is not None else client.retry.max_retries + 1
        self.retention_days = retention_days

    def _url(self, partition: Partition, label: str) -> str | None:
        """The hour's download URL (None: no messages); `HourExpired` for an hour refused and
        past the retention, `PartitionNotReady` for one refused younger.

        The source deletes by its own clock, but a clock days ahead would make an hour it has
        not written yet look expired, and an expired hour is archived as lost for good: the
        hour is judged by the earlier of the source's clock and this machine's. A source clock
        behind keeps a deleted hour young (exit 3 until it catches up); the error names it."""
        try:
            return self.client.hour_file_url(label)
        except PartitionNotReady as refused:
            machine = int(time.time() * 1000)
            stated = refused.answered_ms
            clocks = clocks_apart(stated, machine)
            now = machine if stated is None else min(stated, machine)
            if expired(partition, self.retention_days, now):
                answer = _shortened(refused.detail)
                raise HourExpired(label, answer, self.retention_days, now, clocks) from None
            hint = self._kept_shorter(partition, now)
            if not clocks and not hint:
                raise
            raise PartitionNotReady(label, refused.detail, stated, clocks, hint) from None

    def _again(self, partition: Partition, label: str, problem: str, held: bool) -> str | None:
        """The URL for another look at an hour a file was served for (the last look found
        `problem`), or None to keep the file `held` from an earlier look: the source now says
        the hour has no file, or refuses it (its retention passed meanwhile). Without one held,
        the first is an error (`_vanished`), the second what it says."""
        try:
            url = self._url(partition, label)
        except PartitionNotReady as refused:
            if not held:
                raise
            log.warning(
                "hour %s: keeping the file served before; a look again got: %s", label, refused
            )
            return None
        if url is None:
            if not held:
                raise _vanished(label, problem)
            log.warning("hour %s: the source now answers that the hour has no file", label)
        return url

    def _kept_shorter(self, partition: Partition, now_ms: int) -> str:
        """What to do about an hour refused long after the source writes hour files, else ""."""
        ended = now_ms - partition.end_ms
        if ended <= WRITTEN_LONG_AGO_MS:
            return ""
        return (
            f"it ended {ended / DAY_MS:.1f} days ago, long after the source writes an hour's "
            f"file: if the source keeps hour files fewer days than retention_days "
            f"({self.retention_days:g}), runs stop here for ever while more hours expire; set "
            "retention_days to what it keeps (Easemob: 3 days unless the contract says more), and "
            "the next run archives the hours it can no longer fetch as lost and goes on; if the "
            "app had no history yet then (an app younger than retention_days, whose chain's "
            "first --incremental run begins at the oldest hour the source would keep), begin "
            "the chain with --since the app's first hour"
        )

    def served(self, partition: Partition) -> Iterable[Record | Unreadable]:
        label = partition.label(self.hour_timezone)

        def trouble(found: list[Record | Unreadable]) -> str:
            if not any(isinstance(item, Unreadable) for item in found):
                return ""
            return "an empty file" if _empty(found) else "lines that are not records"

        reading: _Reading[Iterable[Record | Unreadable]] = _Reading(
            read=lambda data: read_hour_file(data, label),
            trouble=trouble,
            union=lambda files: _union(files, label),
        )
        found = self._looked(partition, label, reading)
        return [] if found is None else found

    def fetch(self, partition: Partition, spill_dir: Path | None = None) -> PartitionResult:
        """As `Source.fetch`, files fetched again on the same terms as in `served`; a file of
        `STREAM_BYTES` or more is read a piece at a time into `settle` (`stream_hour_file`), so
        that with `spill_dir` a large hour is never held whole. The result's `files` says how
        many different files were kept together."""
        label = partition.label(self.hour_timezone)
        fields = self.entity_fields

        def trouble(result: PartitionResult) -> str:
            if not result.unreadable:
                return ""
            empty = (
                result.count == 0
                and len(result.unreadable) == 1
                and result.unreadable[0].error == EMPTY
            )
            return "an empty file" if empty else "lines that are not records"

        def union(files: list[bytes]) -> PartitionResult:
            served = _union(files, label)
            return replace(settle(partition, served, fields, spill_dir), files=len(files))

        reading = _Reading(
            read=lambda data: settle(partition, _read(data, label), fields, spill_dir),
            trouble=trouble,
            union=union,
            drop=PartitionResult.close,
        )
        result = self._looked(partition, label, reading)
        return settle(partition, [], fields) if result is None else result

    def _looked(self, partition: Partition, label: str, reading: _Reading[T]) -> T | None:
        """The hour as `reading` reads what the source served (None: no file, no messages):
        the one loop of looks again that the module describes. Each file with a `trouble` is
        kept aside by its digest; a clean one ends the loop, with the files set aside before it
        taken together (`_union`) if there were any; else the last file with trouble is kept,
        together with the others set aside, or the hour fails."""
        problem = kept = ""
        last: T | None = None
        looks: dict[bytes, bytes] = {}  # the files with trouble, by digest, oldest first
        kept_digest = b""
        try:
            for attempt in range(1, self.attempts + 1):
                url = (
                    self._url(partition, label)
                    if attempt == 1
                    else self._again(partition, label, problem, last is not None)
                )
                if url is None:
                    if attempt == 1:
                        log.debug("hour %s: no file (no messages)", label)
                        return None
                    break
                try:
                    data = self.client.download(url)
                    found = reading.read(data)
                except UrlExpired:
                    problem = "the download URL expired"
                except _Damaged as damage:
                    problem = str(damage)
                else:
                    trouble = reading.trouble(found)
                    if not trouble:
                        if not looks:
                            return found
                        reading.drop(found)
                        return reading.union([*looks.values(), data])
                    digest = sha256(data).digest()
                    if last is not None:
                        reading.drop(last)
                    last, kept, problem = found, trouble, trouble
                    looks.pop(digest, None)
                    looks[digest] = data
                    if digest == kept_digest:
                        break
                    kept_digest = digest
                finally:
                    data = b""
                log.info(
                    "hour %s: %s; fetching a fresh URL (%d/%d)",
                    label,
                    problem,
                    attempt,
                    self.attempts,
                )
            if last is not None:
                log.warning("hour %s: keeping the file with %s", label, kept)
                found, last = last, None
                if len(looks) == 1:
                    return found
                reading.drop(found)
                return reading.union(list(looks.values()))
            raise SourceError(f"hour {label}: {problem} on each of {self.attempts} attempts")
        finally:
            if last is not None:
                reading.drop(last)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Reading(Generic[T]):
    """How `HourFileSource._looked` reads a downloaded file: `read` it, say what is wrong with
    what it read (`trouble`, "" for nothing), read several files together (`union`), and `drop`
    what it read and no longer needs."""

    read: Callable[[bytes], T]
    trouble: Callable[[T], str]
    union: Callable[[list[bytes]], T]
    drop: Callable[[T], object] = lambda _found: None


def _read(data: bytes, label: str) -> Iterable[Record | Unreadable]:
    """The items of a downloaded hour file, read a piece at a time from `STREAM_BYTES` on."""
    return (
        stream_hour_file(data, label) if len(data) >= STREAM_BYTES else read_hour_file(data, label)
    )


def _union(files: list[bytes], label: str) -> Iterator[Record | Unreadable]:
    """What different files served for one hour hold together: every item of the last, then
    each item of an earlier one as many more times as it holds it beyond the files after it.
    A source that serves another broken file on each look would otherwise lose the records
    only the files set aside held; a record in several files is kept once, and a copy served
    twice within a file is kept (and counted as a duplicate) as that file alone would give it.
    The earlier files' unreadable pieces are kept even when the last file is clean: that the
    source served them is evidence, as `pull --refetch` keeps an earlier pull's pieces."""
    held: Counter[bytes] = Counter()
    extra = 0
    for number, data in enumerate(reversed(files)):
        seen: Counter[bytes] = Counter()
        for item in _read(data, label):
            if isinstance(item, Unreadable):
                key = blake2b(b"\0" + item.raw, digest_size=16).digest()
            else:
                key = blake2b(record_line(item), digest_size=16).digest()
            seen[key] += 1
            if seen[key] <= held[key]:
                continue
            if number:
                extra += 1
                if isinstance(item, Unreadable):
                    item = replace(item, where=f"{item.where} (in an earlier file)")
            yield item
        held |= seen
    log.warning(
        "hour %s: the source served %d different files for the hour, with lines that are not "
        "records; keeping what any of them held: %d item(s) only in an earlier file",
        label,
        len(files),
        extra,
    )
