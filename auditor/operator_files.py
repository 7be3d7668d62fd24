"""Reading the files an operator names: the config, policy files, keys, passphrases, secrets.

They are trusted to mean what they say, not to be what they should: a path that is a FIFO by
mistake waited for a writer for ever, and `/dev/zero` or a log file named as a key filled the
memory before any parser saw a byte. Symlinks are followed (Kubernetes mounts secrets and
config maps as symlinks); anything but a regular file, or a file past its cap, is refused in one
line naming the file and what it was for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from auditor.archive.untrusted import UnsafeFile, open_regular, read_regular, shown
from auditor.errors import InputError, os_reason

log = logging.getLogger(__name__)

# A config or policy file is a few KB (a 200,000-term keyword list is 5 MB); a key, passphrase
# or client secret is under a KB.
TEXT_FILE_LIMIT = 64 << 20
SECRET_FILE_LIMIT = 64 << 10


def home_expanded(path: str | Path) -> Path:
    """`path` with `~` (or `~user`) expanded as a shell would. Where there is no home to expand
    to (HOME unset and the user not in the password database, as in a container run under an
    arbitrary uid), it is kept as written, a folder named `~`, as a shell keeps `~nosuchuser`:
    the file is then missing and said so in one line, where Python raised RuntimeError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def read_operator_file(path: str | Path, what: str, limit: int = TEXT_FILE_LIMIT) -> bytes:
    """The bytes of `path`, `what` it is for (e.g. "policy file") naming it in any error:
    InputError when it is missing, unreadable, not a regular file or larger than `limit`."""
    with _refused_as(path, what):
        return read_regular(path, limit, follow_symlinks=True)


def read_secret_file_bytes(path: str | Path, what: str) -> bytes:
    """`read_operator_file` of a file holding a secret, capped at `SECRET_FILE_LIMIT`. When no
    such file exists its name is not shown: an operator who put the secret itself where the
    file's name belongs would otherwise see it printed, and logged by cron or systemd."""
    try:
        data = read_operator_file(path, what, SECRET_FILE_LIMIT)
    except InputError:
        if _exists(path):
            raise
        raise InputError(
            f"no such {what} (its name is not shown, in case it is the secret itself)"
        ) from None
    warn_if_others_can_read(path, f"the {what}")
    return data


def warn_if_others_can_read(path: str | Path, what: str) -> None:
    """Warns, without refusing (a mounted secret may be shared on purpose), when users other
    than the owner can read a file holding a secret."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "%s: %s can be read by other users (mode %04o); chmod 600 it", path, what, mode & 0o777
        )


def _exists(path: str | Path) -> bool:
    try:
        return os.path.lexists(path)
    except (ValueError, OSError):  # a NUL in the name, or one too long for the system
        return False


def open_operator_file(path: str | Path, what: str) -> BinaryIO:
    """`path` opened for reading in pieces (a local export file): InputError naming it when it
    is missing, unreadable or not a regular file. The caller caps what it reads."""
    with _refused_as(path, what):
        return open_regular(path, follow_symlinks=True)


@contextmanager
def _refused_as(path: str | Path, what: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{shown(path)}: no such {what}") from None
    except UnsafeFile as error:
        raise InputError(f"{shown(path)}: {error}, so not a {what}") from None
    except OSError as error:
        raise InputError(f"{shown(path)}: cannot read the {what} ({os_reason(error)})") from None
