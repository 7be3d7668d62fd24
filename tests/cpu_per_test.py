"""A pytest plugin that tells the CPU each test and each test file took, not their wall time.

Wall time on a machine shared with other work measures the other work; user + system CPU of
this process and of the children it waited for (the runs a test starts, their workers) does
not. Setup and teardown count with the test that ran them, so a module's fixtures count with
its first test. Not loaded by the suite: run it on the files of interest alone, as

    PYTHONPATH=$PWD/tests .venv/bin/pytest -q -p no:xdist -p cpu_per_test tests/test_x.py

and it prints the files, then the 30 costliest tests, after the summary.
"""

from __future__ import annotations

import resource
from collections import Counter

import pytest

_by_test: Counter[str] = Counter()


def _cpu_seconds() -> float:
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = _cpu_seconds()
    yield
    _by_test[item.nodeid] += _cpu_seconds() - started


def pytest_terminal_summary(terminalreporter) -> None:
    by_file: Counter[str] = Counter()
    for nodeid, seconds in _by_test.items():
        by_file[nodeid.split("::")[0]] += seconds
    write = terminalreporter.write_line
    write(f"CPU s by file ({sum(by_file.values()):.2f} in all):")
    for path, seconds in by_file.most_common():
        write(f"{seconds:8.2f} {path}")
    write("CPU s of the costliest tests:")
    for nodeid, seconds in _by_test.most_common(30):
        write(f"{seconds:8.2f} {nodeid}")
