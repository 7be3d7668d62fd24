"""Reading JSON-lines files (plain or gzip) leniently, one parsed line at a time.

Easemob's hour files are gzip, nominally one JSON object a line, but some have been seen to hold
objects back to back on one line. A line that cannot be parsed is reported with its file and line
number, never dropped silently and never fatal: the caller decides whether it is a finding.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import math
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson

from auditor.archive import untrusted
from auditor.archive.untrusted import shown
from auditor.errors import InputError, os_reason
from auditor.operator_files import open_operator_file

log = logging.getLogger(__name__)

# orjson reads an integer beyond 64 bits as a float, silently changing it: 20 digits and more,
# or a 19-digit negative below -2**63. Such a run (maybe inside a string: then the slow path is
# merely unneeded) sends the text to `json`. With every digit read as 0 the run is a substring
# test: one C pass, several times faster than the regex it replaces.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 20
_LONG_NEGATIVE = b"-" + b"0" * 19
_RUN_19 = b"0" * 19
_NOT_ZERO = re.compile(b"[^0]")


def _beyond_64_bits(data: bytes) -> bool:
    """Whether `data` may hold an integer that orjson would read as a float."""
    zeroed = data.translate(_DIGITS_AS_ZERO)
    return _LONG_NEGATIVE in zeroed or _LONG_RUN in zeroed


def _lines_beyond_64_bits(data: bytes) -> set[int]:
    """The indexes in `data.splitlines()` of the lines for which `_beyond_64_bits` is true.

    One pass over the whole buffer instead of one a line: in an hour file a run of 20 digits is
    rare (a hex secret, now and then), and testing each line cost a fifth of parsing it. Every
    such line holds a run of at least 19 digits: 20 or more, or 19 after a minus. Those runs are
    found with one search (19-digit runs are rare too: msg_ids have 18), and a line's index is
    the count of line breaks before its run (`\r\n` is one break, as in `splitlines`; a run
    never starts between its two bytes; the two extra counts only when the data holds a `\r`).
    """
    zeroed = data.translate(_DIGITS_AS_ZERO)
    crlf = b"\r" in data
    found: set[int] = set()
    position, line, counted = zeroed.find(_RUN_19), 0, 0
    while position >= 0:
        end = position + len(_RUN_19)
        if zeroed[end : end + 1] == b"0" or zeroed[position - 1 : position] == b"-":
            line += data.count(b"\n", counted, position)
            if crlf:
                line += data.count(b"\r", counted, position)
                line -= data.count(b"\r\n", counted, position)
            found.add(line)
            counted = position
        after = _NOT_ZERO.search(zeroed, end)  # past this run, however long
        if after is None:
            break
        position = zeroed.find(_RUN_19, after.start())
    return found


T = TypeVar("T")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A number as a double, refusing one beyond its range (`1e400`) as orjson does: read as
    infinity it would be archived as `null` or `Infinity`, not as the number served."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is beyond the range of a double")
    return value


class RepeatedKey(ValueError):
    """An object that names one key twice. JSON leaves what it means open (RFC 8259 §4: parsers
    keep the first, the last, or fail), and I-JSON (RFC 7493), which RFC 8785's canonical form
    requires, forbids it: kept as a record, one of its values would be lost without a word."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise RepeatedKey(f"an object names the key {json.dumps(key[:80])} more than once")
            seen.add(key)
    return found


_exact_decoder = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
)


def _exact(decode: Callable[..., T], *args: Any) -> T:
    """`json`'s exact decoder, with nesting too deep for its recursion a ValueError.

    The C scanner recurses once a level and raises RecursionError past Python's recursion
    limit (a line of 100,000 `[`: orjson refuses it first, at 1,024 levels); that is bad data
    like any other, never a crash.
    """
    try:
        return decode(*args)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


# orjson reads JSON nested up to 1,024 levels; the json module and `rfc8785`, which write what
# orjson cannot (beyond 255 levels, or integers beyond 64 bits), recurse once or twice a level.
_DEEP_RECURSION = 4_000


def allow_deep_nesting() -> None:
    """Room for the json module and `rfc8785` to write any value orjson read: Python's default
    recursion limit (1,000) stopped them at about 990 levels, with a RecursionError where the
    value should have been archived. The limit stays raised for the process: restoring it could
    cut short another thread inside the same fallback (a Dask worker may run several)."""
    if sys.getrecursionlimit() < _DEEP_RECURSION:
        sys.setrecursionlimit(_DEEP_RECURSION)


def record_line(record: Any) -> bytes:
    """A JSON value (a record, a finding) as one line, which `loads` reads back as the same value.

    What orjson cannot write goes to the json module: integers beyond 64 bits, nesting deeper
    than 255, and text holding a lone surrogate (`"\\ud800"`, which the exact parser accepts),
    written as `\\u` escapes there since UTF-8 has no form for it.
    """
    try:
        return orjson.dumps(record) + b"\n"
    except orjson.JSONEncodeError:
        allow_deep_nesting()
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode() + b"\n"
        except UnicodeEncodeError:
            return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def loads(data: bytes) -> Any:
    """Parses JSON exactly: integers of any size stay integers; NaN, Infinity and numbers
    beyond a double's range are refused, as is nesting deeper than the parsers go, and an object
    that names a key twice (`RepeatedKey`).

    Raises ValueError (orjson's and json's decode errors are both ValueErrors) whatever the
    bytes.
    """
    if _beyond_64_bits(data):
        return _exact(_exact_decoder.decode, data.decode("utf-8"))
    value = orjson.loads(data)
    if not written_as_read(value, data):
        check_unique_keys(data)
    return value


def written_as_read(value: Any, data: bytes) -> bool:
    """Whether orjson writes `value` back as `data`, byte for byte: then `data` names no key
    twice, since orjson writes each key of a dict once. Compact UTF-8 JSON (Easemob's hour files,
    the emulator's) passes for the price of one write; other text needs `check_unique_keys`."""
    try:
        return orjson.dumps(value) == data
    except TypeError:  # nested past the 255 levels orjson writes
        return False


def check_unique_keys(data: bytes) -> None:
    """Raises `RepeatedKey` when JSON `data` names a key twice in one object (the slow path:
    the json module, calling a hook for every object)."""
    allow_deep_nesting()
    _exact(_exact_decoder.decode, data.decode("utf-8"))


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One record read from `path` at `line` (1-based), or the reason it could not be read."""

    path: str
    line: int
    record: dict[str, Any] | None
    error: str | None = None
    raw: bytes = b""


def split_objects(data: bytes) -> list[Any] | None:
    """Splits back-to-back JSON objects (`{..}{..}` or `{..} {..}`) on one line, or None;
    `RepeatedKey` when one of them names a key twice."""
    found, position = [], 0
    try:
        text = data.decode("utf-8")
        while position < len(text):
            while position < len(text) and text[position].isspace():
                position += 1
            if position == len(text):
                break
            value, position = _exact(_exact_decoder.raw_decode, text, position)
            found.append(value)
    except RepeatedKey:
        raise
    except (ValueError, UnicodeDecodeError):
        return None
    return found


def parse_lines(lines: Iterable[bytes], path: str) -> Iterator[ParsedLine]:
    """Parses each non-blank line; a line holding several objects yields each of them."""
    for number, raw in enumerate(lines, start=1):
        yield from _parse_line(raw, number, path)


def _parse_line(raw: bytes, number: int, path: str) -> Iterator[ParsedLine]:
    data = raw.strip()
    if not data:
        return
    try:
        value = loads(data)
    except ValueError as error:
        reason = str(error) if isinstance(error, RepeatedKey) else f"not JSON: {error}"
        try:
            values = split_objects(data)
        except RepeatedKey as repeated:
            reason, values = str(repeated), None
        if not values:
            yield ParsedLine(path, number, None, reason, data)
            return
        yield from _as_records(values, path, number, data)
        return
    yield _as_record(value, path, number, data)


def _as_records(values: list[Any], path: str, number: int, data: bytes) -> Iterator[ParsedLine]:
    """The objects of a line that holds several values, each a record, and its other values as
    one error in place of the first: the line is kept once (a line of 500,000 `[]` would
    otherwise be kept 500,000 times, 250 GB from 1 MB)."""
    others = sum(not isinstance(each, dict) for each in values)
    reported = False
    for each in values:
        if isinstance(each, dict):
            yield ParsedLine(path, number, each, None, data)
        elif not reported:
            reported = True
            error = f"a JSON {type(each).__name__}, not an object"
            if others > 1:
                error = f"{others:,} JSON values that are not objects, the first {error}"
            yield ParsedLine(path, number, None, error, data)


def parse_buffer(
    data: bytes, path: str, problem: Callable[[ParsedLine], T], first_line: int = 1
) -> list[dict[str, Any] | T]:
    """What `parse_lines` reads from the lines of `data`, as one list and about twice as fast.

    For a whole file in memory (an hour file): a line that plain `orjson.loads` reads as one
    object gives that dict, with no `ParsedLine` built for it; every other line (blank, not
    JSON, several objects, a non-object, a 20-digit run that needs the exact parser) goes
    through `parse_lines`' own code, which gives the same dict for the lines read here. Its
    records come as dicts and its errors as `problem(parsed_line)`, all in line order. Lines
    are numbered from `first_line`: a file read a piece at a time, each piece ending a line.
    """
    found: list[dict[str, Any] | T] = []
    append = found.append
    fast_loads, dumps = orjson.loads, orjson.dumps
    exact = _lines_beyond_64_bits(data)
    for number, raw in enumerate(data.splitlines(), start=first_line):
        if number - first_line not in exact:
            try:
                value = fast_loads(raw)
                if type(value) is dict and dumps(value) == raw:  # `written_as_read`, inlined
                    append(value)
                    continue
            except (ValueError, TypeError):
                pass
        for parsed in _parse_line(raw, number, path):
            append(parsed.record if parsed.record is not None else problem(parsed))
    return found


def _as_record(value: Any, path: str, number: int, data: bytes) -> ParsedLine:
    if isinstance(value, dict):
        return ParsedLine(path, number, value, None, data)
    return ParsedLine(path, number, None, f"a JSON {type(value).__name__}, not an object", data)


def is_gzip(handle: BinaryIO) -> bool:
    """Whether the regular file open in `handle` is gzip; it is left at its start."""
    magic = handle.read(2)
    handle.seek(0)
    return magic == b"\x1f\x8b"


# What `read_file` is reading, in its errors: "fifo.jsonl: is a FIFO, not a regular file, so not a
# local input file".
INPUT_FILE = "local input file"
_SKIP = 1 << 20  # read at a time past a line too long to keep


# What a gzip may expand to, here and for a downloaded hour file (`hourfiles.gunzip`): the larger
# of these. Real JSON lines compress 5 to 15 times, so only a bomb (2 MB of zeros expanding to
# 2 GiB) reaches either; it is refused before it is held.
GUNZIP_FLOOR = 256 << 20
GUNZIP_RATIO = 100


class _Inflated:
    """A gzip file read a line at a time, refused once it expands past `GUNZIP_RATIO` times its
    size (`GUNZIP_FLOOR` at least): a 4 MB bomb of 4 GiB of zeros filled the memory."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self.compressed = os.fstat(handle.fileno()).st_size
        self.ratio, self.floor = GUNZIP_RATIO, GUNZIP_FLOOR
        self.limit = max(self.floor, self.ratio * self.compressed)
        self.name = name
        self.inflated = 0
        self._gzip = gzip.GzipFile(fileobj=handle, mode="rb")

    def readline(self, size: int) -> bytes:
        line = self._gzip.readline(size)
        self.inflated += len(line)
        if self.inflated > self.limit:
            raise InputError(
                f"{shown(self.name)}: a gzip bomb or damaged gzip (it expands past "
                f"{self.limit >> 20} MiB: {self.ratio} times its {self.compressed:,} bytes, at "
                f"least {self.floor >> 20} MiB); refused"
            )
        return line


def _capped_lines(source: _Inflated | BinaryIO) -> Iterator[bytes | None]:
    """The lines of `source`, None for one longer than `untrusted.LINE_LIMIT` (as no record
    downloaded may be): it is read past in pieces, never held whole. A line comes without the
    whitespace that ends it, which `_parse_line` strips: stripped there, a long line was held
    twice while it was parsed (the line read, and its copy without the line break)."""
    limit = untrusted.LINE_LIMIT
    while line := source.readline(limit + 1):
        if len(line) <= limit or (len(line) == limit + 1 and line.endswith(b"\n")):
            line = line.rstrip()
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = source.readline(_SKIP)
        yield None


# What Windows tools write first in a UTF-8 file (PowerShell 5, Excel): no part of any record.
_BOM = b"\xef\xbb\xbf"
# The byte order marks of UTF-16 (LE, BE) and UTF-32 LE: PowerShell 5's `>` and Out-File write
# UTF-16. Neither byte is ever in UTF-8, so such a first line is never a record.
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WIDE = (
    "the file is UTF-16 or UTF-32 (it begins with a byte order mark), and records are read as "
    "UTF-8: convert it, e.g. iconv -f UTF-16 -t UTF-8"
)


def _parsed(lines: Iterable[bytes | None], path: str) -> Iterator[ParsedLine]:
    """Each line parsed; a BOM before the first is read past, as RFC 8259 lets a parser do
    (it made the first record of such an export an unreadable line, never checked). A UTF-16 or
    UTF-32 one makes the first line unreadable for that reason ("surrogates not allowed" named
    neither the encoding nor the fix)."""
    limit = untrusted.LINE_LIMIT
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw is not None and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        elif number == 1 and raw is not None and raw.startswith(_WIDE_BOMS):
            yield ParsedLine(path, number, None, _WIDE, raw.strip())
            continue
        if raw is None:
            error = f"a line longer than {limit:,} bytes, which no record is; not read"
            yield ParsedLine(path, number, None, error)
        else:
            yield from _parse_line(raw, number, path)


def read_file(path: str | Path) -> Iterator[ParsedLine]:
    """Streams the records of a `.jsonl`/`.json` or gzip file (detected by its magic bytes).

    Only a regular file is opened (a FIFO named as input waited for a writer for ever), and
    memory stays flat however large the file: a line past `untrusted.LINE_LIMIT` is one error
    line, a gzip bomb is refused. Raises `InputError` naming the file when it cannot be read,
    is refused or its gzip stream is corrupt; the lines before have been yielded by then.
    """
    with open_operator_file(path, INPUT_FILE) as handle:
        yield from read_opened(handle, str(path))


def read_opened(handle: BinaryIO, name: str) -> Iterator[ParsedLine]:
    """`read_file` of a file already open (`name` in its errors): one its reader hashes as it
    goes (`digested.DigestedFile`)."""
    try:
        source = _Inflated(handle, name) if is_gzip(handle) else handle
        yield from _parsed(_capped_lines(source), name)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputError(
            f"{shown(name)}: corrupt gzip data ({error}); re-export or re-pull it"
        ) from None
    except OSError as error:
        raise InputError(f"{shown(name)}: cannot read ({os_reason(error)})") from None


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus the `.jsonl`/`.json`/`.gz` files inside named folders, sorted.

    In a folder, anything else under such a name (a FIFO, a device) is skipped with a warning,
    but a link that leads to no file (moved away, a loop) is an error: it stood for an export;
    named directly, `read_file` refuses it."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(_record_files(path)))
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"{shown(path)}: no such file or folder")
    return found


def _record_files(folder: Path) -> Iterator[Path]:
    """The record files under `folder`, through folders linked in too (`rglob` skipped them
    without a word: exports of other months linked from another disk went unaudited), except a
    link to a folder that holds it (a loop) or to one read already, each named in a warning.
    A folder that cannot be listed is an error (`os.walk` passed over it without a word)."""
    read: dict[tuple[int, int], Path] = {}
    for root, folders, files in os.walk(folder, onerror=_unlisted, followlinks=True):
        here = Path(root)
        status = here.stat()
        first = read.setdefault((status.st_dev, status.st_ino), here)
        if first != here:
            log.warning("skipping %s: the folder %s is read already", shown(here), shown(first))
            folders.clear()
            continue
        folders.sort()
        resolved = here.resolve()
        for name in [name for name in folders if (here / name).is_symlink()]:
            target = (here / name).resolve()
            if target == resolved or target in resolved.parents:
                log.warning("skipping %s: a link to a folder that holds it", shown(here / name))
                folders.remove(name)
        for name in sorted(files):
            path = here / name
            if path.suffix.lower() not in (".jsonl", ".json", ".gz"):
                continue
            if path.is_file():
                yield path
            elif path.is_symlink() and not path.exists():
                raise InputError(_linked_to_nothing(path))
            else:
                log.warning("skipping %s: not a regular file", shown(path))


def _linked_to_nothing(path: Path) -> str:
    """Why a record file's link leads to no file: an export moved away, or a loop. Skipped with
    a warning, the export's records were left out of a run that said it succeeded."""
    what = "a link that leads to no file"
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            what = "a loop of links"
        else:
            with suppress(OSError):
                what = f"a link to nothing ({shown(Path(os.readlink(path)))} does not exist)"
    return (
        f"{shown(path)}: {what}: its records would be left out; restore what it links to, "
        "or move it out of the inputs"
    )


def _unlisted(error: OSError) -> None:
    """`os.walk`'s `onerror`: a folder of the inputs that cannot be listed stops the command,
    since the records in it would not be read."""
    where = error.filename if error.filename is not None else "a folder of the inputs"
    raise InputError(
        f"{shown(Path(where))}: cannot read the folder ({os_reason(error)}): its records would "
        "be left out; make it readable, or move it out of the inputs"
    ) from None
