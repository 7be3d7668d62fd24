"""Reading `bag-info.txt` (and the sha256sum-style manifests) strictly, reporting each bad line."""

from __future__ import annotations

import re
from pathlib import Path

from auditor.archive import layout
from auditor.archive.problems import Problem
from auditor.archive.untrusted import TAG_FILE_LIMIT, read_bag_file, shown
from auditor.errors import InputError

_INFO_LINE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*): ?(.*)")
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (\S(?:.*\S)?)")


def parse_bag_info(data: bytes, file: str) -> tuple[dict[str, str], list[Problem]]:
    """Labels and values, plus a problem for each line that is not `Label: value` or repeats."""
    problems: list[Problem] = []
    fields: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {}, [Problem(file, "is not UTF-8 text")]
    for number, line in enumerate(text.split("\n"), start=1):
        if not line and number == text.count("\n") + 1:
            break
        match = _INFO_LINE.fullmatch(line)
        if not match:
            problems.append(Problem(file, f"not a 'Label: value' line: {line[:60]!r}", number))
            continue
        label, value = match.groups()
        if label in fields:
            problems.append(Problem(file, f"{label} appears more than once", number))
            continue
        fields[label] = value
    return fields, problems


def parse_manifest(data: bytes, file: str) -> tuple[list[tuple[str, str, int]], list[Problem]]:
    """`(sha256, path, line)` entries of a sha256sum-compatible manifest, and its bad lines."""
    entries: list[tuple[str, str, int]] = []
    problems: list[Problem] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [Problem(file, "is not UTF-8 text")]
    if text and not text.endswith("\n"):
        problems.append(Problem(file, "the last line has no newline"))
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = parse_manifest_line(line)
        if entry is None:
            problems.append(Problem(file, not_a_manifest_line(line), number))
            continue
        digest, path = entry
        if path in seen:
            problems.append(Problem(file, f"{path} is listed more than once", number))
            continue
        seen.add(path)
        entries.append((digest, path, number))
    return entries, problems


def parse_manifest_line(line: str) -> tuple[str, str] | None:
    """`(sha256, path)` of one manifest line (without its newline), or None if it is not one."""
    match = _MANIFEST_LINE.fullmatch(line)
    return (match[1], match[2]) if match else None


def not_a_manifest_line(line: str) -> str:
    """The problem message for a line that `parse_manifest_line` refused."""
    return f"not a '<sha256>  <path>' line: {line[:80]!r}"


def whole_number(value: str) -> int | None:
    """A count or number bag-info gives, None unless it is 1 to 18 ASCII digits: `int` raises
    ValueError past 4,300 digits, and a damaged bag-info stopped `verify` and `report` as an
    internal error (exit 70)."""
    return int(value) if 0 < len(value) <= 18 and value.isascii() and value.isdigit() else None


def sequence_of(fields: dict[str, str]) -> int | None:
    """The Run-Sequence, None unless it is a `whole_number`."""
    return whole_number(fields.get(layout.SEQUENCE, ""))


def check_format(fields: dict[str, str], bag: str, action: str = "verify") -> None:
    """Refuses a bag in a format newer than this auditor reads (InputError, exit 2): its checks
    would pass what they do not understand, or fail what is sound, and its records may not be
    what `action` takes them for. A bag without the label predates numbered formats and is read
    as format 1 (see docs/compatibility.md)."""
    value = fields.get(layout.FORMAT)
    if value is None or value == str(layout.FORMAT_VERSION):
        return
    known = len(value) <= 18 and value.isascii() and value.isdigit() and not value.startswith("0")
    what = f"format {value}, newer than" if known else f"format {shown(value[:20])}, unknown to"
    raise InputError(
        f"{bag}: written in bag {what} this auditor, which reads formats up to "
        f"{layout.FORMAT_VERSION} ({layout.FORMAT} in {layout.BAG_INFO}): {action} it with the "
        f"auditor that wrote it ({shown(fields.get(layout.SOFTWARE, '?')[:60])}) or a "
        f"later one; nothing was {'checked' if action == 'verify' else 'read'}"
    )


def check_bag_format(bag: Path, action: str) -> None:
    """`check_format` for a command that reads a bag's records without verifying it (`report`,
    `scan`, `due --policy`), before it reads any: unsigned, the label is taken as it stands,
    since a newer format's records may not be what this version reads them as. A bag-info that
    is missing is left to the command's own reading of the bag."""
    data = read_bag_file(bag / layout.BAG_INFO, TAG_FILE_LIMIT)
    if data is not None:
        fields, _problems = parse_bag_info(data.replace(b"\r\n", b"\n"), layout.BAG_INFO)
        check_format(fields, shown(bag), action)
