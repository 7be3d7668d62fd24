"""This machine: in the calling process for one worker, a process pool for more."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from auditor.errors import SourceError
from auditor.executors.interface import Executor
from auditor.partitions import Partition
from auditor.stages import PartitionOutcome, PartitionProcessor, StageSettings


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def run(
        self, partitions: list[Partition], settings: StageSettings
    ) -> Iterator[tuple[Partition, PartitionOutcome]]:
        if self.workers == 1 or len(partitions) <= 1:
            processor = PartitionProcessor(settings)
            try:
                for partition in partitions:
                    yield partition, processor.process(partition)
            finally:
                processor.close()
            return
        with ProcessPoolExecutor(
            max_workers=self.workers, initializer=_init_worker, initargs=(settings,)
        ) as pool:
            try:
                yield from zip(partitions, pool.map(_work, partitions), strict=True)
            except BrokenProcessPool:
                raise SourceError(
                    "a worker process died (killed, or out of memory) while processing "
                    "partitions; the partitions finished so far are kept: run again to resume"
                ) from None


_worker: PartitionProcessor | None = None


def _init_worker(settings: StageSettings) -> None:
    """Builds the stages once per worker process, not once per partition."""
    global _worker
    _worker = PartitionProcessor(settings)


def _work(partition: Partition) -> PartitionOutcome:
    assert _worker is not None, "worker used before its initializer ran"
    return _worker.process(partition)
