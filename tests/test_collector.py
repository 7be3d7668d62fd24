"""The cycle collector's settings during a run: raised for the run, the caller's put back."""

from __future__ import annotations

import gc

import pytest

from auditor.collector import YOUNG_OBJECTS, fewer_collections


@pytest.fixture
def default_thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_youngest_generation_is_collected_less_often_inside_the_block(default_thresholds):
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_OBJECTS, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_the_callers_thresholds_come_back_when_the_block_fails(default_thresholds):
    with pytest.raises(KeyError), fewer_collections():
        raise KeyError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_caller_that_collects_even_less_often_keeps_its_threshold(default_thresholds):
    gc.set_threshold(50_000, 5, 5)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 5, 5)
    assert gc.get_threshold() == (50_000, 5, 5)
