"""probe32: a record file in a folder of exports that is a link to nothing (its target moved,
or a loop of links) was skipped with a warning, 'not a regular file', and the run archived the
rest with exit 0: the export's records left out, as the README says an unreadable folder must
not do. A FIFO there is still skipped (it holds no export)."""

import os
import subprocess
import sys

import orjson
import pytest

from auditor.errors import InputError
from auditor.sources.local import LocalFileSource

RECORD = {"msg_id": "1", "timestamp": 1_793_491_200_001}


@pytest.mark.parametrize(
    ("links", "said"),
    [
        ({"2026110101.jsonl": "moved/2026110101.jsonl"}, "a link to nothing"),
        ({"a.jsonl": "b.jsonl", "b.jsonl": "a.jsonl"}, "a loop of links"),
    ],
)
def test_a_record_file_linked_to_nothing_stops_the_source_naming_it(tmp_path, links, said):
    (tmp_path / "2026110100.jsonl").write_bytes(orjson.dumps(RECORD) + b"\n")
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)

    with pytest.raises(InputError) as refused:
        LocalFileSource([tmp_path], keep_unreadable=True)

    assert str(refused.value).startswith(str(tmp_path / sorted(links)[0]))
    assert said in str(refused.value) and "left out" in str(refused.value)


def test_a_fifo_among_the_exports_is_still_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "2026110100.jsonl").write_bytes(orjson.dumps(RECORD) + b"\n")
    os.mkfifo(tmp_path / "pipe.jsonl")

    source = LocalFileSource([tmp_path], keep_unreadable=True)

    assert [path.name for path in source.files] == ["2026110100.jsonl"]
    assert "pipe.jsonl: not a regular file" in caplog.text


def test_validate_of_a_folder_with_a_link_to_nothing_exits_2_in_one_line(tmp_path):
    (tmp_path / "2026110100.jsonl").write_bytes(orjson.dumps(RECORD) + b"\n")
    (tmp_path / "gone.jsonl").symlink_to("elsewhere.jsonl")

    result = subprocess.run(
        [sys.executable, "-m", "auditor", "validate", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "a link to nothing" in result.stderr
