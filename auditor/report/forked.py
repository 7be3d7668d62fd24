"""One report file written by a forked child while the coordinator does the rest of a run's end.

At the end of a run the workers are done and one core would idle: the coordinator writes the
CSV (a replay of every finding) while the state indexes the run's messages in a thread. The HTML
page reads only the snapshot's tables, summary and charts, so a child forked with that snapshot
in memory writes it on the other core. The child touches nothing the parent shares but the
report folder, and dies with its parent; a child that fails leaves its file to the parent, which
writes the same bytes from the same snapshot, so forking changes when a file is written, never
what it holds.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from auditor.processes import LINUX, die_with_parent
from auditor.report.content import Report
from auditor.report.formats.interface import ReportFormat


@dataclass(slots=True)
class ForkedWrite:
    """`format`'s file being written into `out_dir` by the child `pid`."""

    format: ReportFormat
    report: Report
    out_dir: Path
    pid: int
    reaped: bool = False

    @classmethod
    def start(cls, fmt: ReportFormat, report: Report, out_dir: Path) -> ForkedWrite | None:
        """Forks a child writing `fmt`'s file; None where this system cannot (then write it here).

        Only a process with no other thread forks: a forked child holds only the calling
        thread, and a lock another thread held at the fork would stay held in the child. So call
        it before starting threads; with a Dask client's threads alive, the file is written here.
        """
        if not LINUX or threading.active_count() > 1:
            return None
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            return None
        if pid == 0:
            _write_and_exit(fmt, report, out_dir, parent)
        return cls(fmt, report, out_dir, pid)

    def finish(self) -> Path:
        """The file, once the child wrote it; written here when the child could not."""
        _pid, status = os.waitpid(self.pid, 0)
        self.reaped = True
        if os.waitstatus_to_exitcode(status) == 0:
            return self.out_dir / self.format.filename
        return self.format.write(self.report, self.out_dir)

    def abandon(self) -> None:
        """Stops the child when the run fails before `finish` (a reaped pid may be another
        process's by now: it is left alone)."""
        if not self.reaped:
            self.reaped = True
            # A signal may stop `finish` between its wait and its note that the child is reaped.
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)


def _write_and_exit(fmt: ReportFormat, report: Report, out_dir: Path, parent: int) -> None:
    """The child: writes the file and leaves without running the parent's cleanup (no atexit,
    no finalizers, no flushing of buffers it shares); any failure is exit 1 and stays silent, as
    the parent writes the file itself and reports what goes wrong then."""
    code = 1
    # The child lives for one file: a collection would only walk, and so copy, the parent's pages.
    gc.disable()
    try:
        if not (die_with_parent() and os.getppid() != parent):
            fmt.write(report, out_dir)
            code = 0
    except BaseException:
        pass
    finally:
        os._exit(code)
