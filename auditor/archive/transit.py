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
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
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


SIGNATURE_SIZE = 64  # an Ed25519 signature
_MOST_CANDIDATES = 4096


@dataclass(frozen=True, slots=True)
class SignatureRepair:
    """A binary signature as it was before a copy treated it as text: `signature`, what the copy
    did (`done`), and the stock commands that undo it, in order, when there are (empty when only
    a binary copy gives it back, e.g. when some of its CRLF pairs were real)."""

    signature: bytes
    done: str
    undo: tuple[str, ...]


def signature_repairs(data: bytes) -> Iterator[SignatureRepair]:
    """The 64-byte signatures a text-mode copy (a mail client, FTP in ASCII mode, an editor)
    could have turned into `data`: LF written as CRLF, CRLF collapsed to LF, bytes from 0x80 on
    read as Latin-1 or Windows-1252 and written as UTF-8, or both. Only a candidate that
    verifies is the signature: the caller checks each, so one that merely fits proves nothing."""
    if len(data) > 4 * SIGNATURE_SIZE:  # more than every byte written as UTF-8 and CRLF
        return
    recoded = _from_utf8(data)
    for text, recoding, undo in ((data, None, None), *recoded):
        for signature, ends, global_undo in _line_end_candidates(text):
            done = " and ".join(part for part in (recoding, ends) if part)
            if not done:
                continue
            steps = tuple(step for step in (undo, global_undo) if step)
            whole = (recoding is None or undo) and (ends is None or global_undo)
            yield SignatureRepair(signature, done, steps if whole else ())


def _from_utf8(data: bytes) -> list[tuple[bytes, str, str | None]]:
    """`data` with its UTF-8 text turned back into the single bytes it was read from."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if all(ord(char) < 0x80 for char in text):
        return []
    if all(ord(char) < 0x100 for char in text):
        done = "its bytes from 0x80 on were written as UTF-8 text"
        return [(text.encode("latin-1"), done, "iconv -f UTF-8 -t ISO-8859-1")]
    try:
        raw = bytes(ord(char) if ord(char) < 0x100 else char.encode("cp1252")[0] for char in text)
    except UnicodeEncodeError:
        return []
    return [(raw, "its bytes from 0x80 on were written as UTF-8 text (read as Windows-1252)", None)]


def _line_end_candidates(data: bytes) -> Iterator[tuple[bytes, str | None, str | None]]:
    """`data` with the line-end change of a text copy undone, each way that gives 64 bytes:
    some of its CRLF pairs back to LF, or CR put back before some LFs."""
    if len(data) == SIGNATURE_SIZE:
        yield data, None, None
    crlf = [index for index in range(len(data) - 1) if data[index : index + 2] == b"\r\n"]
    extra = len(data) - SIGNATURE_SIZE
    if 0 < extra <= len(crlf) and math.comb(len(crlf), extra) <= _MOST_CANDIDATES:
        every = "perl -0777 -pe 's/\\r\\n/\\n/g'"
        for chosen in itertools.combinations(crlf, extra):
            drop = set(chosen)
            fixed = bytes(byte for index, byte in enumerate(data) if index not in drop)
            undo = every if extra == len(crlf) else None
            yield fixed, "each LF byte was written as CRLF", undo
    lf = [index for index, byte in enumerate(data) if byte == 0x0A]
    missing = SIGNATURE_SIZE - len(data)
    if 0 < missing <= len(lf) and math.comb(len(lf), missing) <= _MOST_CANDIDATES:
        every = "perl -0777 -pe 's/\\n/\\r\\n/g'"
        for chosen in itertools.combinations(lf, missing):
            put = set(chosen)
            fixed = b"".join(
                b"\r\n" if index in put else bytes([byte]) for index, byte in enumerate(data)
            )
            undo = every if missing == len(lf) and b"\r" not in data else None
            yield fixed, "each CRLF pair was written as LF", undo


def signature_repaired_message(repair: SignatureRepair, signature: str, covered: str) -> str:
    """One line for a binary signature a copy treated as text, whose repaired bytes verify."""
    if repair.undo:
        first, *more = repair.undo
        command = " | ".join((f"{first} < {signature}", *more))
        how = f"or `{command} > sig.bin` and step 1's openssl command with -sigfile sig.bin"
    else:
        how = "no stock command undoes this one"
    return (
        f"copied as text in transit ({repair.done}: a mail client, FTP in ASCII mode?); with "
        f"that undone it is the 64-byte Ed25519 signature of {covered}, and it verifies: take "
        f"a binary copy ({how}) and verify again"
    )
