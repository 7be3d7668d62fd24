"""The emulator's parser of the legacy `ql` filter."""

import pytest

from auditor.emulator.ql import QlError, Query, parse_ql


def test_bounds_joined_by_and_give_the_same_window_in_either_order():
    forward = parse_ql("select * where timestamp>100 and timestamp<200")
    backward = parse_ql("select * where timestamp<200 and timestamp>100")
    assert forward == backward == Query(since_ms=101, until_ms=200)


def test_one_bound_leaves_the_other_side_open():
    assert parse_ql("select * where timestamp > 1403164734226") == Query(since_ms=1403164734227)


def test_empty_ql_selects_everything_oldest_first():
    assert parse_ql("") == Query()


def test_order_by_timestamp_desc_is_understood_with_or_without_a_filter():
    assert parse_ql("order by timestamp desc") == Query(descending=True)
    assert parse_ql("SELECT * WHERE timestamp>=5 AND timestamp<=9 ORDER BY timestamp ASC") == Query(
        since_ms=5, until_ms=10
    )


def test_several_bounds_on_one_side_narrow_the_window():
    query = parse_ql("select * where timestamp>10 and timestamp>20 and timestamp<50")
    assert query == Query(since_ms=21, until_ms=50)


def test_a_window_is_clamped_to_the_history_and_never_inverted():
    assert Query(since_ms=5, until_ms=3).clamp(0, 10) == (5, 5)
    assert Query(until_ms=50).clamp(10, 20) == (10, 20)


@pytest.mark.parametrize(
    "text",
    [
        "select * where timestamp>1 or timestamp<5",
        "select * where from='user0001'",
        "select * where",
        "select * where timestamp>abc",
        "delete * where timestamp>1",
    ],
)
def test_anything_but_timestamp_bounds_joined_by_and_is_refused(text):
    with pytest.raises(QlError):
        parse_ql(text)
