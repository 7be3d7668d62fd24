"""What a copy does to a bag on its way to legal, told apart from tampering.

A bag is checked months later on another machine, after a zip, a Windows share, a USB stick or
a mail. Two kinds of damage are common there and change nothing the signature covers: text files
whose line ends were converted (`unix2dos`, `unzip -a`, FTP in ASCII mode, git's autocrlf), and
files an operating system adds beside the ones it copied (`.DS_Store`, `._NAME`, `Thumbs.db`).
The verifier still reports both, since the bag is not byte for byte what was signed, but says
what they are and how to undo them, so legal does not read them as tampering. Only a file whose
bytes, once its line ends are changed back, hash to the signed digest is called converted; any
other change stays "changed".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from auditor.archive.untrusted import open_regular

_READ_SIZE = 1 << 20

# Names an operating system or archiver writes into a folder it copies or shows, and what adds
# them; the writer never makes a name that starts with a dot or is one of these.
_ADDED_BY = {
    ".DS_Store": "macOS Finder",
    "Thumbs.db": "Windows Explorer",
    "ehthumbs.db": "Windows Explorer",
    "desktop.ini": "Windows Explorer",
    "__MACOSX": "macOS's zip",
    ".Spotlight-V100": "macOS Spotlight",
    ".Trashes": "macOS",
    ".fseventsd": "macOS",
    ".TemporaryItems": "macOS",
    "$RECYCLE.BIN": "Windows",
    "System Volume Information": "Windows",
}
APPLE_DOUBLE = "._"


def added_by(name: str) -> str | None:
    """What added a file or folder of this name in transit; None when nothing would."""
    if name.startswith(APPLE_DOUBLE):
        return "macOS (AppleDouble ._ files, on a disk or share that is not a Mac's)"
    return _ADDED_BY.get(name)


def kind_of(name: str) -> str:
    """The name's kind for grouping and for the `find` that deletes them: `._*` or the name."""
    return f"{APPLE_DOUBLE}*" if name.startswith(APPLE_DOUBLE) else name


def added_message(kind: str, count: int, what: str) -> str:
    """One line for every file of one kind a copy added to a bag."""
    more = f" (and {count - 1:,} more)" if count > 1 else ""
    return (
        f"added in transit by {what}{more}: not part of the archive, no manifest or signature "
        f"covers it; delete (find . -name '{kind}' -exec rm -rf {{}} +) and verify again"
    )


def converted(data: bytes, digest: str) -> str | None:
    """How the line ends of `data` were changed from the file whose SHA-256 is `digest`:
    "CRLF" or "LF"; None when changing them back does not give that file."""
    if b"\r\n" in data and hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest() == digest:
        return "CRLF"
    if b"\n" in data:
        crlf = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if hashlib.sha256(crlf).hexdigest() == digest:
            return "LF"
    return None


def converted_file(path: Path, digest: str) -> tuple[str, int] | None:
    """`converted` of a file of any size, read in pieces: the new line ends, and the size the
    file had with its original ones (for Payload-Oxum); None when that does not explain it."""
    to_lf, to_crlf = _Rewritten(b"\n"), _Rewritten(b"\r\n")
    with open_regular(path) as handle:
        while chunk := handle.read(_READ_SIZE):
            to_lf.update(chunk)
            to_crlf.update(chunk)
    for ends, rewritten in (("CRLF", to_lf), ("LF", to_crlf)):
        if rewritten.changed and rewritten.finish() == digest:
            return ends, rewritten.size
    return None


def converted_message(ends: str, covered_by: str, first: bool = True) -> str:
    """One line for a file whose line ends were converted and is otherwise the signed one; the
    first such file of a bag says what to do, the others refer to it."""
    if not first:
        return f"line ends changed to {ends} in transit, otherwise unchanged (as above)"
    if ends == "CRLF":
        how, fix = "a Windows copy, unzip -a, FTP in ASCII mode?", "sed -i 's/\\r$//' FILE"
    else:
        how, fix = "dos2unix, git, FTP in ASCII mode?", "sed -i 's/$/\\r/' FILE"
    return (
        f"its line ends were changed to {ends} in transit ({how}); with its original line ends "
        f"it is, unchanged, the file {covered_by}: take a binary copy (or `{fix}`) and verify "
        "again"
    )


class _Rewritten:
    """The SHA-256 and size of a stream with every line end (LF or CRLF) written as `newline`,
    fed in pieces: a CR at the end of one piece may begin a CRLF in the next."""

    def __init__(self, newline: bytes) -> None:
        self.newline = newline
        self.digest = hashlib.sha256()
        self.size = 0
        self.pending = b""
        self.changed = False

    def update(self, chunk: bytes) -> None:
        data = self.pending + chunk
        self.pending = b""
        if data.endswith(b"\r"):
            data, self.pending = data[:-1], b"\r"
        rewritten = data.replace(b"\r\n", b"\n")
        if self.newline != b"\n":
            rewritten = rewritten.replace(b"\n", self.newline)
        self.changed = self.changed or rewritten != data
        self._feed(rewritten)

    def finish(self) -> str:
        self._feed(self.pending)
        self.pending = b""
        return self.digest.hexdigest()

    def _feed(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
