"""The executor plug: runs the per-partition stages somewhere and hands back outcomes in order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

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


# How long the coordinator waits for the next hour in order before it gives the run up (exit 3),
# counted from when it began waiting for that hour, whatever the executor: a worker that hangs
# (stopped, a read stuck past the HTTP timeouts, a deadlock) held the run, and a scheduled job
# must end. An hour takes seconds to minutes (its turn for Easemob's 10 hour files a minute,
# retries, a big hour settled on disk): an hour of waiting is far past any of them.
HOUR_TIMEOUT_S = 3600.0

# Partitions each worker may run ahead of the coordinator: enough that none waits while it
# archives an hour, few enough that memory and spool do not grow with the window.
AHEAD_PER_WORKER = 4

Handle = TypeVar("Handle")


def submitted_in_order(
    partitions: Iterable[Partition],
    submit: Callable[[Partition], Handle],
    ahead: Callable[[], int],
    pending: deque[tuple[Partition, Handle]],
) -> Iterator[tuple[Partition, Handle]]:
    """`(partition, submit(partition))` in the order of `partitions`, with at most `ahead()`
    submitted and not yet handed over: submitting a whole window at once held a task for every
    hour of it (a mistyped year is 87,600 of them) before the first was done.

    `pending` holds what was submitted, the head until the caller asks for the next, so that a
    caller stopped while waiting on the head (Ctrl-C, its error) can cancel or await them all.
    """
    for partition in partitions:
        pending.append((partition, submit(partition)))
        while len(pending) >= ahead():
            yield pending[0]
            pending.popleft()
    while pending:
        yield pending[0]
        pending.popleft()
