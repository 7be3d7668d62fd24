"""The listing of `auditor due` an officer acted on, read back by `auditor state prune
--carried-out` as the record that its deletions and reviews were carried out.

`prune` keeps every message `due` still lists for deletion or review, since forgetting one drops
its row from `due`: a deletion not yet carried out disappeared without a word (probe months25
#2). The officer says which were carried out by giving the very listing they acted on, the CSV or
the JSON `due` wrote: only its `delete`, `review`, `expired` and `no-retention` rows count, so a
message that listing showed as held (a hold added since, with `--policy`) or `unchecked` is never
taken as done. The CSV is read as `due` writes it (a BOM, every cell quoted, a msg_id of digits
as `="..."`, a leading `'` before a formula's first character); a spreadsheet that saved it again
may quote otherwise, which the csv reader takes as well. Either is read as a stream, so memory
stays flat however many rows it holds: the CSV a line at a time, the JSON a message at a time by
ijson (its C parser; `json.loads` held the whole file as objects: 830 MB at its peak for a
million rows, 13 MB now).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import ijson

from auditor.errors import InputError
from auditor.report.cells import FORMULA

ACTED_ON = frozenset({"delete", "review", "expired", "no-retention"})
"""The verdicts of a listing that ask the officer to act: the rows a listing records as done."""
_FIELDS = ("verdict", "msg_id")


def acted_on(path: Path) -> Iterator[str]:
    """The msg_ids of the listing at `path` whose verdict asked for an action (`ACTED_ON`).

    Raises `InputError` (exit 2) naming the file when it cannot be read or is no listing of
    `auditor due`: a wrong file must not be taken as a record of deletions."""
    try:
        with path.open("rb") as file:
            start = file.read(1 << 16).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    except OSError as error:
        raise InputError(f"{path}: cannot read the listing ({error.strerror})") from None
    rows = _json_rows(path) if start == b"{" else _csv_rows(path)
    for number, row in rows:
        verdict, identity = row
        if not isinstance(verdict, str) or not isinstance(identity, str) or not identity:
            raise _not_a_listing(path, f"row {number} has no verdict and msg_id")
        if verdict in ACTED_ON:
            yield identity


def _csv_rows(path: Path) -> Iterator[tuple[int, tuple]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            if header is None or not set(_FIELDS) <= set(header):
                raise _not_a_listing(path, "no verdict and msg_id columns")
            where = [header.index(name) for name in _FIELDS]
            for number, cells in enumerate(reader, start=2):
                if not cells:
                    continue
                if len(cells) != len(header):
                    raise _not_a_listing(path, f"line {number} has {len(cells)} cells")
                yield number, tuple(_value(cells[index]) for index in where)
    except UnicodeDecodeError:
        raise _not_a_listing(path, "not UTF-8 text") from None
    except csv.Error as error:
        raise _not_a_listing(path, str(error)) from None


def _json_rows(path: Path) -> Iterator[tuple[int, tuple]]:
    """The `messages` of a JSON listing, one at a time: first the file is parsed up to where its
    `messages` array begins (due writes it after a short head), then read again for its items."""
    try:
        with path.open("rb") as file:
            if not _has_messages(file):
                raise _not_a_listing(path, "no messages")
            file.seek(0)
            messages = ijson.items(file, "messages.item", use_float=True)
            for number, message in enumerate(messages, start=1):
                if not isinstance(message, dict):
                    raise _not_a_listing(path, f"message {number} is not an object")
                yield number, tuple(message.get(name) for name in _FIELDS)
    except (ijson.JSONError, UnicodeDecodeError):
        raise _not_a_listing(path, "not JSON") from None


def _has_messages(file) -> bool:
    """Whether the JSON object in `file` holds an array `messages`, read up to its start."""
    for prefix, event, _value in ijson.parse(file, use_float=True):
        if prefix == "messages" and event != "map_key":
            return event == "start_array"
        if prefix == "" and event != "start_map" and event != "map_key":
            return False
    return False


def _value(cell: str) -> str:
    """A cell's value as `due` gave it to the spreadsheet (`report.cells.spreadsheet_cell`)."""
    if cell.startswith('="') and cell.endswith('"'):
        return cell[2:-1]
    if cell.startswith("'") and cell[1:2] in FORMULA:
        return cell[1:]
    return cell


def _not_a_listing(path: Path, why: str) -> InputError:
    return InputError(
        f"{path}: not a listing of `auditor due` ({why}); give the CSV or JSON it wrote, whose "
        "deletions and reviews were carried out"
    )
