"""This machine: in the calling process for one worker, a process pool for more.

The coordinator waits at most `hour_timeout` for the next hour in order: a worker that hangs
(stopped, a read stuck past the HTTP timeouts, a deadlock) held the run for ever. Past it, every
worker is killed (which one hangs cannot be told: the awaited hour may wait on a sibling, as for
the hour-file pace lock) and the run stops with exit 3, keeping the hours finished; the hours in
progress are redone by the next run. An hour processed in this process is interrupted instead
(`deadline`).

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
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager, suppress

from auditor.errors import SourceError
from auditor.executors.deadline import Overdue, interrupted_after
from auditor.executors.interface import (
    AHEAD_PER_WORKER,
    HOUR_TIMEOUT_S,
    Executor,
    submitted_in_order,
)
from auditor.partitions import Partition
from auditor.processes import (
    LINUX,
    die_with_parent,
    raise_kept,
    stop_signals_held,
    stops_kept,
    take_stop_signals,
)
from auditor.sources.pacing import release_unused, stop_marker
from auditor.stages import PartitionOutcome, PartitionProcessor, StageSettings, pace_slots

log = logging.getLogger(__name__)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int = 1, hour_timeout: float = HOUR_TIMEOUT_S) -> None:
        self.workers = workers
        self.hour_timeout = hour_timeout

    def run(
        self, partitions: list[Partition], settings: StageSettings
    ) -> Iterator[tuple[Partition, PartitionOutcome]]:
        """The outcomes in order; a stop (Ctrl-C, SIGTERM) whose exception a finalizer swallowed
        meanwhile, in this process, stops the run at the next hour, as one raised would."""
        with stops_kept() as stops:
            if self.workers == 1 or len(partitions) <= 1:
                outcomes = self._inline(partitions, settings)
            else:
                outcomes = self._pooled(partitions, settings, stops)
            with closing(outcomes):
                for each in outcomes:
                    raise_kept(stops)
                    yield each
                    raise_kept(stops)

    def _inline(
        self, partitions: list[Partition], settings: StageSettings
    ) -> Iterator[tuple[Partition, PartitionOutcome]]:
        """Outcomes processed in this process, each interrupted past `hour_timeout`
        (`deadline`): there is no worker to kill, and threads of its downloads stuck past every
        HTTP timeout are let go rather than waited for."""
        processor = PartitionProcessor(settings)
        overdue = False
        try:
            for partition in partitions:
                try:
                    with interrupted_after(self.hour_timeout):
                        outcome = processor.process(partition)
                except Overdue:
                    overdue = True
                    raise SourceError(
                        f"hour {partition.iso()}: not done {self.hour_timeout:g} s after the run "
                        "began it (--hour-timeout): it hangs in a read, a lock or a download, "
                        "and was given up; the hours finished so far are kept: run again to "
                        "resume"
                    ) from None
                yield partition, outcome
        finally:
            processor.close(wait=not overdue)

    def _pooled(
        self, partitions: list[Partition], settings: StageSettings, stops: list[BaseException]
    ) -> Iterator[tuple[Partition, PartitionOutcome]]:
        """Outcomes from a pool of workers. Workers found dead when this process was stopped by
        a signal (`stops`: SIGTERM to the whole group kills them too) end the run as stopped."""
        # fork (Linux's default up to Python 3.13, pinned here) makes this process the workers'
        # parent, which `PR_SET_PDEATHSIG` and the check in `_init_worker` rely on.
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(partitions)),
            mp_context=multiprocessing.get_context("fork") if LINUX else None,
            initializer=_init_worker,
            initargs=(settings, os.getpid()),
        )
        pending: deque[tuple[Partition, Future[PartitionOutcome]]] = deque()
        ahead = AHEAD_PER_WORKER * self.workers
        slots = pace_slots(settings.spool_dir)
        stopping = stop_marker(slots)
        stopping.unlink(missing_ok=True)
        try:
            for partition, future in submitted_in_order(
                partitions, lambda p: _submitted(pool, p), lambda: ahead, pending
            ):
                yield partition, self._result(pool, partition, future)
        except BrokenProcessPool:
            if stops:
                raise stops[0] from None
            raise SourceError(
                "a worker process died (killed, or out of memory) while processing "
                "partitions; the partitions finished so far are kept: run again to resume"
            ) from None
        finally:
            if pending:  # hours still waiting for their pace slot are left to the next run
                with suppress(OSError):
                    stopping.touch()
            try:
                _shut_down(pool, [future for _partition, future in pending])
            finally:
                stopping.unlink(missing_ok=True)
            if pending:
                release_unused(slots, settings.source.hour_file_rate)

    def _result(
        self, pool: ProcessPoolExecutor, partition: Partition, future: Future[PartitionOutcome]
    ) -> PartitionOutcome:
        """The hour's outcome; not done `hour_timeout` seconds after the coordinator began
        waiting for it, the workers are killed and the run stops with exit 3."""
        try:
            return future.result(timeout=self.hour_timeout)
        except TimeoutError:
            killed = _killed(pool)
            raise SourceError(
                f"hour {partition.iso()}: not done {self.hour_timeout:g} s after the run began "
                "waiting for it (--hour-timeout): a worker process may hang with it (stopped, "
                f"or stuck in a read or a lock); the run's {killed} worker(s) were killed and "
                "the hours finished so far are kept: run again to resume"
            ) from None


def _killed(pool: ProcessPoolExecutor) -> int:
    """SIGKILLs the pool's workers (a stopped one too); the pool's thread then finds them dead,
    fails what they held and reaps them, as after any worker's death (`_shut_down`)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    for worker in workers:
        with suppress(ProcessLookupError):
            worker.kill()
    return len(workers)


def _submitted(pool: ProcessPoolExecutor, partition: Partition) -> Future[PartitionOutcome]:
    """`pool.submit`, whose first call forks the workers, with the stop signals held."""
    with stop_signals_held():
        return pool.submit(_work, partition)


def _shut_down(pool: ProcessPoolExecutor, pending: list[Future[PartitionOutcome]]) -> None:
    """Stopped early (the coordinator failed, Ctrl-C, SIGTERM): partitions not started are
    dropped, those running finish and keep their spool for the next run. A second Ctrl-C while
    they finish kills them instead: what they spooled is redone by the next run, as after any
    kill.

    Only the pool's own thread drops them (`cancel_futures`): when a SIGTERM to the whole group
    kills the workers, that thread fails every future it still holds, and one cancelled from
    here meanwhile made it raise (Python 3.11's `terminate_broken`), printing a traceback before
    the stop's one line. The wait for the running ones is on their futures, not in `shutdown`:
    a KeyboardInterrupt in Python 3.11's `Thread.join` marks the pool's thread finished while it
    still runs, and `shutdown` then closes the queue under it."""
    # `shutdown(wait=False)` lets go of the workers and the thread: kept to kill and join them.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    try:
        running = sum(future.running() for future in pending)
        if running:  # an hour takes seconds: said only with -v, so a stop stays one line
            log.info(
                "waiting for %d hour(s) in progress to finish and keep their spool "
                "(Ctrl-C again stops them at once)",
                running,
            )
        for future in pending:
            _settled(future)
    except KeyboardInterrupt:
        with _interrupts_deferred():
            for worker in workers:
                worker.kill()
            _joined(manager)
        raise
    with _interrupts_deferred():
        _joined(manager)


def _settled(future: Future[PartitionOutcome]) -> None:
    """Waits until `future` has an outcome or is cancelled. Not `wait`: it never returns for a
    future the pool's thread cancels at shutdown, since it takes a cancelled future for done
    only once `set_running_or_notify_cancel` has seen it, which that thread skips."""
    with suppress(CancelledError):
        future.exception()


def _joined(thread: threading.Thread | None) -> None:
    if thread is not None:
        thread.join()


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C held back until the pool's thread is joined (see `_shut_down`), then raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, _frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)


_worker: PartitionProcessor | None = None


def _init_worker(settings: StageSettings, coordinator: int) -> None:
    """Ties the worker's life to the coordinator's, then builds the stages once per worker
    process, not once per partition.

    Ctrl-C reaches the whole process group, and only the coordinator answers it (running
    partitions finish after the first, the workers are killed at the second): a worker ignores
    it rather than abandon its hour at the first. SIGTERM, held while the worker was forked
    (`stop_signals_held`), is taken only then: a SIGTERM sent meanwhile ends the worker here."""
    global _worker
    if die_with_parent() and os.getppid() != coordinator:  # it died before the kernel was asked
        os.kill(os.getpid(), signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    take_stop_signals()
    _worker = PartitionProcessor(settings)


def _work(partition: Partition) -> PartitionOutcome:
    assert _worker is not None, "worker used before its initializer ran"
    return _worker.process(partition)
