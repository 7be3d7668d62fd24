"""probe32: local exports as Windows tools write them. PowerShell 5's `>` and Out-File write
UTF-16 with a byte order mark: such an export was refused as 'str is not valid UTF-8:
surrogates not allowed', which names neither the encoding nor the fix."""

import gzip

import orjson
import pytest

from auditor.errors import InputError
from auditor.jsonl import read_file
from auditor.partitions import Partition
from auditor.sources.local import LocalFileSource

H0 = Partition(1_793_491_200_000)  # 2026-11-01T00:00Z
SERVED = [{"msg_id": str(n), "timestamp": H0.start_ms + n} for n in (1, 2, 3)]
TEXT = "\r\n".join(orjson.dumps(record).decode() for record in SERVED) + "\r\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("pack", [bytes, gzip.compress], ids=["plain", "gzip"])
def test_a_utf16_export_is_refused_naming_its_encoding_and_how_to_convert_it(
    tmp_path, encoding, pack
):
    bom = {"utf-16-be": "\ufeff"}.get(encoding, "")
    (tmp_path / "export.jsonl").write_bytes(pack((bom + TEXT).encode(encoding)))

    with pytest.raises(InputError) as refused:
        LocalFileSource([tmp_path], keep_unreadable=True).partitions()

    said = str(refused.value)
    assert "\n" not in said
    assert f"{tmp_path / 'export.jsonl'}: no line of it is a record (line 1: " in said
    assert "UTF-16 or UTF-32" in said and "iconv -f" in said and "surrogates" not in said


def test_a_utf16_hour_file_keeps_every_line_verbatim_with_the_reason_on_its_first(tmp_path):
    data = ("\ufeff" + TEXT).encode("utf-16-le")
    (tmp_path / "2026110100.jsonl").write_bytes(data)

    parsed = list(read_file(tmp_path / "2026110100.jsonl"))

    assert all(line.record is None for line in parsed)
    assert "UTF-16" in (parsed[0].error or "")
    assert parsed[0].raw.startswith(b"\xff\xfe")
