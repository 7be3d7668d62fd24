"""Where partitions are processed: in this process, a local process pool, or a cluster.

One small interface (`interface.Executor`) and one file per implementation, so a new engine is
one new file. Every executor yields outcomes in partition order, so the bag's bytes never depend
on where or how the partitions ran.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from auditor.errors import ConfigError
from auditor.sources.options import is_loopback

if TYPE_CHECKING:  # the executors import the stages: `auditor run --help` reads only the names
    from auditor.executors.interface import Executor

EXECUTORS = ("local", "dask")
# Each worker process builds its own stages (schemas, policy automata: about 100 MB), and a
# fork pool starts all of them at once: 64 is past any one machine's useful parallelism (and
# Easemob's 10 hour files a minute), still far from exhausting its memory.
MAX_WORKERS = 64
# `--hour-timeout` / `hour_timeout:`: a number and a unit, as Dask's durations are written; ASCII
# digits only, as in `keep_for:` (`\d` took `１h` for an hour).
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(s|m|h|d)?")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
HOUR_TIMEOUT_RANGE_S = (1, 7 * 86400)
# Set to 1 where the network between coordinator, scheduler and workers is encrypted below
# Dask (WireGuard, IPsec): a plaintext scheduler off this machine is refused otherwise.
PLAINTEXT_SCHEDULER_ENV = "AUDITOR_PLAINTEXT_SCHEDULER"


def check_workers(workers: int) -> None:
    """Refuses a worker count no machine should start, before any process is made."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(
            f"workers (--workers, or workers: in the config) must be between 1 and "
            f"{MAX_WORKERS}, not {workers}"
        )


def make_executor(name: str, workers: int, **options: Any) -> Executor:
    if name == "local":
        from auditor.executors.local import LocalExecutor

        return LocalExecutor(workers, **options)
    if name == "dask":
        from auditor.executors.dask import DaskExecutor  # the optional extra, only when asked

        return DaskExecutor(workers, **options)
    raise ConfigError(f"executor {name!r} is not one of {', '.join(EXECUTORS)}")


def executor_options(
    name: str, scheduler: str | None, hour_timeout: str | None = None
) -> dict[str, object]:
    """The options of `make_executor` that `auditor run` takes from its flags and config."""
    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r} is not one of {', '.join(EXECUTORS)}")
    options: dict[str, object] = {}
    if hour_timeout is not None:
        options["hour_timeout"] = parse_hour_timeout(hour_timeout)
    if scheduler is None:
        return options
    if name != "dask":
        raise ConfigError("--scheduler is the address of a Dask scheduler: add --executor dask")
    if not scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise ConfigError(f"--scheduler {scheduler!r} must look like tls://HOST:8786")
    if (
        scheduler.startswith(("tcp://", "ucx://"))
        and not _on_this_machine(scheduler)
        and os.environ.get(PLAINTEXT_SCHEDULER_ENV) != "1"
    ):
        raise ConfigError(
            f"--scheduler {scheduler} is not encrypted, and every task carries the app's client "
            "secret and the archive's salt key: use a tls:// address with Dask's TLS settings "
            f"(docs/scaling.md), or set {PLAINTEXT_SCHEDULER_ENV}=1 where the network below "
            "Dask is encrypted"
        )
    return {**options, "scheduler": scheduler}


HOUR_TIMEOUT_OPTION = "--hour-timeout (hour_timeout: in the config)"


def parse_hour_timeout(value: object, setting: str = HOUR_TIMEOUT_OPTION) -> float:
    """Seconds of `--hour-timeout` (`30m`, `3600s`, `1.5h`, or a number of seconds), or a
    one-line error naming `setting`; at least a second, at most a week (a longer wait is no
    bound). Dask's `auditor.hour-timeout` is read here too, so the two never differ; its value
    may be a number (YAML, or an environment variable Dask reads as one)."""
    match = _DURATION.fullmatch(str(value).strip().lower())
    seconds = float(match[1]) * _UNIT_S[match[2] or "s"] if match else 0.0
    least, most = HOUR_TIMEOUT_RANGE_S
    if not least <= seconds <= most:
        raise ConfigError(
            f"{setting} must be a duration from 1s to 7d such as 30m or 3600s, not {value!r}"
        )
    return seconds


def _on_this_machine(address: str) -> bool:
    """Whether a scheduler address is loopback, where nothing crosses a network."""
    try:
        host = urlsplit(address).hostname or ""
    except ValueError:
        return False
    return is_loopback(host)
