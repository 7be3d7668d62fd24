"""One partition through the stages: what cannot be archived as RFC 8785 is still kept."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import run_support

import auditor.stages as stages
from auditor.partitions import Partition
from auditor.sources.local import LocalFileSource

HOUR = Partition(1_793_491_200_000)
BIG = 123456789012345678901234
LINES = [
    b'{"msg_id":"1","timestamp":1793491200001,"n":123456789012345678901,"t":"\\ud800",'
    b'"payload":{"bodies":[{"type":"txt","msg":"x"}]}}',
    b'{"msg_id":"3","timestamp":1793491200003,"n":%d,' % BIG
    + b'"payload":{"bodies":[{"type":"txt","msg":"big"}]}}',
]


@pytest.fixture
def processor(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "2026110100.jsonl").write_bytes(b"\n".join(LINES) + b"\n")
    return run_support.stage_processor(tmp_path, monkeypatch, LocalFileSource([tmp_path / "in"]))


def test_a_record_without_an_rfc8785_form_is_kept_verbatim_and_reported(processor, tmp_path):
    outcome = processor.process(HOUR)
    paths = stages.spool_paths(tmp_path / "spool", HOUR, outcome.attempt)

    kept = paths["unreadable"].read_bytes().splitlines()
    findings = [json.loads(line) for line in paths["findings"].read_text().splitlines()]
    assert len(kept) == 1 and json.loads(kept[0])["msg_id"] == "1"
    # still judged as a message: this one lacks what the record schema asks (from, to, ...)
    assert [(f["rule"], f["msg_id"]) for f in findings] == [
        ("not-canonical-json", "1"),
        ("https://schemas.easemob-auditor.dev/record.json", "1"),
    ]
    assert outcome.records == 1


def test_integers_beyond_64_bits_are_archived_exactly(processor, tmp_path):
    attempt = processor.process(HOUR).attempt
    (line,) = (
        stages.spool_paths(tmp_path / "spool", HOUR, attempt)["records"].read_bytes().splitlines()
    )
    assert b'"n":%d' % BIG in line.split(b"\t", 1)[1]


def test_a_checkpoint_without_record_counts_is_redone_not_misread(processor, tmp_path):
    """A spool left by a version before the workers counted records for the report."""
    first = processor.process(HOUR)
    done = stages.checkpoint_path(tmp_path / "spool", HOUR)
    older = json.loads(done.read_bytes())
    del older["counts"]
    done.write_text(json.dumps(older))

    assert stages.read_outcome(tmp_path / "spool", HOUR) is None
    again = processor.process(HOUR)
    assert replace(again, attempt=first.attempt) == first and again.counts["records"] == 1
    assert json.loads(done.read_bytes())["counts"] == json.loads(json.dumps(first.counts))
