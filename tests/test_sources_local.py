"""Local files as a source: records go to the hour of their timestamp, syntax errors stop."""

import gzip

import orjson
import pytest

from auditor.errors import InputError
from auditor.partitions import Partition, parse_timezone
from auditor.sources.local import LocalFileSource

H0 = Partition(1_793_491_200_000)  # 2026-11-01T00:00Z
H1 = Partition(H0.end_ms)


def lines(*records):
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def test_records_go_to_the_hour_of_their_timestamp_whatever_file_holds_them(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(
        lines(
            {"msg_id": "2", "timestamp": H1.start_ms}, {"msg_id": "1", "timestamp": 5 + H0.start_ms}
        )
    )
    (tmp_path / "b.jsonl.gz").write_bytes(
        gzip.compress(lines({"msg_id": "3", "timestamp": H1.end_ms - 1}))
    )
    source = LocalFileSource([tmp_path])
    assert source.partitions() == [H0, H1]
    assert [r["msg_id"] for r in source.records(H0)] == ["1"]
    assert [r["msg_id"] for r in source.records(H1)] == ["2", "3"]


def test_a_record_without_timestamp_stays_with_the_hour_its_file_is_named_for(tmp_path):
    beijing = parse_timezone("+8")
    (tmp_path / "2026110109.gz").write_bytes(gzip.compress(lines({"msg_id": "x"})))
    source = LocalFileSource([tmp_path], hour_timezone=beijing)
    assert list(source.records(H1)) == [{"msg_id": "x"}]


def test_a_record_without_timestamp_in_an_unnamed_file_follows_the_record_before_it(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(
        lines({"msg_id": "a"}, {"msg_id": "b", "timestamp": H0.start_ms}, {"msg_id": "c"})
        + lines({"msg_id": "d", "timestamp": H1.start_ms + 1}, {"msg_id": "e"})
    )
    source = LocalFileSource([path])
    assert [r["msg_id"] for r in source.records(H0)] == ["b", "a", "c"]
    assert [r["msg_id"] for r in source.records(H1)] == ["d", "e"]


def test_a_line_that_is_not_json_names_file_and_line(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(lines({"msg_id": "1", "timestamp": H0.start_ms}) + b'{"msg_id": "2",\n')
    with pytest.raises(InputError, match=r"export\.jsonl, line 2: not JSON"):
        LocalFileSource([path]).partitions()


def test_a_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "2026110100.gz"
    path.write_bytes(gzip.compress(lines({"msg_id": "1", "timestamp": H0.start_ms}))[:-12])
    with pytest.raises(InputError, match=r"2026110100\.gz: corrupt gzip data"):
        LocalFileSource([path]).partitions()


def test_pull_metadata_beside_the_hour_files_is_not_read_as_records(tmp_path):
    (tmp_path / "2026110100.jsonl").write_bytes(lines({"msg_id": "1", "timestamp": H0.start_ms}))
    (tmp_path / "checkpoint.json").write_text('{"hours": {}}')
    (tmp_path / "conflicts.jsonl").write_text('{"hour": "2026110100", "msg_id": "1"}\n')
    assert LocalFileSource([tmp_path]).partitions() == [H0]


def test_concatenated_objects_on_one_line_are_each_a_record(tmp_path):
    path = tmp_path / "2026110100.jsonl"
    first = {"msg_id": "1", "timestamp": H0.start_ms}
    second = {"msg_id": "2", "timestamp": H0.end_ms - 1}
    path.write_bytes(orjson.dumps(first) + orjson.dumps(second) + b"\n")
    assert list(LocalFileSource([path]).records(H0)) == [first, second]


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"no \.jsonl, \.json or \.gz files"):
        LocalFileSource([tmp_path])


def test_a_folder_linked_into_the_exports_is_read_and_a_link_back_up_is_skipped(tmp_path, caplog):
    """Exports of other months linked in from another disk were skipped without a word (the
    run archived 1 of 2 records); a link to a folder that holds it would loop, and one to a
    folder read already would read its files twice: each is named in a warning instead."""
    exports, elsewhere = tmp_path / "exports", tmp_path / "disk2" / "2026-11"
    elsewhere.mkdir(parents=True)
    exports.mkdir()
    (exports / "a.jsonl").write_bytes(lines({"msg_id": "1", "timestamp": H0.start_ms}))
    (elsewhere / "b.jsonl").write_bytes(lines({"msg_id": "2", "timestamp": H1.start_ms}))
    (exports / "2026-11").symlink_to(elsewhere)
    (exports / "again").symlink_to(elsewhere)
    (exports / "up").symlink_to(tmp_path)
    (exports / "self").symlink_to(".")

    with caplog.at_level("WARNING"):
        source = LocalFileSource([exports])

    assert source.files == [exports / "2026-11" / "b.jsonl", exports / "a.jsonl"]
    assert [r["msg_id"] for h in source.partitions() for r in source.records(h)] == ["1", "2"]
    assert sorted(caplog.messages) == [
        f"skipping {exports / 'again'}: the folder {exports / '2026-11'} is read already",
        f"skipping {exports / 'self'}: a link to a folder that holds it",
        f"skipping {exports / 'up'}: a link to a folder that holds it",
    ]


@pytest.mark.parametrize("pack", [bytes, gzip.compress], ids=["plain", "gzip"])
def test_an_export_with_a_bom_crlf_and_no_last_line_break_gives_every_record(tmp_path, pack):
    """Windows tools start a UTF-8 file with a BOM (PowerShell 5's Out-File, Excel): its first
    record was an unreadable line, archived but never validated nor checked by a policy, and a
    file of one such record belonged to no hour (the run refused it)."""
    served = [{"msg_id": str(n), "timestamp": H0.start_ms + n} for n in (1, 2, 3)]
    text = b"\r\n".join(orjson.dumps(record) for record in served)
    (tmp_path / "export.jsonl").write_bytes(pack(b"\xef\xbb\xbf" + text))

    source = LocalFileSource([tmp_path], keep_unreadable=True)

    assert source.partitions() == [H0]
    assert list(source.served(H0)) == served


def test_a_json_array_export_is_refused_naming_the_format_not_missing_timestamps(tmp_path):
    """An export saved as one JSON array (a .json file, pretty-printed or not) has no line that
    is a record: refused with what line 1 is, where it said no record had a timestamp."""
    served = [{"msg_id": str(n), "timestamp": H0.start_ms + n} for n in (1, 2)]
    (tmp_path / "export.json").write_bytes(orjson.dumps(served))

    with pytest.raises(InputError) as refused:
        LocalFileSource([tmp_path], keep_unreadable=True).partitions()

    assert str(refused.value) == (
        f"{tmp_path / 'export.json'}: no line of it is a record (line 1: a JSON list, not an "
        "object): a file of records holds one JSON object a line (JSON Lines)"
    )


def test_record_files_named_in_capitals_are_read_like_the_others(tmp_path):
    """An export from Windows named EXPORT.JSONL or DAY.JSON.GZ was skipped without a word
    beside lower-case ones (and refused as no files when all were so)."""
    (tmp_path / "a.jsonl").write_bytes(lines({"msg_id": "1", "timestamp": H0.start_ms}))
    (tmp_path / "B.JSONL").write_bytes(lines({"msg_id": "2", "timestamp": H0.start_ms + 1}))
    (tmp_path / "C.Json.GZ").write_bytes(
        gzip.compress(lines({"msg_id": "3", "timestamp": H0.start_ms + 2}))
    )

    source = LocalFileSource([tmp_path])

    assert [r["msg_id"] for r in source.records(H0)] == ["1", "2", "3"]
