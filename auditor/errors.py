"""Errors a user can cause, each with the exit code the CLI documents.

The core raises these; `auditor.cli` turns them into one line on stderr and the exit code, never a
traceback (the way pip-audit's CLI handles its `ServiceError`).
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_SOURCE = 3
EXIT_LOCKED = 4
# sysexits.h's EX_SOFTWARE: Python's own exit code for an uncaught exception is 1, which here
# means "done, with findings", and a service that counts 1 as success would take a crash for an
# audit.
EXIT_INTERNAL = 70


class AuditorError(Exception):
    """Base of every error meant for the user: the message is the whole explanation."""

    exit_code = EXIT_USAGE

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its message and attributes, whatever its `__init__` takes: a worker process
        sends its error to the coordinator so, and `Exception` would call `__init__` with the
        message alone, which a subclass taking other arguments refuses (the pool then breaks and
        the real cause is lost)."""
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[AuditorError], args: tuple, state: dict) -> AuditorError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(AuditorError):
    """Bad usage, configuration, credentials, policy file or key (exit 2)."""


class InputError(AuditorError):
    """A file given to the auditor cannot be read as what it should be (exit 2)."""


class SourceError(AuditorError):
    """The history source failed after all retries; progress made so far is kept (exit 3)."""

    exit_code = EXIT_SOURCE


class RetriesExhausted(SourceError):
    """A request the source kept failing (5xx, 429, timeouts, broken transfers) through every
    retry, as against one it answered with a refusal (exit 3)."""


class LockHeldError(AuditorError):
    """Another run holds the lock on the same state database (exit 4)."""

    exit_code = EXIT_LOCKED


def os_reason(error: OSError) -> str:
    """Why the system refused, for a one-line refusal. `strerror` is None for an OSError raised
    without an errno (a library's `OSError("...")`, or a subclass raised bare), and a line
    ending "(None)" tells the reader nothing: the error's own words stand in, or a plain
    description when it has none (`str(error)` of one naming a file but no errno is
    "[Errno None] None: 'name'")."""
    if error.strerror:
        return error.strerror
    if error.errno:
        return os.strerror(error.errno)
    words = ", ".join(str(arg) for arg in error.args if arg is not None)
    return words or "the system gave no reason"
