"""Hours, instants and time zones."""

from datetime import UTC, timedelta, timezone

import pytest

from auditor.errors import ConfigError
from auditor.partitions import (
    HOUR_MS,
    Partition,
    format_instant,
    parse_hour_timezone,
    parse_instant,
    parse_timezone,
    partitions_between,
)

NOV_1 = 1_793_491_200_000


def test_a_record_on_the_hour_belongs_to_that_hour_only():
    first, second = Partition(NOV_1), Partition(NOV_1 + HOUR_MS)
    assert first.contains(NOV_1) and not first.contains(NOV_1 + HOUR_MS)
    assert second.contains(NOV_1 + HOUR_MS)
    assert first.contains(NOV_1 + HOUR_MS - 1)


def test_labels_follow_the_clusters_time_zone():
    beijing = parse_timezone("+8")
    assert Partition(NOV_1).label() == "2026110100"
    assert Partition(NOV_1).label(beijing) == "2026110108"
    assert Partition.from_label("2026110108", beijing) == Partition(NOV_1)


def test_partitions_between_covers_partial_hours():
    hours = list(partitions_between(NOV_1 + 10, NOV_1 + 2 * HOUR_MS + 1))
    assert [p.start_ms for p in hours] == [NOV_1, NOV_1 + HOUR_MS, NOV_1 + 2 * HOUR_MS]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", NOV_1),
        ("2026-11-01T08:00+08:00", NOV_1),
        ("2026-11-01T00:00:00Z", NOV_1),
        (str(NOV_1), NOV_1),
    ],
)
def test_parse_instant_accepts_iso_and_epoch_ms(text, expected):
    assert parse_instant(text) == expected


def test_parse_instant_refuses_nonsense_with_one_line():
    with pytest.raises(ConfigError, match="'yesterday' is not a date"):
        parse_instant("yesterday")


@pytest.mark.parametrize("text", ["2026-11-01+08:00", "2026-11-01-05:00", "2026-11-01x08"])
def test_parse_instant_refuses_a_date_followed_by_anything_but_a_time(text):
    """Python's fromisoformat takes any character between date and time: `2026-11-01+08:00`
    (a date in Beijing, as XML Schema writes one) was read as 08:00 UTC (probe31)."""
    with pytest.raises(ConfigError, match="T or a space") as refused:
        parse_instant(text)
    assert "2026-11-01T00:00+08:00" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-11-01 08:00+08:00", NOV_1), ("2026-11-01t08:00+08:00", NOV_1)],
)
def test_parse_instant_takes_a_space_or_a_t_between_date_and_time(text, expected):
    assert parse_instant(text) == expected


def test_hour_zones_are_whole_hours_from_utc():
    assert parse_hour_timezone("+8") == timezone(timedelta(hours=8))
    assert parse_hour_timezone("-11:00") == timezone(timedelta(hours=-11))
    assert parse_hour_timezone("UTC") == UTC
    for zone in ("+05:30", "-0930", "+5:45"):
        with pytest.raises(ConfigError, match="not a whole number of hours from UTC"):
            parse_hour_timezone(zone)
    assert parse_timezone("+05:30") == timezone(timedelta(hours=5, minutes=30))  # shown, fine


def test_timezones():
    assert parse_timezone("+08:00") == timezone(timedelta(hours=8))
    with pytest.raises(ConfigError):
        parse_timezone("Beijing")
    assert format_instant(NOV_1 + 5) == "2026-11-01T00:00:00.005Z"
