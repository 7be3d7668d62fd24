"""Inputs named on a command line that may be bags: `scan` and `validate` read a bag (or a
folder of them, as a run's out folder) as the records it archived, the lines of its
`data/records/*.jsonl` each taken out of its `{"record", "salt", "seq"}` line, and the lines it kept
verbatim in `data/unreadable/` as plain JSON lines. Read as plain JSON lines, a bag gave its
wrapper objects, findings and attachment index as records."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from auditor.archive import layout
from auditor.archive.baginfo import check_bag_format, parse_bag_info, sequence_of
from auditor.archive.untrusted import (
    TAG_FILE_LIMIT,
    read_bag_file,
    record_files,
    unreadable_files,
)
from auditor.jsonl import ParsedLine, expand_inputs

log = logging.getLogger(__name__)


def input_files(
    inputs: Iterable[str | Path],
    command: str,
    expand: Callable[[list[Path]], list[Path]] = expand_inputs,
) -> list[tuple[Path, bool]]:
    """The files to read, each with whether its lines are a bag's archived lines; the inputs
    that are not bags are listed by `expand`."""
    found: list[tuple[Path, bool]] = []
    read: list[Path] = []  # the bags, whose format is checked before any is read
    seen: dict[bytes, Path] = {}
    runs: dict[tuple[Path, int], Path] = {}
    for item in inputs:
        path = Path(item)
        bags = _bags_in(path)
        if bags:
            read.extend(bags)
            for bag in bags:
                if not _warn_of_a_copy(bag, seen):
                    _warn_of_a_rerun(bag, runs)
                found.extend((record_file, True) for record_file in record_files(bag))
                # kept verbatim, read as plain lines: a record without an RFC 8785 form is
                # still a message to judge, served garbage a line that is none
                found.extend((piece_file, False) for piece_file in unreadable_files(bag))
        else:
            found.extend((file, _in_a_bag(file)) for file in expand([path]))
    read.extend(file.parents[2] for file, archived in found if archived)  # record files named
    for bag in dict.fromkeys(read):
        check_bag_format(bag, command)
    return found


def _warn_of_a_copy(bag: Path, seen: dict[bytes, Path]) -> bool:
    """A warning when `bag` is a copy of one read already (a Finder-style `run-000002 copy`):
    the same tag manifest is the same signed bag, whose records would count twice. Both are
    still read: a copy of a bag is a bag, and which one was meant is the reader's call. True
    when it warned."""
    try:
        digest = hashlib.sha256((bag / layout.TAGMANIFEST).read_bytes()).digest()
    except OSError:  # `check_bag_format` names what is wrong with it
        return False
    first = seen.setdefault(digest, bag)
    if first != bag:
        log.warning(
            "%s is a copy of %s (the same %s): its records are read twice",
            bag,
            first,
            layout.TAGMANIFEST,
        )
    return first != bag


def _warn_of_a_rerun(bag: Path, runs: dict[tuple[Path, int], Path]) -> None:
    """A warning when `bag` holds the Run-Sequence of a bag read already from the same folder,
    with other bytes (a copy whose line ends a transfer changed, a run written again, another
    chain's bag moved in): one folder of runs holds each run once, so one of the two is not the
    chain's, and its records would count as one more run's. Bags of two folders (two chains)
    may share sequences."""
    data = read_bag_file(bag / layout.BAG_INFO, TAG_FILE_LIMIT)
    if data is None:
        return
    fields, _problems = parse_bag_info(data.replace(b"\r\n", b"\n"), layout.BAG_INFO)
    sequence = sequence_of(fields)
    if sequence is None:
        return
    first = runs.setdefault((bag.parent, sequence), bag)
    if first != bag:
        log.warning(
            "%s holds %s %d as %s does (%s), with other bytes: two bags of one run, whose "
            "records are both read",
            bag,
            layout.SEQUENCE,
            sequence,
            first,
            layout.BAG_INFO,
        )


def _bags_in(path: Path) -> list[Path]:
    """`path` itself when it is a bag, else the bags directly inside it (a folder of runs;
    hidden ones, unpublished or spooled, are not runs)."""
    if _is_bag(path):
        return [path]
    try:
        children = sorted(path.iterdir()) if path.is_dir() else []
    except OSError:  # listed again by `expand`, whose error names the folder
        return []
    return [child for child in children if not child.name.startswith(".") and _is_bag(child)]


def _is_bag(path: Path) -> bool:
    """Whether `path` holds bagit.txt; a folder that cannot be read is not taken for one
    (`Path.is_file` lets a refused permission through)."""
    try:
        return (path / layout.BAGIT_TXT).is_file()
    except OSError:
        return False


def _in_a_bag(file: Path) -> bool:
    """Whether a file named directly is one of a bag's record files."""
    parents = file.parents
    return (
        len(parents) > 2
        and f"{parents[1].name}/{parents[0].name}" == layout.RECORDS
        and _is_bag(parents[2])
    )


def unwrapped(parsed: ParsedLine) -> ParsedLine:
    """The record of an archived line; a line that is not one is unreadable."""
    line = parsed.record
    if line is None:
        return parsed
    if isinstance(line, dict) and set(line) == {"record", "salt", "seq"}:
        return replace(parsed, record=line["record"])
    return replace(
        parsed, record=None, error='not an archived line (an object of "record", "salt", "seq")'
    )
