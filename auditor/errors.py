"""Errors a user can cause, each with the exit code the CLI documents.

The core raises these; `auditor.cli` turns them into one line on stderr and the exit code, never a
traceback (the way pip-audit's CLI handles its `ServiceError`).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_SOURCE = 3
EXIT_LOCKED = 4


class AuditorError(Exception):
    """Base of every error meant for the user: the message is the whole explanation."""

    exit_code = EXIT_USAGE


class ConfigError(AuditorError):
    """Bad usage, configuration, credentials, policy file or key (exit 2)."""


class InputError(AuditorError):
    """A file given to the auditor cannot be read as what it should be (exit 2)."""


class SourceError(AuditorError):
    """The history source failed after all retries; progress made so far is kept (exit 3)."""

    exit_code = EXIT_SOURCE


class LockHeldError(AuditorError):
    """Another run holds the lock on the same state database (exit 4)."""

    exit_code = EXIT_LOCKED
