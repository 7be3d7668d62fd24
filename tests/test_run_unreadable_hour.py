"""An hour full of unreadable lines: the coordinator copies its spooled findings and pieces into
the bag a piece at a time, so what archiving the hour holds does not grow with them, and still
signs only the bytes the worker's digest names."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from test_run_local import settings_of

from auditor.archive import layout
from auditor.archive.keys import generate_key_files
from auditor.errors import InputError
from auditor.pipeline import Progress, RunOutcome, _Archiver, run_audit
from auditor.sources.settings import local_settings
from auditor.stages import spool_paths

RECORD = b'{"msg_id":"1","timestamp":1793491200000,"from":"a","to":"b","chat_type":"chat",'
RECORD += b'"payload":{"bodies":[{"type":"txt","msg":"hi"}]}}\n'
ARCHIVE, KEPT = _Archiver._archive_partition, _Archiver._kept
POLICY = "version: 1\nname: a day\nretention:\n  default: {id: day, keep_for: 1d, then: delete}\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="auditor@test")


def run_of_garbage(keys, folder: Path, pieces: int, progress=None) -> RunOutcome:
    """A run over one hour of a record and `pieces` unreadable lines, under a one-rule policy."""
    exported = folder / "in"
    exported.mkdir(parents=True)
    garbage = b"".join(b"{cut off line %06d of garbage, as a broken server sends\n" % n
                       for n in range(pieces))  # fmt: skip
    (exported / "2026110100.jsonl").write_bytes(RECORD + garbage)
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    with local_settings([exported], {}, None, folder / "work") as (source, prepared):
        settings = settings_of(source, prepared, keys, folder, fail_on="none", policy_path=policy)
        return run_audit(settings, progress)


def archiving_peak(keys, folder, monkeypatch, pieces: int) -> tuple[int, bytes]:
    """The peak bytes the coordinator allocates archiving an hour of `pieces` unreadable lines
    (beyond what it held as it began), and the bag's unreadable file of the hour."""
    peaks: list[int] = []

    def measured(self, writer, partition, outcome):
        tracemalloc.start()
        try:
            ARCHIVE(self, writer, partition, outcome)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()

    monkeypatch.setattr(_Archiver, "_archive_partition", measured)
    outcome = run_of_garbage(keys, folder, pieces)
    (unreadable,) = (outcome.bag_path / layout.DATA / "unreadable").iterdir()
    return max(peaks), unreadable.read_bytes()


def test_archiving_an_unreadable_hour_holds_neither_its_findings_nor_its_pieces(
    keys, tmp_path, monkeypatch
):
    # both hours' findings past the 1 MiB the spool is copied a piece at a time in
    small, _ = archiving_peak(keys, tmp_path / "small", monkeypatch, 2_000)
    large, kept = archiving_peak(keys, tmp_path / "large", monkeypatch, 6_000)

    assert kept.count(b"\n") == 6_000
    assert kept.startswith(b"{cut off line 000000 of garbage")
    # read whole, the 4,000 more lines' findings (~620 bytes each) and pieces took 4.2 MB more
    assert large - small < 1024 * 1024, (small, large)


def test_findings_rewritten_and_put_back_while_the_hour_is_archived_are_never_signed(
    keys, tmp_path, monkeypatch
):
    """The findings are told before the records and hashed after them: a spool rewritten
    before the hour is archived and put back before its findings are hashed matches the
    worker's digest, but what was told is not what it names."""
    spooled: dict[str, Path] = {}

    def rewrite_the_findings(partition, outcome):
        findings = spool_paths(next((tmp_path / "archive" / ".work").glob("run-*")), partition,
                               outcome.attempt)["findings"]  # fmt: skip
        spooled["original"] = findings.read_bytes()
        spooled["path"] = findings
        assert b"served data" in spooled["original"]
        findings.write_bytes(spooled["original"].replace(b"served data", b"SERVED DATA", 1))

    def put_back(self, *args):
        spooled["path"].write_bytes(spooled["original"])
        return KEPT(self, *args)

    monkeypatch.setattr(_Archiver, "_kept", put_back)
    with pytest.raises(InputError, match=r"the spool of hour 2026110100 changed after its worker"):
        run_of_garbage(keys, tmp_path, 10, Progress(partition_done=rewrite_the_findings))

    assert [path.name for path in (tmp_path / "archive").iterdir() if "run-" in path.name] == []
