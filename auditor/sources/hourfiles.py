"""Easemob's current history API: one signed, expiring gzip file of JSON lines per hour.

Per hour: ask for the download URL, fetch the file without the bearer token, read it leniently
(lines, or objects back to back). An expired URL (403) or a file that arrives corrupt or cut short
is fetched again through a fresh URL; 404 means the hour had no messages; 400 "expired or
unstored" raises `PartitionNotReady`. Hours are named in the cluster's zone (UTC or Beijing).
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterable
from datetime import UTC, timezone

from auditor.errors import SourceError
from auditor.jsonl import ParsedLine, parse_buffer
from auditor.partitions import Partition
from auditor.records import Record
from auditor.sources.easemob import EasemobClient, UrlExpired
from auditor.sources.interface import EasemobSource, Unreadable

log = logging.getLogger(__name__)


class _Damaged(Exception):
    """The file did not decompress or held lines that are not JSON objects."""


def read_hour_file(data: bytes, label: str) -> list[Record | Unreadable]:
    """The records of a downloaded hour file (gzip, or plain if already decoded in transit)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise _Damaged(f"corrupt gzip ({error})") from None

    def unreadable(parsed: ParsedLine) -> Unreadable:
        return Unreadable(f"{label}:{parsed.line}", parsed.error or "unreadable", parsed.raw)

    return parse_buffer(data, label, unreadable)


class HourFileSource(EasemobSource):
    """Hours from `GET /{org}/{app}/chatmessages/{YYYYMMDDHH}` and the file it points to."""

    name = "hourfiles"

    def __init__(
        self, client: EasemobClient, hour_timezone: timezone = UTC, attempts: int | None = None
    ) -> None:
        super().__init__(client, hour_timezone)
        self.attempts = attempts if attempts is not None else client.retry.max_retries + 1

    def served(self, partition: Partition) -> Iterable[Record | Unreadable]:
        label = partition.label(self.hour_timezone)
        problem = ""
        last: list[Record | Unreadable] | None = None
        for attempt in range(1, self.attempts + 1):
            url = self.client.hour_file_url(label)
            if url is None:
                log.debug("hour %s: no file (no messages)", label)
                return []
            try:
                found = read_hour_file(self.client.download(url), label)
            except UrlExpired:
                problem = "the download URL expired"
            except _Damaged as damage:
                problem = str(damage)
            else:
                if not any(isinstance(item, Unreadable) for item in found):
                    return found
                problem = "lines that are not JSON objects"
                last = found
            log.info(
                "hour %s: %s; fetching a fresh URL (%d/%d)", label, problem, attempt, self.attempts
            )
        if last is not None:
            log.warning("hour %s: keeping the file with lines that are not JSON objects", label)
            return last
        raise SourceError(f"hour {label}: {problem} on each of {self.attempts} attempts")
