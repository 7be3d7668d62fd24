"""A listing of `auditor due` given to `state prune --carried-out` is read in flat memory, the
JSON as the CSV: a due listing of millions of rows must not need gigabytes (probe due27 #4)."""

import tracemalloc

import pytest

from auditor.carried_out import acted_on
from auditor.due import CSV_FIELDS, DueMessage, DueReport
from auditor.errors import InputError
from auditor.report.cells import csv_line, spreadsheet_cell

ROWS = 10_000


def messages(rows=ROWS):
    for number in range(rows):
        verdict = ("delete", "hold", "review", "unchecked")[number % 4]
        yield DueMessage(
            verdict, str(1_100_000_000_000 + number), "2027-11-01T06:00:00Z", "default",
            1 + number // 1000, f"run-{1 + number // 1000:06d}", number % 1000,
        )  # fmt: skip


def write_listing(path, form, rows=ROWS):
    """The listing as `auditor due --format json|csv` writes it."""
    with path.open("w", encoding="utf-8", newline="") as out:
        if form == "json":
            report = DueReport("2028-06-01T23:59:59.999Z", {"delete": rows}, messages(rows))
            for chunk in report.json_chunks():
                out.write(chunk)
        else:
            out.write("\ufeff" + csv_line(CSV_FIELDS))
            for message in messages(rows):
                out.write(csv_line([spreadsheet_cell(value) for value in message]))
    return path


def acted_on_ids():
    return [m.msg_id for m in messages() if m.verdict in ("delete", "review")]


@pytest.mark.parametrize("form", ["json", "csv"])
def test_a_listing_is_read_in_flat_memory(tmp_path, form):
    """10,000 rows (1.9 MB of JSON): `json.loads` held them all, 7.8 MB at its peak (31 MB at
    40,000); streamed, the peak is ijson's buffers and a few rows, 1 MB at either length."""
    listing = write_listing(tmp_path / f"due.{form}", form)
    tracemalloc.start()
    try:
        count = sum(1 for _ in acted_on(listing))
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == len(acted_on_ids())
    assert peak < 2_000_000, f"{peak:,} bytes at the peak"


def test_the_json_and_the_csv_of_one_listing_name_the_same_messages(tmp_path):
    assert (
        list(acted_on(write_listing(tmp_path / "due.json", "json", 2000)))
        == list(acted_on(write_listing(tmp_path / "due.csv", "csv", 2000)))
        == acted_on_ids()[:1000]
    )


@pytest.mark.parametrize(
    ("cut", "why"),
    [
        (lambda text: text[: len(text) // 2], "not JSON"),  # cut short mid-listing
        (lambda text: text + "{}", "not JSON"),  # something after the listing
        (lambda text: text.replace('"messages": [', '"messages": {"item": ['), "no messages"),
    ],
)
def test_a_broken_json_listing_is_refused_after_its_rows_are_read(tmp_path, cut, why):
    """A streamed listing meets a fault only where it is, after the rows before it were given:
    the prune that takes them raises before it forgets anything (tests/test_state_prune.py)."""
    listing = write_listing(tmp_path / "due.json", "json", 200)
    listing.write_text(cut(listing.read_text(encoding="utf-8")), encoding="utf-8")

    with pytest.raises(InputError, match=f"not a listing of `auditor due` \\({why}\\)"):
        list(acted_on(listing))
