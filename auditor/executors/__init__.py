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
# Each worker process builds its own stages (schemas, policy automata: about 100 MB), and a
# fork pool starts all of them at once: 64 is past any one machine's useful parallelism (and
# Easemob's 10 hour files a minute), still far from exhausting its memory.
MAX_WORKERS = 64


def check_workers(workers: int) -> None:
    """Refuses a worker count no machine should start, before any process is made."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(
            f"workers (--workers, or workers: in the config) must be between 1 and "
            f"{MAX_WORKERS}, not {workers}"
        )


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
