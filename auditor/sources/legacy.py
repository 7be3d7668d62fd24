"""Easemob's legacy query API: `ql` time windows read page by page with an opaque cursor.

Retired by Easemob in 2017 but still the API of the seed document and the emulator. The hour is
asked for as `timestamp>start-1 and timestamp<end`, which on integer milliseconds is exactly
`[start, end)`. Paging stops only when a page comes without a cursor: a short page does not mean
the end (Usergrid applies the limit before filtering), and a cursor seen before means the server
is looping, which is an error rather than an endless run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, timezone

import orjson

from auditor.errors import SourceError
from auditor.partitions import Partition
from auditor.records import Record
from auditor.sources.easemob import EasemobClient
from auditor.sources.interface import EasemobSource, Unreadable

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000
MAX_PAGES = 100_000


def window_ql(start_ms: int, end_ms: int) -> str:
    """The query for `[start_ms, end_ms)`; requests URL-encodes it (`>`, `<`, spaces)."""
    return f"select * where timestamp>{start_ms - 1} and timestamp<{end_ms}"


class LegacyQuerySource(EasemobSource):
    """Hours from `GET /{org}/{app}/chatmessages?ql=...&limit=...&cursor=...`."""

    name = "legacy"

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
        for page_number in range(1, self.max_pages + 1):
            page = self.client.legacy_page(ql, self.limit, cursor)
            for entity in page["entities"]:
                if isinstance(entity, dict):
                    yield entity
                else:
                    where = f"{partition.iso()} page {page_number}"
                    yield Unreadable(
                        where, "an entity that is not a JSON object", orjson.dumps(entity)
                    )
            cursor = page.get("cursor")
            if not cursor:
                log.debug("%s: %d page(s)", partition.iso(), page_number)
                return
            if not isinstance(cursor, str) or cursor in seen:
                raise SourceError(
                    f"{self.client.app_url}/chatmessages returned cursor {str(cursor)[:40]!r} "
                    f"again on page {page_number} of the hour {partition.iso()}; "
                    "the server is looping"
                )
            seen.add(cursor)
        raise SourceError(
            f"{self.client.app_url}/chatmessages gave more than {self.max_pages} pages for the "
            f"hour {partition.iso()}"
        )
