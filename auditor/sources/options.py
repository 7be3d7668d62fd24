"""What the connection options take (`--api`, `--attachment-downloads`) and the two checks of
option values that need no HTTP client (a loopback host, a secret file), apart from `settings`,
which imports requests: `auditor run --help`, `pull --help` and the emulator import this alone.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from auditor.errors import ConfigError, InputError
from auditor.operator_files import home_expanded, read_secret_file_bytes

APIS = ("hourfiles", "legacy")
# Attachment downloads a worker runs at once: each waits on the network, not on the CPU, so a
# worker with 8 fetched a run's files 3.7x faster than one at a time against a server 50 ms away.
ATTACHMENT_DOWNLOADS = 8
MAX_ATTACHMENT_DOWNLOADS = 32


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_secret_file(path: str | Path, named_by: str) -> str:
    """The secret in the file `path`, capped: a log file named by mistake would otherwise be
    read whole and sent to the server. ConfigError naming the file and `named_by` otherwise."""
    what = f"client secret file named by {named_by}"
    try:
        raw = read_secret_file_bytes(home_expanded(path), what)
    except InputError as error:
        raise ConfigError(str(error)) from None
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(
            f"the client secret file {path} named by {named_by} is not UTF-8 text"
        ) from None
    if not secret:
        raise ConfigError(f"the client secret file {path} named by {named_by} is empty")
    return secret
