"""Instructions of `run --from` a pull folder's own reading, under callgrind: preparing the folder
(the coordinator) and fetching the hours of a window (the workers), apart.

    .venv/bin/python bench/pull_folder_instructions.py FOLDER [--hours N] [--python OTHER]

FOLDER is a pull folder (`auditor pull --from EXPORT --out FOLDER`); `--python` counts another
checkout's venv on the same folder. The measured process calls `os.getppid()` between its phases,
and callgrind dumps a count at each (`--dump-before=getppid`), so start-up falls out.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PHASES = ("start-up", "prepare (coordinator)", "fetch (workers)")


def measured(folder: Path, hours: int) -> None:
    """The process callgrind counts: prepare the folder, then fetch its first `hours` hours."""
    from auditor.partitions import parse_hour_timezone
    from auditor.sources.folder import LocalHoursSource, prepared_inputs

    os.getppid()
    with prepared_inputs([folder], None, Path(tempfile.mkdtemp())) as prepared:
        os.getppid()
        zone = parse_hour_timezone(prepared.hour_timezone)
        source = LocalHoursSource(prepared.folder, zone, True, prepared.stamps)
        for hour in prepared.hours[:hours]:
            source.fetch(hour).close()
        os.getppid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--hours", type=int, default=2)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        measured(args.folder, args.hours)
        return
    with tempfile.TemporaryDirectory() as out:
        command = [
            *("valgrind", "--tool=callgrind", "--dump-before=getppid"),
            f"--callgrind-out-file={out}/cg",
            *(args.python, __file__, str(args.folder), "--hours", str(args.hours), "--inner"),
        ]
        subprocess.run(
            command, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"}
        )
        for number, phase in enumerate(PHASES, start=1):
            lines = Path(f"{out}/cg.{number}").read_text().splitlines()
            total = next(line for line in lines if line.startswith(("summary:", "totals:")))
            print(f"{phase}: {int(total.split()[1]):,} instructions")


if __name__ == "__main__":
    main()
