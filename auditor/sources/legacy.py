"""Easemob's legacy query API: `ql` time windows read page by page with an opaque cursor.

Retired by Easemob in 2017 but still the API of the seed document and the emulator. The hour is
asked for as `timestamp>start-1 and timestamp<end`, which on integer milliseconds is exactly
`[start, end)`. Paging stops only when a page comes without a cursor: a short or even empty page
does not mean the end (Usergrid applies the limit before filtering). A cursor seen before, or
`STALE_PAGES` pages in a row that bring messages but none not seen before, mean the server is
looping, which is an error rather than an endless run; empty pages between them (which Usergrid
may serve anywhere) do not break the row.

A cursor the server refuses (400: Usergrid cursors point into a query's result and may expire
while a slow hour is read) does not fail the hour: as Easemob's own incremental recipe does, the
pull asks again from the newest timestamp served so far, inclusive, so the rows sharing it come
twice (duplicates `settle` drops and counts) and none is skipped. That needs pages that came in
ascending order, as the API promises; otherwise, or when a resumed query brought nothing new
before its cursor was refused again, the refusal is the error.

A server that ignores the upper bound (one that takes a single bound: Easemob's 2015 docs forbid
`and` in `ql`) pages on past the hour to the end of the history, so each hour of a backfill
pulled every later one. Once pages in ascending order bring a whole page past the hour's end,
itself in ascending order, no row of the hour can follow: the hour stops there, keeping what was
served. Newest first, such a server pages on (the hour's rows come last).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, timezone
from typing import Any

import orjson

from auditor.errors import SourceError
from auditor.jsonl import record_line
from auditor.partitions import Partition
from auditor.records import Record
from auditor.sources.easemob import CursorRefused, EasemobClient
from auditor.sources.interface import EasemobSource, Unreadable
from auditor.sources.settle import LEGACY_ENTITY_FIELDS

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000
MAX_PAGES = 100_000
STALE_PAGES = 3


def _served_bytes(entity: Any) -> bytes:
    """An entity as JSON, to know it again: orjson refuses what the exact parser reads beyond
    it (integers past 64 bits, nesting past 255 levels), which `record_line` also writes. Such
    an entity stopped the hour with a TypeError, where an hour file's record is archived."""
    try:
        return orjson.dumps(entity)
    except TypeError:
        return record_line(entity)[:-1]


def window_ql(start_ms: int, end_ms: int) -> str:
    """The query for `[start_ms, end_ms)`; requests URL-encodes it (`>`, `<`, spaces)."""
    return f"select * where timestamp>{start_ms - 1} and timestamp<{end_ms}"


def _ascends_past(stamps: list[int], hour_came: bool) -> bool:
    """Whether a page timed wholly past the hour shows the server pages oldest first, so that
    no row of the hour can follow: its times never fall, and either rows of the hour came
    before it or it rises. Newest first, the rows past the hour come before the hour's own."""
    if not stamps or any(later < earlier for earlier, later in itertools.pairwise(stamps)):
        return False
    return hour_came or stamps[-1] > stamps[0]


class LegacyQuerySource(EasemobSource):
    """Hours from `GET /{org}/{app}/chatmessages?ql=...&limit=...&cursor=...`."""

    name = "legacy"
    entity_fields = LEGACY_ENTITY_FIELDS
    strays_cause = "the server ignores the query's timestamp bounds"

    def __init__(
        self,
        client: EasemobClient,
        hour_timezone: timezone = UTC,
        limit: int = PAGE_LIMIT,
        max_pages: int = MAX_PAGES,
    ) -> None:
        super().__init__(client, hour_timezone)
        self.limit = limit
        self.max_pages = max_pages

    def served(self, partition: Partition) -> Iterator[Record | Unreadable]:
        ql = window_ql(partition.start_ms, partition.end_ms)
        cursor: str | None = None
        seen: set[str] = set()
        served: set[int] = set()  # hashes: an hour's pages can hold a hundred thousand
        stale = 0
        start, end = partition.start_ms, partition.end_ms
        newest = start - 1  # the hour's newest timestamp served so far
        ascending = True
        fresh_since_resume = 1
        for page_number in range(1, self.max_pages + 1):
            try:
                page = self.client.legacy_page(ql, self.limit, cursor)
            except CursorRefused as refused:
                if not ascending or not fresh_since_resume:
                    why = (
                        "its pages were not in time order"
                        if not ascending
                        else f"the query asked again from timestamp {max(newest, start)} "
                        "brought nothing new before its cursor was refused too"
                    )
                    raise SourceError(
                        f"{refused}, for page {page_number} of the hour {partition.iso()}; "
                        f"{why}, so the hour cannot go on from a timestamp: run again"
                    ) from None
                since = max(newest, start)  # the hour's start when none of it came yet
                log.info(
                    "%s: cursor refused on page %d (%s); asking again from timestamp %d",
                    partition.iso(), page_number, refused, since,
                )  # fmt: skip
                ql, cursor = window_ql(since, end), None
                seen.clear()  # a new query's cursors; a loop still ends (no fresh rows)
                stale = fresh_since_resume = 0
                continue
            fresh = 0
            timed = 0  # rows of the page with a timestamp
            past: list[int] = []  # those timed at or after the hour's end, in the order served
            for entity in page["entities"]:
                data = _served_bytes(entity)
                key = hash(data)
                if key not in served:
                    served.add(key)
                    fresh += 1
                if isinstance(entity, dict):
                    stamp = entity.get("timestamp")
                    timed += type(stamp) is int
                    if type(stamp) is int and start <= stamp < end:
                        if stamp >= newest:
                            newest = stamp
                        else:
                            ascending = False
                    elif type(stamp) is int and stamp >= end:
                        past.append(stamp)
                    yield entity
                else:
                    where = f"{partition.iso()} page {page_number}"
                    yield Unreadable(where, "an entity that is not a JSON object", data)
            fresh_since_resume += fresh
            if fresh:
                stale = 0
            elif page["entities"]:
                stale += 1  # an empty page says nothing: between repeats it hid a loop
            cursor = page.get("cursor")
            if cursor and ascending and len(past) == timed and _ascends_past(past, newest >= start):
                log.warning(
                    "%s: %s/chatmessages served a whole page timed after the hour (page %d) "
                    "although the query asks for timestamp<%d: the server ignores the query's "
                    "upper bound; the hour stops there, its rows past the end kept with it",
                    partition.iso(), self.client.app_url, page_number, end,
                )  # fmt: skip
                return
            if not cursor:
                log.debug("%s: %d page(s)", partition.iso(), page_number)
                return
            where = f"on page {page_number} of the hour {partition.iso()}"
            if not isinstance(cursor, str):
                raise SourceError(
                    f"{self.client.app_url}/chatmessages returned a cursor that is not text "
                    f"({str(cursor)[:40]!r}) {where}"
                )
            if cursor in seen or stale >= STALE_PAGES:
                what = (
                    f"cursor {cursor[:40]!r} again"
                    if cursor in seen
                    else (f"{stale} pages in a row with no message not served before")
                )
                raise SourceError(
                    f"{self.client.app_url}/chatmessages returned {what} {where}; "
                    "the server is looping"
                )
            seen.add(cursor)
        raise SourceError(
            f"{self.client.app_url}/chatmessages gave more than {self.max_pages} pages for the "
            f"hour {partition.iso()}"
        )
