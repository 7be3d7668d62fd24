"""Findings counted by sender, for the report's exact top ten, in bounded memory.

Any sender can still rise into the top ten at the last finding, so an exact answer needs every
sender's count. A run over years of a large app meets millions of senders with findings (about
0.3 KB each in a dict of Counters), so past `IN_MEMORY` senders the counts move to a private
temporary SQLite database on disk, which SQLite deletes when it is closed, and are summed there.
"""

from __future__ import annotations

from collections import Counter

from auditor.findings import SEVERITIES
from auditor.report.scratch import Spilling

# Senders counted in memory before the counts move to disk: about 30 MB.
IN_MEMORY = 100_000
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


class SenderTally(Spilling):
    """Findings by sender and severity; `top` gives the senders with the most."""

    def __init__(self, in_memory: int | None = None) -> None:
        self._counts: dict[str, Counter[str]] = {}
        self._in_memory = IN_MEMORY if in_memory is None else in_memory

    def add(self, sender: str, severity: str) -> None:
        counts = self._counts.get(sender)
        if counts is None:
            if len(self._counts) >= self._in_memory:
                self._spill()
            counts = self._counts[sender] = Counter()
        counts[severity] += 1

    def top(self, count: int = 10) -> list[tuple[str, dict[str, int]]]:
        """The `count` senders with the most findings, most first, ties by sender; each with
        its findings by severity, in severity order."""
        if self._disk is None:
            ranked = sorted(self._counts.items(), key=lambda item: (-item[1].total(), item[0]))
            return [(sender, _ordered(counts)) for sender, counts in ranked[:count]]
        self._spill()
        leaders = self._disk.execute(
            "SELECT sender FROM tally GROUP BY sender ORDER BY sum(n) DESC, sender LIMIT ?",
            (count,),
        ).fetchall()
        top = []
        for (sender,) in leaders:
            counts = self._disk.execute(
                "SELECT severity, n FROM tally WHERE sender = ?", (sender,)
            ).fetchall()
            top.append((_text(sender), _ordered(dict(counts))))
        return top

    def _spill(self) -> None:
        """Adds the counts in memory to those on disk, and empties memory."""
        disk = self._scratch(
            "CREATE TABLE tally (sender BLOB, severity TEXT, n INTEGER, "
            "PRIMARY KEY (sender, severity)) WITHOUT ROWID"
        )
        with disk:
            disk.executemany(
                "INSERT INTO tally VALUES (?, ?, ?) "
                "ON CONFLICT (sender, severity) DO UPDATE SET n = n + excluded.n",
                (
                    (_bytes(sender), severity, n)
                    for sender, counts in self._counts.items()
                    for severity, n in counts.items()
                ),
            )
        self._counts = {}


def _bytes(sender: str) -> bytes:
    """A sender as SQLite compares it: a BLOB compares byte by byte, and UTF-8 bytes (lone
    surrogates kept) sort as Python sorts the code points."""
    return sender.encode("utf-8", "surrogatepass")


def _text(sender: bytes) -> str:
    return sender.decode("utf-8", "surrogatepass")


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    """Severities from info to high, then any other name: the same however they were counted."""
    return {
        name: counts[name] for name in sorted(counts, key=lambda name: (_RANK.get(name, 99), name))
    }
