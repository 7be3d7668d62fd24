"""Where partitions are processed: in this process, a local process pool, or a cluster.

One small interface (`interface.Executor`) and one file per implementation, so a new engine is
one new file. Every executor yields outcomes in partition order, so the bag's bytes never depend
on where or how the partitions ran.
"""

from __future__ import annotations

from auditor.errors import ConfigError
from auditor.executors.interface import Executor
from auditor.executors.local import LocalExecutor

EXECUTORS = ("local",)


def make_executor(name: str, workers: int, **options: object) -> Executor:
    if name == "local":
        return LocalExecutor(workers)
    raise ConfigError(f"executor {name!r} is not one of {', '.join(EXECUTORS)}")
