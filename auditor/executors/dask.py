"""A Dask `distributed` cluster: one task per partition, outcomes handed back in partition order,
a bounded number of tasks ahead of the coordinator (`interface.submitted_in_order`).

`distributed` is an optional extra (`pip install 'easemob-auditor[dask]'`) imported only when
this executor runs, so the core never needs it. The coordinator stays where `run_audit` runs: it
orders the outcomes, checks every spool digest, builds the Merkle tree, signs the bag, and is the
only writer of the state database. Workers pull, validate and apply policies, and write each
partition's spool under the run's spool folder, which must therefore be on storage both sides
see at the same path (NFS, CephFS, a shared volume). A worker lost mid-task (killed, out of
memory) is replaced and its task rerun by Dask; each attempt at a partition writes spool files of
its own, named in the outcome it returns, so the bag's bytes do not depend on where, or how many
times, a partition ran, and a worker the scheduler gave up on (hung, cut off) that wakes and
finishes the hour late writes beside the files the coordinator reads, never over them. The
coordinator archives each hour as soon as it and the hours before it are done, while the cluster
works on.
Workers of a local cluster exit with the coordinator (Dask's nanny processes watch their parent);
a task a remote worker still runs for a killed coordinator may rewrite a spool under the next
run, which is why the coordinator checks each spool's digest over the very bytes it archives.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from auditor import __version__, crashpoints
from auditor.archive.untrusted import shown
from auditor.errors import ConfigError, SourceError, os_reason
from auditor.executors import parse_hour_timeout
from auditor.executors.interface import (
    AHEAD_PER_WORKER,
    HOUR_TIMEOUT_S,
    Executor,
    submitted_in_order,
)
from auditor.file_access import current_umask, umask_while
from auditor.operator_files import home_expanded
from auditor.partitions import Partition
from auditor.processes import raise_kept, stops_kept
from auditor.sources.pacing import STOP_POLL_S, PacingStopped, release_unused, stop_marker
from auditor.stages import (
    PartitionOutcome,
    PartitionProcessor,
    StageSettings,
    pace_slots,
    spool_paths,
)

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'easemob-auditor[dask]'"
# How long the run's own local cluster may hold a task with no worker to run it before it fails
# (exit 3): a worker that dies as its nanny restarts it is not restarted again, and a cluster
# left without one held the run for ever. A cluster at --scheduler keeps its own setting.
NO_WORKERS_TIMEOUT = "60s"
# How long its scheduler waits to hear from a worker before it takes the worker's tasks to
# another: Dask's default of 5 minutes, checked every 5 minutes, held a run behind a hung
# (SIGSTOPped) worker for up to 10. A worker busy on an hour still answers: its heartbeats run
# beside the task. Used unless the configuration sets another value than Dask's default.
WORKER_TTL_S = 60
DASK_DEFAULT_WORKER_TTL_S = 300
# How long the run's own cluster waits for a lost worker (killed, out of memory) to come back
# before it closes the worker's nanny for good: Dask's 15 s, meant for a batch system's lost job,
# closed nannies whose replacement, spawned on a loaded machine, took 17 s to start, and the run
# went on a worker short, or stopped at exit 3 with none. Its nannies are threads of this
# process, never lost themselves. Used unless the configuration sets another value than Dask's.
LOST_WORKER_TIMEOUT_S = 600
DASK_DEFAULT_LOST_WORKER_TIMEOUT_S = 15
# What a nanny gives a worker the scheduler restarts (worker-ttl) to close before it kills it:
# 0.8 of `Nanny.kill`'s default 5 s timeout (distributed 2026.8).
NANNY_KILL_S = 4
# The run's `--hour-timeout` (`interface.HOUR_TIMEOUT_S`), which a Dask run may also take from
# Dask's config, beside Dask's own timeouts, when the run does not set it: `auditor.hour-timeout`
# in a Dask config file, or DASK_AUDITOR__HOUR_TIMEOUT=30m. A cluster at --scheduler keeps its
# own worker-ttl, which may be off (a hung worker then held its hour, and the run, for ever).
HOUR_TIMEOUT_KEY = "auditor.hour-timeout"


def _distributed() -> ModuleType:
    """The `distributed` package, or a clear error naming the extra that provides it."""
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            f"--executor dask needs the Dask extra, which is not installed: {INSTALL_HINT}"
        ) from None
    return distributed


@dataclass(frozen=True, slots=True)
class WorkerCheck:
    """What every worker must share with the coordinator before it may process a partition:
    the auditor's version, and the SHA-256 of the policy the run began with (the one its bag
    names), not of the file as it was when the cluster got the first task. The run's id and
    umask travel here too, after them: a worker of an older version unpickles fields it does not
    know as nothing and refuses by version, where a new argument of the task's own would end
    it in a TypeError instead."""

    version: str
    policy_sha256: str
    run_id: str = ""
    umask: int | None = None


class DaskExecutor(Executor):
    """Partitions as tasks on a Dask cluster: the one at `scheduler`, or a local one of `workers`
    processes started for the run when no scheduler is given."""

    name = "dask"

    def __init__(
        self,
        workers: int = 1,
        scheduler: str | None = None,
        retries: int = 1,
        connect_timeout: float | None = None,
        hour_timeout: float | None = None,
    ) -> None:
        self.workers = workers
        self.scheduler = scheduler
        self.retries = retries
        self.connect_timeout = connect_timeout
        # made before the run begins in the state: a missing extra or a bad setting is then one
        # line with nothing begun, rather than a begun run the next one must resume
        _distributed()
        self.hour_timeout = hour_timeout if hour_timeout is not None else dask_hour_timeout()

    def run(
        self, partitions: list[Partition], settings: StageSettings
    ) -> Iterator[tuple[Partition, PartitionOutcome]]:
        if not partitions:
            return
        distributed = _distributed()
        settings = _absolute(settings)
        slots = pace_slots(settings.spool_dir)
        # left by the last run that stopped: workers kept from before it would obey it
        stop_marker(slots).unlink(missing_ok=True)
        run_id = uuid.uuid4().hex[:12]
        check = WorkerCheck(
            __version__,
            settings.policy_sha256 or _file_sha256(settings.policy_path),
            run_id,
            current_umask(),  # `--file-access`, for workers started with a umask of their own
        )
        app = f"{settings.source.org}.{settings.source.app}"
        workers = min(self.workers, len(partitions))
        pending: deque[tuple[Partition, Any]] = deque()
        timeout = self.hour_timeout
        stop = _Stop(slots, run_id)
        with (
            stops_kept() as stops,
            stop,
            cluster_client(self.scheduler, workers, self.connect_timeout) as client,
        ):
            if self.scheduler is not None:
                _warn_of_a_late_worker_ttl(client, self.scheduler, timeout)
            watch = _Watch(client, run_id, self.retries)

            def submit(partition: Partition) -> Any:
                key = f"audit-{app}-{partition.label()}-{run_id}"
                watch.hours[key] = partition.iso()
                return client.submit(
                    process_partition,
                    partition,
                    settings=settings,
                    check=check,
                    key=key,
                    retries=self.retries,
                )

            ahead = _Lead(client, workers)
            try:
                for partition, future in submitted_in_order(
                    partitions, submit, ahead.tasks, pending
                ):
                    outcome = self._result(future, partition, distributed, timeout)
                    _check_visible(settings, partition, outcome)
                    # a stop swallowed by a finalizer (Dask's `Future.__del__`, as the
                    # coordinator drops an hour's future) stops the run here
                    raise_kept(stops)
                    yield partition, outcome
                    raise_kept(stops)
            finally:
                watch.close()
                stopped = [future for _partition, future in pending]
                if stopped:
                    stop.tell()
                    # the run's own cluster waits for its tasks as it closes; one at --scheduler
                    # outlives the run, so its tasks are given a moment to see the marker
                    stop.settled = self.scheduler is None or _settled(stopped, STOP_GRACE_S)
                client.cancel(stopped)
                if pending:
                    release_unused(slots, settings.source.hour_file_rate)

    def _result(
        self, future: Any, partition: Partition, distributed: ModuleType, timeout: float
    ) -> PartitionOutcome:
        """A task's outcome; the cluster's own failures, and an hour not done `timeout` seconds
        after the coordinator began waiting for it, become one line and exit code 3."""
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            where = self.scheduler or "the local Dask cluster"
            raise SourceError(
                f"hour {partition.iso()}: not done {timeout:g} s after the run began waiting for "
                f"it (--hour-timeout, or {HOUR_TIMEOUT_KEY} in Dask's config): a worker of "
                f"{where} may hang with it, and the "
                "cluster has not taken it away (see distributed.scheduler.worker-ttl); the hours "
                "finished so far are kept: run again to resume"
            ) from None
        except distributed.scheduler.NoWorkerError:
            raise SourceError(
                f"hour {partition.iso()}: {self.scheduler or 'the local Dask cluster'} had no "
                "worker left to run it (see distributed.scheduler.no-workers-timeout); the "
                "hours finished so far are kept: run again to resume"
            ) from None
        except distributed.KilledWorker:
            raise SourceError(
                f"hour {partition.iso()}: every Dask worker that ran it died (killed or out of "
                "memory; see distributed.scheduler.allowed-failures); the hours finished so "
                "far are kept: run again to resume"
            ) from None
        except (CancelledError, OSError) as error:
            where = self.scheduler or "the local Dask cluster"
            reason = " ".join(str(error).split())
            raise SourceError(
                f"hour {partition.iso()}: lost {where} ({type(error).__name__}: {reason}); "
                "the hours finished so far are kept: run again to resume"
            ) from None


# How long a stopped run waits for its tasks on a cluster at --scheduler to give their hours up
# before it removes its stop marker: one waiting for its pace slot gives up within
# `STOP_POLL_S`, one that starts after the stop at once. A task that takes longer (fetching an
# hour it began) leaves the marker for the next run to remove.
STOP_GRACE_S = 2.0


class _Stop:
    """The run's stop marker (`pacing.stop_marker`), which tells its tasks that it stopped, as
    the local executor does: one waiting for its pace slot gives the hour up within
    `STOP_POLL_S`, and one that starts after the stop fetches nothing (`process_partition`).
    Cancelling a future does neither: Dask lets a task that runs finish, on a worker that
    outlives the run (a cluster at --scheduler) or that the closing local cluster waits for,
    and one a worker had already taken may still start.

    Used as a context around the cluster: once the run's own cluster has closed, or every
    stopped task at --scheduler is done (`settled`), the marker is removed; otherwise it is
    left, naming this run only, and the next run removes it before it submits anything."""

    def __init__(self, slots: Path, run_id: str) -> None:
        self.slots = slots
        self.run_id = run_id
        self.settled = False

    def tell(self) -> None:
        with suppress(OSError):
            stop_marker(self.slots).write_text(self.run_id)

    def __enter__(self) -> _Stop:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.settled and _stopped(self.slots, self.run_id):
            with suppress(OSError):
                stop_marker(self.slots).unlink()


FAILED_TOPIC = "easemob-auditor-attempt-failed"
"""The Dask event topic on which a task tells the coordinator that an attempt failed."""


class _Watch:
    """What Dask does to the run's tasks unasked, as one warning line each: a worker lost while
    it ran hours (killed, out of memory, cut off), whose hours Dask runs again elsewhere, and an
    attempt that failed and that Dask runs again (`retries`). Dask logs the first at INFO and
    the second not at all, and its logs are hidden without -v (`_dask_log_level`); the last
    failure of an hour is the run's own error line, not warned of here.

    Told by the scheduler's events (its `all` topic, and `FAILED_TOPIC` from the tasks), so
    it works with a cluster at --scheduler too; the handlers run on the client's thread."""

    def __init__(self, client: Any, run_id: str, retries: int) -> None:
        self.run_id = run_id
        self.retries = retries
        self.hours: dict[str, str] = {}  # task key -> the hour's ISO time
        self.failures: Counter[str] = Counter()
        self.active = True
        self.client = client
        client.subscribe_topic("all", self._removed)
        client.subscribe_topic(FAILED_TOPIC, self._failed)

    def close(self) -> None:
        """Stops the warnings and the events: the scheduler would send its closing client the
        event of its own leaving, and log a CRITICAL traceback when the client has gone."""
        from distributed.client import ClosedClientError

        self.active = False
        for topic in ("all", FAILED_TOPIC):
            with suppress(ValueError, ClosedClientError):  # a client closed with a lost scheduler
                self.client.unsubscribe_topic(topic)

    def _removed(self, event: tuple[float, Any]) -> None:
        _at, message = event
        if not self.active or not isinstance(message, dict):
            return
        if message.get("action") != "remove-worker" or message.get("expected"):
            return
        keys = message.get("processing-tasks") or ()
        # another client's keys may be tuples, lists once they cross msgpack
        ours = [key for key in keys if isinstance(key, str) and key in self.hours]
        hours = sorted(self.hours[key] for key in ours)
        if hours:
            log.warning(
                "Dask worker %s was lost (killed, out of memory or cut off) while it ran %s %s: "
                "Dask runs %s again on another worker",
                shown(str(message.get("worker", "?"))),
                "hour" if len(hours) == 1 else "hours",
                ", ".join(hours),
                "it" if len(hours) == 1 else "them",
            )

    def _failed(self, event: tuple[float, Any]) -> None:
        _at, message = event
        if not self.active or not isinstance(message, dict):
            return
        key = message.get("key")
        if message.get("run") != self.run_id or not isinstance(key, str) or key not in self.hours:
            return
        hour = self.hours[key]
        self.failures[hour] += 1
        if self.failures[hour] <= self.retries:
            log.warning(
                "hour %s failed on the Dask worker on %s (%s); Dask runs it again (retry %d of %d)",
                hour,
                shown(str(message.get("host", "?"))),
                shown(str(message.get("error", "?"))),
                self.failures[hour],
                self.retries,
            )


def _settled(futures: list[Any], limit: float) -> bool:
    """Whether every future is done (finished, failed or cancelled) within `limit` seconds."""
    deadline = time.monotonic() + limit
    while not all(future.done() for future in futures):
        if time.monotonic() >= deadline:
            return False
        time.sleep(STOP_POLL_S / 5)
    return True


def _stopped(slots: Path, run_id: str) -> bool:
    try:
        return stop_marker(slots).read_text() == run_id
    except (OSError, UnicodeDecodeError):
        return False


def dask_hour_timeout() -> float:
    """Seconds the coordinator waits for each hour in order when the run does not say
    (`--hour-timeout`): `HOUR_TIMEOUT_KEY`, read as the option is, or a one-line error naming
    the setting. Dask's `parse_timedelta` took `0.5s`, `30d` and `60 minutes`, which the option
    refuses."""
    import dask.config

    value = dask.config.get(HOUR_TIMEOUT_KEY, f"{HOUR_TIMEOUT_S:g}s")
    return parse_hour_timeout(
        value, f"Dask setting {HOUR_TIMEOUT_KEY} (DASK_AUDITOR__HOUR_TIMEOUT)"
    )


def _warn_of_a_late_worker_ttl(client: Any, scheduler: str, timeout: float) -> None:
    """One warning when the cluster at `scheduler` may take a hung worker's tasks away only
    after `timeout`, or never: the run then stops at `timeout` with exit 3 rather than rerun
    the hour elsewhere. The scheduler looks for silent workers only every worker-ttl, and a
    nanny gives its worker `NANNY_KILL_S` before it kills it, so a task moves up to twice the
    worker-ttl and that long after the worker's last heartbeat. Asked of the scheduler's own
    config; a scheduler that will not say (it refuses pickled calls) is not warned about. The
    question is a lambda, pickled by value, since the scheduler need not have the auditor
    installed."""
    try:
        ttl = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.worker_ttl)
    except Exception:  # any refusal only means there is nothing to warn of
        return
    if ttl is not None and 2 * ttl + NANNY_KILL_S <= timeout:
        return
    said = "off" if ttl is None else f"{ttl:g} s"
    log.warning(
        "the Dask scheduler at %s takes a hung worker's tasks to another only up to twice its "
        "distributed.scheduler.worker-ttl (%s) after it fell silent: a worker that hangs may "
        "stop this run after %s (%s) instead; set the scheduler's worker-ttl to a few minutes",
        scheduler,
        said,
        f"{timeout:g} s",
        HOUR_TIMEOUT_KEY,
    )


class _Lead:
    """How many tasks may run ahead of the coordinator: `AHEAD_PER_WORKER` for each worker
    thread the cluster has, asked again every `ASK_EVERY` seconds, since a remote cluster may
    grow (an adaptive one grows with the tasks waiting, so a lead fixed at the start would hold
    it small). Asked only while the client is connected, and the last answer stands when the
    scheduler cannot give one: a lost scheduler is reported by the task it fails."""

    ASK_EVERY = 10.0

    def __init__(self, client: Any, workers: int) -> None:
        self.client = client
        self.workers = workers
        self.threads = workers
        self.asked = -self.ASK_EVERY

    def tasks(self) -> int:
        now = time.monotonic()
        if now - self.asked >= self.ASK_EVERY and self.client.status == "running":
            self.asked = now
            with suppress(OSError):
                self.threads = max(self.workers, sum(self.client.nthreads().values()))
        return AHEAD_PER_WORKER * self.threads


@contextmanager
def local_cluster(workers: int) -> Iterator[str]:
    """A Dask cluster of `workers` single-threaded processes on this machine, for one command;
    yields the scheduler's address. Its worker processes log at `_dask_log_level`, and each,
    a replacement too, runs `dask_setup` as it starts."""
    distributed = _distributed()
    import dask.config
    from dask.utils import parse_timedelta

    limit = dask.config.get("distributed.scheduler.no-workers-timeout") or NO_WORKERS_TIMEOUT
    ttl = dask.config.get("distributed.scheduler.worker-ttl")
    if ttl is not None and parse_timedelta(ttl) == DASK_DEFAULT_WORKER_TTL_S:
        ttl = f"{WORKER_TTL_S}s"
    lost = dask.config.get("distributed.deploy.lost-worker-timeout")
    if parse_timedelta(lost) == DASK_DEFAULT_LOST_WORKER_TIMEOUT_S:
        lost = f"{LOST_WORKER_TIMEOUT_S}s"
    # for the cluster's whole life: the lost-worker timeout is read as each worker is lost
    with dask.config.set(
        {
            "distributed.scheduler.no-workers-timeout": limit,
            "distributed.scheduler.worker-ttl": ttl,
            "distributed.deploy.lost-worker-timeout": lost,
        }
    ):
        try:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=_dask_log_level(),
                preload=[__name__],
            )
        except (RuntimeError, OSError) as error:  # a worker died as it started ("Nanny failed")
            reason = " ".join(str(error).split())
            raise SourceError(
                f"the local Dask cluster of {workers} worker(s) did not start ({reason}): run again"
            ) from None
        with cluster:
            yield cluster.scheduler_address


def _dask_log_level() -> int:
    """INFO from -v on (Dask's own debug lines are no help), else nothing short of CRITICAL.

    Without -v, a run is one line when it stops: Dask's warnings and errors about a worker it
    restarted, a task it gave up on or a scheduler that closed first (a page of tracebacks at
    Ctrl-C) would bury it, and the run's own line says what matters of them. What matters
    while the run goes on (a worker lost, an hour run again) `_Watch` says, one line each."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        return logging.INFO
    return logging.CRITICAL


def _quieten_dask_logs() -> None:
    """Raises Dask's loggers in this process to `_dask_log_level` (never lowers them).

    `distributed` sets its loggers to INFO when imported and, finding the command's handler on
    the root logger, logs through it: a run without -v would print 30-odd lines of Dask starting
    and stopping, and a cron job's one-line errors would be lost in them. `silence_logs` only
    quietens the handlers Dask adds itself, none here. Left raised after the run, as the
    command's own logging is: two apps may share the process, each with a cluster."""
    level = _dask_log_level()
    for name, logger in list(logging.root.manager.loggerDict.items()):
        in_dask = name.partition(".")[0] == "distributed"
        if in_dask and isinstance(logger, logging.Logger) and 0 < logger.level < level:
            logger.setLevel(level)


@contextmanager
def cluster_client(
    scheduler: str | None, workers: int = 1, connect_timeout: float | None = None
) -> Iterator[Any]:
    """A `distributed.Client` of the scheduler at `scheduler`, or of a local cluster without one.

    Without `connect_timeout`, Dask's `distributed.comm.timeouts.connect` applies (30 s unless
    configured, e.g. by `DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s`)."""
    distributed = _distributed()
    _quieten_dask_logs()
    with local_cluster(workers) if scheduler is None else nullcontext() as started:
        address = scheduler or started
        try:
            timeout = {} if connect_timeout is None else {"timeout": connect_timeout}
            client = distributed.Client(address, set_as_default=False, **timeout)
        except OSError as error:
            raise SourceError(
                f"cannot reach the Dask scheduler at {address} ({error}); check --scheduler "
                "and that the scheduler is running"
            ) from None
        with client:
            yield client


def _absolute(settings: StageSettings) -> StageSettings:
    """Workers run elsewhere, in another folder: every path they are given must be absolute.

    The policy's path stays as given, a link not followed, since its term files are relative to
    the folder the coordinator read them from."""
    return replace(
        settings,
        spool_dir=str(Path(settings.spool_dir).resolve()),
        policy_path=str(home_expanded(settings.policy_path).absolute()),
    )


def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_visible(
    settings: StageSettings, partition: Partition, outcome: PartitionOutcome
) -> None:
    spooled = spool_paths(Path(settings.spool_dir), partition, outcome.attempt)["records"]
    if not spooled.exists():
        raise ConfigError(
            f"hour {partition.iso()}: a worker spooled it, but {spooled} is not visible here: the "
            "spool folder (under --out) must be on storage shared by coordinator and workers"
        )


# -- the worker's side ---------------------------------------------------------------------------


def dask_setup(worker: object) -> None:
    """Run by each worker process of the run's own local cluster as it starts (a `preload`).

    Ctrl-C reaches the whole process group, and only the coordinator answers it, closing the
    cluster: a worker that took it too died at once with a page of tracebacks on the run's
    stderr, under the run's one line. A worker ignores it, as a local pool's worker does."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    crashpoints.reached("dask.worker-start")


_KEPT_SETTINGS = 32
_idle: OrderedDict[StageSettings, list[PartitionProcessor]] = OrderedDict()
_lock = threading.Lock()


def process_partition(
    partition: Partition, settings: StageSettings, check: WorkerCheck
) -> PartitionOutcome:
    """One task: process a partition with a processor built once per worker thread and run.

    What it writes (spool, attachments, pace slots) is made under the coordinator's umask,
    not that of a worker started by `dask worker` (022, or 000), which made the spool's chat
    messages readable by every user of the host.

    A task of the check's run that starts once the run has stopped fetches nothing: its pacer,
    if new, would take the stop marker for an older run's (`pacing.Pacer`), so the marker is
    read here, after the processor is made; from then on the pacer itself watches for it."""
    with nullcontext() if check.umask is None else umask_while(check.umask):
        return _processed(partition, settings, check)


def _processed(
    partition: Partition, settings: StageSettings, check: WorkerCheck
) -> PartitionOutcome:
    run_id = check.run_id
    try:
        processor = _acquire(settings, check)
        try:
            if run_id and _stopped(pace_slots(settings.spool_dir), run_id):
                raise PacingStopped(f"run {run_id} stopped before hour {partition.iso()} began")
            return processor.process(partition)
        finally:
            _release(settings, processor)
    except PacingStopped:
        raise
    except Exception as error:
        _tell_failed(run_id, error)
        raise


_ERROR_CHARS = 300


def _tell_failed(run_id: str, error: Exception) -> None:
    """Tells the coordinator (`_Watch`) that this attempt failed, and why, before Dask runs it
    again without a word. Nothing when not run by a Dask worker."""
    distributed = _distributed()
    try:
        worker = distributed.get_worker()
    except ValueError:
        return
    reason = " ".join(f"{type(error).__name__}: {error}".split())
    if len(reason) > _ERROR_CHARS:
        reason = reason[: _ERROR_CHARS - 1] + "…"
    worker.log_event(
        FAILED_TOPIC,
        {
            "run": run_id,
            "key": worker.get_current_task(),
            "host": socket.gethostname(),
            "error": reason,
        },
    )


def _acquire(settings: StageSettings, check: WorkerCheck) -> PartitionProcessor:
    with _lock:
        idle = _idle.get(settings)
        if idle:
            _idle.move_to_end(settings)
            return idle.pop()
    _check_worker(settings, check)
    return PartitionProcessor(settings)


def _release(settings: StageSettings, processor: PartitionProcessor) -> None:
    """Keeps the processor for the next task of the same run; closes those of old runs."""
    evicted: list[PartitionProcessor] = []
    with _lock:
        _idle.setdefault(settings, []).append(processor)
        _idle.move_to_end(settings)
        while len(_idle) > _KEPT_SETTINGS:
            evicted.extend(_idle.popitem(last=False)[1])
    for old in evicted:
        old.close()


def _check_worker(settings: StageSettings, check: WorkerCheck) -> None:
    """Refuses to work with another version of the auditor or another policy file, which would
    give a bag that differs from a local run without anyone noticing. A worker started after
    the file was saved anew (one replacing a worker that died, or joining an adaptive cluster)
    refuses it as a local pool's worker does (`stages._run_policy`), naming both digests."""
    host = socket.gethostname()
    if __version__ != check.version:
        raise ConfigError(
            f"Dask worker on {host} runs auditor {__version__}, the coordinator "
            f"{check.version}: install the same version on every worker"
        )
    try:
        found = _file_sha256(settings.policy_path)
    except OSError as error:
        raise ConfigError(
            f"Dask worker on {host} cannot read the policy file {settings.policy_path} "
            f"({os_reason(error)}): workers must see it at the same path as the coordinator"
        ) from None
    if found != check.policy_sha256:
        raise ConfigError(
            f"Dask worker on {host}: the policy file {settings.policy_path} is not the one the "
            f"run began with (its SHA-256 is now {found[:12]}…, the run's "
            f"{check.policy_sha256[:12]}…): it changed after the run began, or this worker sees "
            "another file at that path; the run stops so that every record of its archive is "
            "judged by one policy: run it again"
        )
