"""The report page written by a forked child: the same bytes, and never lost to a failing child."""

from __future__ import annotations

import functools
import inspect
import os
import subprocess
import sys
import threading
import time

import pytest
from test_report_formats import NOV_1, keyword, run_info

from auditor.partitions import HOUR_MS
from auditor.report import ReportBuilder
from auditor.report.forked import ForkedWrite
from auditor.report.formats import HtmlFormat, default_formats

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux")


def alone(test):
    """Runs `test` in a fresh interpreter when this one has other threads alive (a Dask test
    leaves its client's behind): the page forks only in a process with no other thread."""
    signature = inspect.signature(test)

    @functools.wraps(test)
    def wrapper(request, **fixtures):
        if threading.active_count() == 1:
            return test(**fixtures)
        fresh = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
            cwd=request.config.rootpath,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert fresh.returncode == 0, fresh.stdout[-4000:] + fresh.stderr[-2000:]
        assert "1 passed" in fresh.stdout

    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    wrapper.__signature__ = signature.replace(parameters=[request, *signature.parameters.values()])
    return wrapper


@pytest.fixture
def builder():
    built = ReportBuilder(run_info())
    for hour in range(48):
        built.observe_record(
            {"msg_id": str(hour), "timestamp": NOV_1 + hour * HOUR_MS, "chat_type": "chat"}, "x"
        )
    for number in range(300):
        built.observe_finding(keyword(msg=str(number % 48), severity=("high", "low")[number % 2]))
    with built:
        yield built


class _OnlyInParent(HtmlFormat):
    """The page, refusing to be written by any process but the one that made it."""

    def __init__(self) -> None:
        self.parent = os.getpid()

    def dump(self, report, handle):
        if os.getpid() != self.parent:
            raise OSError("the child cannot write here")
        super().dump(report, handle)


class _Witnessed(HtmlFormat):
    """The page, noting which process wrote it."""

    def dump(self, report, handle):
        super().dump(report, handle)
        handle.write(f"<!-- pid {os.getpid()} -->".encode())


class _Stuck(HtmlFormat):
    def dump(self, report, handle):
        time.sleep(60)


@alone
def test_the_page_a_child_writes_beside_the_csv_is_the_page_written_here(builder, tmp_path):
    here = builder.render(tmp_path / "here", formats=[HtmlFormat()])
    beside = builder.render(tmp_path / "beside")

    assert [each.filename for each in default_formats()] == list(beside)
    assert beside["report.html"].read_bytes() == here["report.html"].read_bytes()
    assert all(path.stat().st_size > 0 for path in beside.values())
    assert sorted(path.name for path in (tmp_path / "beside").iterdir()) == sorted(beside)


@alone
def test_render_has_a_child_write_the_page_while_it_writes_the_rest(builder, tmp_path):
    files = builder.render(tmp_path, formats=[_Witnessed(), *default_formats()[1:]])

    writer = int(files["report.html"].read_text().rsplit("pid ", 1)[1].split()[0])
    assert writer != os.getpid()


def test_a_page_alone_is_written_here_as_no_work_is_left_to_do_beside_it(builder, tmp_path):
    files = builder.render(tmp_path, formats=[_Witnessed()])

    assert files["report.html"].read_text().endswith(f"<!-- pid {os.getpid()} -->")


@alone
def test_the_page_is_written_by_another_process(builder, tmp_path):
    report = builder.snapshot()
    tmp_path.joinpath("out").mkdir()
    forked = ForkedWrite.start(HtmlFormat(), report, tmp_path / "out")

    assert forked is not None and forked.pid != os.getpid()
    page = forked.finish()
    assert page.read_bytes() == HtmlFormat().write(report, tmp_path).read_bytes()


@alone
def test_a_child_that_cannot_write_the_page_leaves_it_to_this_process(builder, tmp_path):
    here = builder.render(tmp_path / "here", formats=[HtmlFormat()])
    fails_in_child = _OnlyInParent()

    files = builder.render(tmp_path / "beside", formats=[fails_in_child, *default_formats()[1:]])

    assert files["report.html"].read_bytes() == here["report.html"].read_bytes()


@alone
def test_a_run_that_fails_before_the_page_is_collected_stops_its_child(builder, tmp_path):
    report = builder.snapshot()
    tmp_path.joinpath("out").mkdir()
    forked = ForkedWrite.start(_Stuck(), report, tmp_path / "out")
    assert forked is not None

    started = time.monotonic()
    forked.abandon()

    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(forked.pid, os.WNOHANG)
    assert not (tmp_path / "out" / "report.html").exists()
    forked.abandon()  # once reaped, its pid may be another process's: never signalled again


def test_a_process_with_another_thread_alive_does_not_fork(builder, tmp_path):
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        forked = ForkedWrite.start(HtmlFormat(), builder.snapshot(), tmp_path)
        files = builder.render(tmp_path, formats=[_Witnessed(), *default_formats()[1:]])
    finally:
        stop.set()
        other.join()

    assert forked is None
    assert files["report.html"].read_text().endswith(f"<!-- pid {os.getpid()} -->")
