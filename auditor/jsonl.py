"""Reading JSON-lines files (plain or gzip) leniently, one parsed line at a time.

Easemob's hour files are gzip, nominally one JSON object a line, but some have been seen to hold
objects back to back on one line. A line that cannot be parsed is reported with its file and line
number, never dropped silently and never fatal: the caller decides whether it is a finding.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from auditor.errors import InputError

# orjson reads an integer beyond 64 bits as a float, silently changing it; a run of 20 digits
# (maybe inside a string: then the slow path is merely unneeded) sends the text to `json`.
_LONG_DIGITS = re.compile(rb"[0-9]{20}")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_exact_decoder = json.JSONDecoder(parse_constant=_refuse_constant)


def loads(data: bytes) -> Any:
    """Parses JSON exactly: integers of any size stay integers, NaN and Infinity are refused.

    Raises ValueError (orjson's and json's decode errors are both ValueErrors).
    """
    if _LONG_DIGITS.search(data):
        return _exact_decoder.decode(data.decode("utf-8"))
    return orjson.loads(data)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One record read from `path` at `line` (1-based), or the reason it could not be read."""

    path: str
    line: int
    record: dict[str, Any] | None
    error: str | None = None
    raw: bytes = b""


def split_objects(data: bytes) -> list[Any] | None:
    """Splits back-to-back JSON objects (`{..}{..}` or `{..} {..}`) on one line, or None."""
    decoder = _exact_decoder
    text = data.decode("utf-8")
    found, position = [], 0
    try:
        while position < len(text):
            while position < len(text) and text[position].isspace():
                position += 1
            if position == len(text):
                break
            value, position = decoder.raw_decode(text, position)
            found.append(value)
    except (ValueError, UnicodeDecodeError):
        return None
    return found


def parse_lines(lines: Iterable[bytes], path: str) -> Iterator[ParsedLine]:
    """Parses each non-blank line; a line holding several objects yields each of them."""
    for number, raw in enumerate(lines, start=1):
        data = raw.strip()
        if not data:
            continue
        try:
            value = loads(data)
        except ValueError as error:
            values = split_objects(data)
            if not values:
                yield ParsedLine(path, number, None, f"not JSON: {error}", data)
                continue
            for each in values:
                yield _as_record(each, path, number, data)
            continue
        yield _as_record(value, path, number, data)


def _as_record(value: Any, path: str, number: int, data: bytes) -> ParsedLine:
    if isinstance(value, dict):
        return ParsedLine(path, number, value, None, data)
    return ParsedLine(path, number, None, f"a JSON {type(value).__name__}, not an object", data)


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def read_file(path: str | Path) -> Iterator[ParsedLine]:
    """Streams the records of a `.jsonl`/`.json` or gzip file (detected by its magic bytes).

    Raises `InputError` naming the file when it cannot be opened or its gzip stream is corrupt;
    the lines before the corruption have been yielded by then.
    """
    path = Path(path)
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rb") as handle:
            yield from parse_lines(handle, str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputError(f"{path}: corrupt gzip data ({error}); re-export or re-pull it") from None


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus the `.jsonl`/`.json`/`.gz` files inside named folders, sorted."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix in (".jsonl", ".json", ".gz")
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return found
