"""The interface of an output format: one file of the report, written from a `Report` snapshot."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, ClassVar

from auditor.errors import InputError
from auditor.report.content import Report


class ReportFormat(ABC):
    """One file of the report; `write` replaces it whole, so a reader never sees half a file."""

    filename: ClassVar[str]
    # Reads only the snapshot's run, summary, tables and charts, never the findings replay (a
    # file whose offset a forked child would share): `report.forked` may write it in a child.
    snapshot_only: ClassVar[bool] = False

    @abstractmethod
    def dump(self, report: Report, handle: BinaryIO) -> None:
        """Writes the format's bytes for `report` to `handle`."""

    def write(self, report: Report, out_dir: Path) -> Path:
        return write_whole(out_dir / self.filename, lambda handle: self.dump(report, handle))

    def write_files(self, report: Report, out_dir: Path) -> dict[str, Path]:
        """Every file the format writes, by name: one, unless it splits (`findings.csv`)."""
        return {self.filename: self.write(report, out_dir)}


def write_whole(path: Path, dump: Callable[[BinaryIO], None]) -> Path:
    """Writes `path` through `dump` under a temporary name, renamed when whole."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as handle:
            dump(handle)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the report file ({error})") from None
    return path
