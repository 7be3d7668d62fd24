"""A legacy `/chatmessages` pager that lies: the server a client must survive, not Usergrid.

`LegacyPager` plays a faithful Usergrid (with its documented quirks: short pages, a repeated
row). This one plays a broken or hostile server, one misbehaviour per key of a spec such as
`"overlap=3,drop=1,cursor_ttl=2"` (`--legacy-hostile`):

- `overlap=K`: each page starts K rows before the previous one ended.
- `repeat=N`: the cursor of page N serves page N again (once), under a new cursor.
- `loop=N`: after page N the cursor points back to the first page, for ever, with the cursors of
  the first pass again; `loop_fresh=1` makes each pass's cursors new, so only the content repeats.
- `drop=K`: each page skips K of its rows yet claims `count` = limit: records silently lost
  unless the client compares `count` with what the page holds.
- `count=D`: `count` is off by D (nothing is lost).
- `cursor_ttl=S`: a cursor older than S seconds is refused with 400, as one that expired.
- `empty=N`: the first N pages of each query hold no rows, only a cursor (Usergrid may do so).
- `expire_once=N`: the cursor of page N is refused once a query, as expired, then accepted.
- `unbounded=1`: the query's upper bound is ignored, as by a server that takes one bound only
  (Easemob's 2015 docs forbid `and` in `ql`): an hour's pages run on to the history's end.
- `descending=1`: rows come newest first though the query asks for no order (time order is
  what lets a client resume an hour by timestamp after a refused cursor).

Cursors are positions kept in memory (an emulator restart forgets them) and a query's entities
are materialised once per query: a test kit for hours of up to a few hundred thousand rows.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

from auditor.emulator.legacy import CursorError, LegacyPager, Page
from auditor.emulator.ql import Query

KEYS = (
    "overlap", "repeat", "loop", "loop_fresh", "drop", "count", "cursor_ttl", "empty",
    "expire_once", "descending", "unbounded",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class HostileSpec:
    overlap: int = 0
    repeat: int = 0
    loop: int = 0
    loop_fresh: int = 0
    drop: int = 0
    count: int = 0
    cursor_ttl: float = 0.0
    empty: int = 0
    expire_once: int = 0
    descending: int = 0
    unbounded: int = 0


def parse_spec(text: str) -> HostileSpec:
    """`"overlap=3,drop=1"` as a spec; an unknown key or a value that is not a number is refused."""
    values: dict[str, Any] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, _, value = part.partition("=")
        if key not in KEYS:
            raise ValueError(f"unknown hostile legacy fault {key!r} (known: {', '.join(KEYS)})")
        try:
            values[key] = float(value) if key == "cursor_ttl" else int(value)
        except ValueError:
            raise ValueError(f"hostile legacy fault {key} needs a number, not {value!r}") from None
    return HostileSpec(**values)


@dataclass(frozen=True, slots=True)
class _Position:
    key: str
    row: int
    page: int
    generation: int
    issued: float


class HostilePager:
    """Serves a query's entities by the faithful pager's rules of content, misbehaving per spec."""

    def __init__(self, faithful: LegacyPager, spec: HostileSpec) -> None:
        self._faithful = faithful
        self._spec = spec
        self._cursors: dict[str, _Position] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._repeated: set[str] = set()
        self._expired: set[str] = set()  # queries whose `expire_once` cursor was refused
        self._lock = threading.Lock()

    def page(self, query: Query, limit: int, cursor: str | None) -> Page:
        spec = self._spec
        key, rows = self._entities(query)
        with self._lock:
            if cursor is None:
                at = _Position(key, 0, 1, 0, time.monotonic())
            else:
                at = self._cursors.get(cursor)
                if at is None or at.key != key:
                    raise CursorError("cursor is not one this server issued")
                if spec.cursor_ttl and time.monotonic() - at.issued > spec.cursor_ttl:
                    raise CursorError("cursor has expired")
                once = spec.expire_once and at.page == spec.expire_once + 1
                if once and key not in self._expired:
                    self._expired.add(key)
                    raise CursorError("cursor has expired")
            if at.page <= spec.empty:
                return Page([], self._issue(key, at.row, at.page + 1, at.generation, "empty"), 0)
            taken = rows[at.row : at.row + limit]
            end = at.row + len(taken)
            claimed = len(taken)
            if spec.drop and len(taken) > spec.drop:
                taken = taken[spec.drop :]
            claimed += spec.count
            if end >= len(rows) and not (spec.loop and at.page >= spec.loop):
                return Page(taken, None, claimed)
            following = max(at.row + 1, end - spec.overlap)
            generation = at.generation
            if spec.repeat and at.page == spec.repeat and key not in self._repeated:
                self._repeated.add(key)
                following = at.row
            elif spec.loop and at.page >= spec.loop:
                following, generation = 0, at.generation + 1
            page_number = at.page + 1 if following else 1
            nonce = generation if spec.loop_fresh else 0
            unique = following == at.row or spec.loop_fresh
            tag = str(nonce) if unique else ""
            return Page(taken, self._issue(key, following, page_number, generation, tag), claimed)

    def _issue(self, key: str, row: int, page: int, generation: int, tag: str) -> str:
        """A cursor to `row` as page `page` (the same text for the same place unless `tag`)."""
        text = f"{key}:{row}:{page}" + (f":{tag}:{len(self._cursors)}" if tag else "")
        cursor = base64.urlsafe_b64encode(text.encode()).decode()
        if cursor not in self._cursors:
            self._cursors[cursor] = _Position(key, row, page, generation, time.monotonic())
        return cursor

    def _entities(self, query: Query) -> tuple[str, list[dict[str, Any]]]:
        history = self._faithful._feed.history
        since, until = query.clamp(history.start_ms, history.end_ms)
        rows = history.index_range(since, history.end_ms if self._spec.unbounded else until)
        key = f"{rows.start}:{rows.stop}:{int(query.descending)}"
        with self._lock:
            cached = self._rows.get(key)
        if cached is None:
            indices = rows[::-1] if query.descending or self._spec.descending else rows
            cached = [
                self._faithful._entity(index, variant, record)
                for index in indices
                for variant, record in self._faithful._feed.items(index)
            ]
            with self._lock:
                self._rows = {key: cached}
        return key, cached
