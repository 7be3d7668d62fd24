"""This machine: in the calling process for one worker, a process pool for more.

The coordinator archives each partition while the pool works on later ones, so it can die (a
SIGKILL, the OOM killer) with workers still busy. On Linux each worker asks the kernel to kill it
when the coordinator dies (`PR_SET_PDEATHSIG`), so no orphan goes on writing under a later run's
spool; elsewhere nothing ties them, and the spool digest the coordinator checks over the bytes it
archives is what refuses a spool rewritten by an orphan.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from auditor.errors import SourceError
from auditor.executors.interface import Executor
from auditor.partitions import Partition
from auditor.processes import LINUX, die_with_parent
from auditor.stages import PartitionOutcome, PartitionProcessor, StageSettings

log = logging.getLogger(__name__)


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
        # fork (Linux's default up to Python 3.13, pinned here) makes this process the workers'
        # parent, which `PR_SET_PDEATHSIG` and the check in `_init_worker` rely on.
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(partitions)),
            mp_context=multiprocessing.get_context("fork") if LINUX else None,
            initializer=_init_worker,
            initargs=(settings, os.getpid()),
        )
        try:
            yield from zip(partitions, pool.map(_work, partitions), strict=True)
        except BrokenProcessPool:
            raise SourceError(
                "a worker process died (killed, or out of memory) while processing "
                "partitions; the partitions finished so far are kept: run again to resume"
            ) from None
        finally:
            # Stopped early (the coordinator failed): partitions not started are dropped, those
            # running finish and keep their spool for the next run.
            pool.shutdown(wait=True, cancel_futures=True)


_worker: PartitionProcessor | None = None


def _init_worker(settings: StageSettings, coordinator: int) -> None:
    """Ties the worker's life to the coordinator's, then builds the stages once per worker
    process, not once per partition."""
    global _worker
    if die_with_parent() and os.getppid() != coordinator:  # it died before the kernel was asked
        os.kill(os.getpid(), signal.SIGKILL)
    _worker = PartitionProcessor(settings)


def _work(partition: Partition) -> PartitionOutcome:
    assert _worker is not None, "worker used before its initializer ran"
    return _worker.process(partition)
