"""Stops the run when a module compiled by setup.py is older than its source: the compiled
module would be imported instead of the edited file, and the tests would test old code."""

from __future__ import annotations

import pytest
from compiled_support import stale_modules


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = stale_modules()
    if stale:
        pytest.exit(
            f"{', '.join(stale)} changed since it was compiled; rebuild with `make test` "
            "(or `.venv/bin/pip install -e .`) before running the tests",
            returncode=2,
        )
