"""The executor plug: runs the per-partition stages somewhere and hands back outcomes in order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from auditor.partitions import Partition
from auditor.stages import PartitionOutcome, StageSettings


class Executor(ABC):
    """Processes partitions with `stages.PartitionProcessor` built from `StageSettings`.

    Implementations may run partitions in any order and anywhere that sees the spool folder,
    but must yield `(partition, outcome)` in the order of `partitions`, and raise an
    `AuditorError` (not a traceback) when the workers cannot finish. The coordinator archives
    each outcome as soon as it is yielded, so workers must go on with later partitions while it
    does, and closing the iterator early (the coordinator failed) must stop them.
    """

    name: str

    @abstractmethod
    def run(
        self, partitions: list[Partition], settings: StageSettings
    ) -> Iterator[tuple[Partition, PartitionOutcome]]:
        """Outcomes of `partitions`, in their order."""
