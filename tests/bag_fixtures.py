"""The signing keys and the intact bag that the tamper and transit tests both start from, loaded
by conftest.py: the tests of each module take a fresh copy of the one bag to damage."""

from __future__ import annotations

import pytest
from test_archive_support import build_bag, copy_bag, make_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def intact(keys, tmp_path_factory):
    return build_bag(tmp_path_factory.mktemp("runs"), keys[1]).path


@pytest.fixture
def bag(intact, tmp_path):
    return copy_bag(intact, tmp_path)
