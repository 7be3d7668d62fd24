"""The `auditor` command's entry point: takes Ctrl-C and SIGTERM from its first line.

The console script and `python -m auditor` start here, not in `auditor.cli`, whose imports
(click and the CLI's own modules) take a tenth of a second or more: a Ctrl-C met there printed
Python's traceback, and a SIGTERM ended the command without a word, where README promises one
line and exit 130 or 143. This module imports nothing before `main` begins (even `signal` is
imported inside its `try`): only Python's own start, before it, stays out of reach.
"""

# 128 + the signal's number, as shells report a command the signal killed.
EXIT_INTERRUPTED = 130  # SIGINT
EXIT_TERMINATED = 143  # SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (systemd stopping a unit, Kubernetes deleting a pod), raised where SIGINT raises
    KeyboardInterrupt, so that a stopped run unwinds the same way and keeps its progress."""


def main() -> None:
    """Runs the `auditor` command; a stop that reaches here, outside the command's own handling
    (while the CLI is imported, or in its first and last lines), ends it as the command would."""
    try:
        import signal

        signal.signal(signal.SIGTERM, _terminate)
        command = import_held("auditor.cli").main
        command()
    except KeyboardInterrupt as stop:
        _stopped(stop)


def import_held(name: str) -> object:
    """Imports module `name` with SIGINT and SIGTERM held back until it is done; their
    exception is raised as it returns. Met inside an import, it can be lost (raised in the
    callback that drops importlib's module lock, where Python only prints it: 1 of 101
    Ctrl-Cs, after which `unread` ran on to its 30 s timeout) or crash a C extension's init
    (orjson's, ijl/orjson#310: 2 of 24 Ctrl-Cs in verify-chain's first second)."""
    import importlib
    import signal

    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return importlib.import_module(name)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _stopped(stop: KeyboardInterrupt) -> None:
    import signal
    import sys

    for number in (signal.SIGINT, signal.SIGTERM):  # a second stop must not cut this one
        signal.signal(number, signal.SIG_IGN)
    terminated = isinstance(stop, Terminated)
    try:  # cron's `2>&-` leaves no stderr
        sys.stderr.write("auditor: terminated\n" if terminated else "auditor: interrupted\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def _terminate(_number: int, _frame: object) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the unwinding is not cut again
    raise Terminated
