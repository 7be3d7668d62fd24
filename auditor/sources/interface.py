"""The one interface every history source implements, and the errors particular to sources.

Like pip-audit's dependency sources: a small ABC here, one file per implementation beside it
(`hourfiles.py`, `legacy.py`, `local.py`). An implementation only says what an hour was served
with; settling that into the partition (window, duplicates, order) is shared (`settle.py`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from datetime import UTC, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from auditor.errors import SourceError
from auditor.partitions import Partition
from auditor.records import Record
from auditor.sources.settle import PartitionResult, Unreadable, settle

if TYPE_CHECKING:
    from auditor.sources.easemob import EasemobClient

__all__ = [
    "EasemobSource",
    "HourExpired",
    "PartitionNotReady",
    "PartitionResult",
    "Source",
    "Unreadable",
    "both_clocks",
]


def both_clocks(clocks: str) -> str:
    """`clocks` (how the source's clock stands against this machine's) and why it matters."""
    return f"{clocks}, and an hour counts as expired only when both clocks say so"


class PartitionNotReady(SourceError):
    """Easemob has no file for this hour yet, or no longer: 400 "expired or unstored".

    Distinct from an empty hour (404, a partition with no records) so the caller can try the hour
    again later instead of recording it as done. `answered_ms` is the source's clock when it
    answered, when its answer said (Usergrid's `timestamp`). `clocks` says how that clock stood
    against this machine's when the two differed by more than an hour ("" otherwise): an hour
    counts as expired only by both, so a wrong clock is why a deleted hour waits for ever.
    """

    def __init__(
        self,
        label: str,
        detail: str,
        answered_ms: int | None = None,
        clocks: str = "",
        hint: str = "",
    ) -> None:
        message = f"hour {label} is not available yet or has expired ({detail})"
        if clocks:
            message += f"; {both_clocks(clocks)}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
        self.label = label
        self.detail = detail
        self.answered_ms = answered_ms
        self.clocks = clocks


class HourExpired(PartitionNotReady):
    """An hour refused as not available that ended longer ago than the source keeps hour files
    (`answered_ms` is the instant it was judged by, the earlier of the source's clock and this
    machine's): no later run can fetch it. `auditor run` archives it as lost, with a high
    finding; a caller that cannot still sees why."""

    def __init__(
        self, label: str, answer: str, retention_days: float, answered_ms: int, clocks: str = ""
    ) -> None:
        self.answer = answer
        self.retention_days = retention_days
        super().__init__(label, f"expired: {self.reason}", answered_ms, clocks)
        shown = f"hour {label} has {self.detail}"
        self.args = (f"{shown}; {clocks}" if clocks else shown,)

    @property
    def kept_for(self) -> str:
        """How long the source keeps hour files, in words ("3 days")."""
        days = self.retention_days
        return f"{days:g} day{'s' * (days != 1)}"

    @property
    def reason(self) -> str:
        """Why the hour is gone, as `auditor pull` records it and `from_reason` reads it back."""
        return f"older than the source's retention of {self.kept_for}; it answered: {self.answer}"

    @classmethod
    def from_reason(cls, label: str, reason: str, judged_ms: int) -> HourExpired | None:
        """The expiry `reason` recorded, judged at `judged_ms`; None for text not in its words."""
        said = _REASON.fullmatch(reason)
        if said is None:
            return None
        return cls(label, said[2], float(said[1]), judged_ms)


_REASON = re.compile(r"older than the source's retention of ([0-9.]+) days?; it answered: (.*)")


class Source(ABC):
    """Where the raw records of an hour come from."""

    name: ClassVar[str]
    # Keys the source adds to every record about its own storage, not the message (a Usergrid
    # entity's uuid and times): archived as received, but left out when two records are
    # compared as messages (`settle.same_message`), so a message read through another API, or
    # read again after its entity was touched, is not taken for a changed one.
    entity_fields: ClassVar[frozenset[str]] = frozenset()
    hour_timezone: timezone = UTC
    # Why an hour served mostly records of other hours, as its finding says: hour files are
    # named by a zone; a legacy query, asked by UTC milliseconds, has none (`legacy.py`).
    strays_cause: ClassVar[str] = (
        "the source may name its hours in another zone than hour_timezone says "
        "(China clusters use +8)"
    )

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """What a reader of the archive needs to know about the source; never a secret."""

    @abstractmethod
    def served(self, partition: Partition) -> Iterable[Record | Unreadable]:
        """What the hour was served with, in arrival order, duplicates and strays included."""

    def fetch(self, partition: Partition, spill_dir: Path | None = None) -> PartitionResult:
        """The hour's records settled into the partition, with what was set aside; with
        `spill_dir`, a large hour is settled on disk there (`settle`: the result must then be
        `close`d, or read through)."""
        return settle(partition, self.served(partition), self.entity_fields, spill_dir)

    def held_outside(self, since_ms: int, until_ms: int) -> str:
        """What the source holds outside the window, in words for a warning, else "": only
        local files know what they hold beyond it."""
        return ""

    def records(self, partition: Partition) -> Iterator[Record]:
        """The hour's records exactly as received, deduplicated and sorted."""
        yield from self.fetch(partition).records

    def close(self) -> None:
        """Releases connections; a source is also a context manager."""
        return None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class EasemobSource(Source):
    """A source behind an Easemob client: what the hour-file and legacy APIs share."""

    def __init__(self, client: EasemobClient, hour_timezone: timezone = UTC) -> None:
        self.client = client
        self.hour_timezone = hour_timezone

    def describe(self) -> dict[str, str]:
        return {
            "api": self.name,
            "base_url": self.client.base_url,
            "org": self.client.org,
            "app": self.client.app,
            "hour_timezone": self.hour_timezone.tzname(None) or "UTC",
        }

    def close(self) -> None:
        self.client.close()
