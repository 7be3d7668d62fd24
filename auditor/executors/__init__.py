"""Where partitions are processed: in this process, a local process pool, or a cluster.

One small interface (`interface.Executor`) and one file per implementation, so a new engine is
one new file. Every executor yields outcomes in partition order, so the bag's bytes never depend
on where or how the partitions ran.
"""

from __future__ import annotations

from auditor.errors import ConfigError
from auditor.executors.interface import Executor
from auditor.executors.local import LocalExecutor

EXECUTORS = ("local", "dask")


def make_executor(name: str, workers: int, **options: object) -> Executor:
    if name == "local":
        return LocalExecutor(workers)
    if name == "dask":
        from auditor.executors.dask import DaskExecutor  # the optional extra, only when asked

        return DaskExecutor(workers, **options)
    raise ConfigError(f"executor {name!r} is not one of {', '.join(EXECUTORS)}")


def executor_options(name: str, scheduler: str | None) -> dict[str, object]:
    """The options of `make_executor` that `auditor run` takes from its flags and config."""
    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r} is not one of {', '.join(EXECUTORS)}")
    if scheduler is None:
        return {}
    if name != "dask":
        raise ConfigError("--scheduler is the address of a Dask scheduler: add --executor dask")
    if not scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise ConfigError(f"--scheduler {scheduler!r} must look like tcp://HOST:8786")
    return {"scheduler": scheduler}
