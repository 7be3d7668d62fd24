"""A Dask worker of another auditor version refuses a task by version, in one clear line.

What a task needs beyond the partition and settings (the run's id, the coordinator's umask)
travels inside `WorkerCheck`, after its version: a worker of an older release, whose check
has fewer fields, still unpickles the task and refuses it by version. As arguments of the
task's own (as they were before), it ended in `TypeError: unexpected keyword 'umask'`."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest

from auditor.errors import ConfigError
from auditor.executors import dask as dask_executor


@dataclass(frozen=True, slots=True)
class _OlderWorkerCheck:
    """`WorkerCheck` as a release before the run id and umask knew it."""

    version: str
    policy_sha256: str


def test_a_check_with_fields_an_older_worker_lacks_unpickles_there_and_is_refused_by_version(
    monkeypatch,
):
    check = dask_executor.WorkerCheck("9.9.9", "ab" * 32, "0123456789ab", 0o077)
    sent = pickle.dumps(check)
    _OlderWorkerCheck.__qualname__ = "WorkerCheck"
    monkeypatch.setattr(dask_executor, "WorkerCheck", _OlderWorkerCheck)
    received = pickle.loads(sent)
    assert type(received) is _OlderWorkerCheck
    assert (received.version, received.policy_sha256) == ("9.9.9", "ab" * 32)
    with pytest.raises(ConfigError, match=r"coordinator 9\.9\.9: install the same version"):
        dask_executor._check_worker(None, received)


def test_the_task_takes_the_partition_its_settings_and_the_check_alone():
    """Anything new a task needs goes into the check, never a new argument."""
    import inspect

    assert list(inspect.signature(dask_executor.process_partition).parameters) == [
        "partition",
        "settings",
        "check",
    ]
