"""`due --on DAY`: a date alone is the end of that day however ISO 8601 writes it (probe31;
`due --on` is small31's area). `--on 2027-11-01` lists what is due by 23:59:59.999Z, but
`--on 20271101` (the basic form) and `--on 2027-W44-1` (the same Monday as a week date) were
read as that day's first instant: a message whose retention ends during the day was not listed."""

from __future__ import annotations

import pytest

from auditor.cli.state import _day_end

END_OF_NOV_1 = _day_end("--on", "2027-11-01")


@pytest.mark.parametrize("day", ["20271101", "2027-W44-1"])
def test_a_day_in_any_iso_form_is_its_end(day):
    assert _day_end("--on", day) == END_OF_NOV_1
