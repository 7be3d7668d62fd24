"""`auditor` commands run as processes forked from one that imported the package once.

A test about where a run is killed, not about how Python starts, paid the interpreter's start
and the run's imports (about 1 s of CPU) twice a kill point when each run was `python -m
auditor`. The forked process is still a process of its own: SIGKILLed at a crash point
(`AUDITOR_CRASH_AT`, read again in it) or from outside, with its own descriptors, environment
and exit status, as `subprocess.run` reports them (-9 when killed).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path

# The process that forks: it imports what `auditor run` imports, then forks one child a request
# and tells its pid, then its exit status. It has no thread of its own, so a child is a clean
# copy; the child reads its crash point again, as a process started with it set would.
_FORKER = """
import importlib, json, os, sys, threading
import auditor.cli, auditor.cli.run, auditor.pipeline, auditor.stages, auditor.report.bag
import auditor.archive.verify, auditor.executors.local
from auditor import crashpoints

for line in sys.stdin:
    request = json.loads(line)
    assert threading.active_count() == 1
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            os.environ.clear()
            os.environ.update(request["env"])
            importlib.reload(crashpoints)
            sys.argv = ["auditor", *request["args"]]
            auditor.cli.main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Forker:
    """One forking process for a module's runs; `run` is `subprocess.run` of `auditor` for them.

    Runs are one at a time: each request waits for its child's end."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _FORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _answer(self, timeout: float) -> int:
        line = self._lines.get(timeout=timeout)
        assert line is not None, f"the forking process ended (exit {self.process.wait()})"
        return int(line)

    def run(
        self,
        args: list[str],
        env: dict[str, str],
        folder: Path,
        kill_after: float | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """`auditor *args` with `env` as its whole environment, its output kept in files under
        `folder`; SIGKILLed from outside `kill_after` seconds after it was forked, if given."""
        folder.mkdir(parents=True, exist_ok=True)
        out, err = folder / "stdout", folder / "stderr"
        request = dict(args=args, env=env, stdout=str(out), stderr=str(err))
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        pid = self._answer(timeout=30)
        try:
            code = self._answer(timeout=kill_after if kill_after is not None else timeout)
        except queue.Empty:
            with suppress(ProcessLookupError):  # it ended as the wait ended
                os.kill(pid, signal.SIGKILL)
            code = self._answer(timeout=30)
            assert kill_after is not None, f"auditor {' '.join(args)} still ran after {timeout} s"
        return subprocess.CompletedProcess(
            ["auditor", *args], code, out.read_bytes(), err.read_bytes()
        )

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
