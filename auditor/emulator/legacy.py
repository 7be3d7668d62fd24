"""Pages of Easemob's legacy `/chatmessages` API: entities, opaque cursors, planted page faults.

A cursor is, like Usergrid's, unpadded base64 of `"<int>:<token>"`: the int is a hash of the
query, the token a position in the query's rows sealed with an HMAC, so a cursor from another
query or a mangled one (say, a `+` that became a space) is refused rather than misread. Cursors
depend only on the seed, so they stay valid across emulator restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import threading
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from auditor.emulator.faults import chance, mix
from auditor.emulator.feed import CONFLICT, Feed
from auditor.emulator.ql import Query
from auditor.partitions import HOUR_MS

MAX_LIMIT = 1000
_ENTITY_NAMESPACE = uuid.UUID("c4a3d20a-386d-11e6-95c7-73ec90722c91")
_SHORT, _STEP_BACK, _CREATED = 0x5407, 0xBAC, 0xC4EA


class CursorError(ValueError):
    """The cursor was not issued for this query by this emulator."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of entities, the cursor of the next page when more rows exist, and the `count`
    the answer states when it is not the number of entities (a lying server's)."""

    entities: list[dict[str, Any]]
    cursor: str | None
    count: int | None = None


class LegacyPager:
    """Serves a query's rows page by page, ascending (or descending) by timestamp.

    Late records (`RecordFaults.late`) are left out of every query until one has been read to
    its last page over their hour, as a store that writes them after the first pull.

    With `duplicate_rate`, a share of cursors point one row back, so the next page repeats the
    last row of this one, as resuming from a stale cursor does. With `short_page_rate`, a share
    of pages hold fewer rows than `limit` while more exist (Usergrid applies the limit before
    filtering), so only a missing cursor means the end.
    """

    def __init__(
        self,
        feed: Feed,
        seed: int,
        duplicate_rate: float = 0.0,
        short_page_rate: float = 0.0,
    ) -> None:
        self._feed = feed
        self._seed = seed
        self._secret = hashlib.sha256(f"legacy-cursor:{seed}".encode()).digest()
        self._duplicate_rate = duplicate_rate
        self._short_page_rate = short_page_rate
        self._looked: set[int] = set()  # hours a query has read to the end: late rows show
        self._lock = threading.Lock()

    def page(self, query: Query, limit: int, cursor: str | None) -> Page:
        history = self._feed.history
        since, until = query.clamp(history.start_ms, history.end_ms)
        rows = history.index_range(since, until)
        hours = range(since - since % HOUR_MS, until, HOUR_MS)
        with self._lock:
            hidden = self._feed.faults.any_late and not all(h in self._looked for h in hours)
        shown: range | list[int] = rows
        if hidden:
            shown = [index for index in rows if not self._feed.faults.late(index)]
        indices = shown[::-1] if query.descending else shown
        key = f"{rows.start}:{rows.stop}:{int(query.descending)}" + (":first-look" * hidden)
        tag = zlib.crc32(key.encode())
        ordinal, offset = (0, 0) if cursor is None else self._decode(cursor, key, len(indices))
        if limit > 1 and chance(self._short_page_rate, self._seed, _SHORT, tag, ordinal, offset):
            limit = 1 + mix(self._seed, _SHORT, tag, ordinal) % (limit - 1)
        entities: list[dict[str, Any]] = []
        last = (ordinal, offset)
        while ordinal < len(indices) and len(entities) < limit:
            index = indices[ordinal]
            served = self._feed.items(index)
            if query.descending:
                served.reverse()
            while offset < len(served) and len(entities) < limit:
                variant, record = served[offset]
                entities.append(self._entity(index, variant, record))
                last = (ordinal, offset)
                offset += 1
            if offset >= len(served):
                ordinal, offset = ordinal + 1, 0
        if ordinal >= len(indices):
            if hidden:
                with self._lock:
                    self._looked.update(hours)
            return Page(entities, None)
        if len(entities) > 1 and chance(self._duplicate_rate, self._seed, _STEP_BACK, tag, *last):
            ordinal, offset = last
        return Page(entities, self._encode(key, ordinal, offset))

    def _entity(self, index: int, variant: int, record: dict[str, Any]) -> dict[str, Any]:
        created = self._feed.history.timestamp(index) + 200 + mix(self._seed, _CREATED, index) % 401
        identity = str(record.get("msg_id", f"index:{index}"))
        if variant == CONFLICT:
            identity += ":conflict"
        return {
            "uuid": str(uuid.uuid5(_ENTITY_NAMESPACE, identity)),
            "type": "chatmessage",
            "created": created,
            "modified": created,
            **record,
        }

    def _seal(self, key: str, packed: bytes) -> bytes:
        return hmac.new(self._secret, key.encode() + packed, "sha256").digest()[:12]

    def _encode(self, key: str, ordinal: int, offset: int) -> str:
        packed = struct.pack(">QH", ordinal, offset)
        token = base64.b64encode(packed + self._seal(key, packed)).decode().rstrip("=")
        head = zlib.crc32(key.encode()) - 2**31
        return base64.b64encode(f"{head}:{token}".encode()).decode().rstrip("=")

    def _decode(self, cursor: str, key: str, rows: int) -> tuple[int, int]:
        try:
            text = base64.b64decode(_pad(cursor), validate=True).decode("ascii")
            head, _, token = text.partition(":")
            raw = base64.b64decode(_pad(token), validate=True)
            packed, seal = raw[:10], raw[10:]
            if int(head) != zlib.crc32(key.encode()) - 2**31:
                raise CursorError("cursor belongs to another query")
            if not hmac.compare_digest(seal, self._seal(key, packed)):
                raise CursorError("cursor is not one this server issued")
            ordinal, offset = struct.unpack(">QH", packed)
        except (ValueError, UnicodeDecodeError, struct.error) as error:
            raise CursorError(f"cursor is not valid: {error}") from None
        if ordinal >= rows:
            raise CursorError("cursor points past the end of the query")
        return ordinal, offset


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)
