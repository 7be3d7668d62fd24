"""probe32: records a legacy hour query served from other hours (a server that ignores the
query's bounds) were a high finding blaming the hour files' zone ('the source may name its
hours in another zone than hour_timezone says'): a legacy query asks by UTC milliseconds and has
no zone, so the advice sent the operator to the wrong setting."""

import dataclasses

import orjson
import run_support
from run_support import emulator_client

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import Partition
from auditor.sources.legacy import LegacyQuerySource
from auditor.sources.settings import ConnectionSettings, LocalSettings, strays_cause
from auditor.stages import mostly_strays_in_run, spool_paths


def test_strays_a_legacy_query_served_blame_the_server_not_the_hour_timezone(tmp_path, monkeypatch):
    hour = Partition(DEFAULT_START_MS)
    with run_emulator(EmulatorOptions(messages=6_000, legacy_hostile="unbounded=1")) as emu:
        client = emulator_client(emu)
        source = LegacyQuerySource(client, limit=1000)
        processor = run_support.stage_processor(tmp_path, monkeypatch, source)
        outcome = processor.process(hour)
        processor.close()

    findings_file = spool_paths(tmp_path / "spool", hour, outcome.attempt)["findings"]
    findings = [orjson.loads(line) for line in findings_file.read_bytes().splitlines()]
    (strays,) = [f for f in findings if f["rule"] == "served-in-another-hour"]
    assert strays["severity"] == "high"
    assert "zone" not in strays["message"]
    assert "ignores the query's timestamp bounds" in strays["message"]


def test_the_whole_runs_strays_finding_names_the_cause_of_the_api_the_run_read():
    """`mostly_strays_in_run`, the coordinator's judgement over hours of few messages each."""
    hourfiles = ConnectionSettings("http://127.0.0.1:9", "o", "a", "c", "s")
    legacy = dataclasses.replace(hourfiles, api="legacy")
    pulled_by_legacy = LocalSettings(**{**dataclasses.asdict(legacy), "folder": "/x"})

    said = {
        name: mostly_strays_in_run(90, 100, strays_cause(settings)).message
        for name, settings in [("h", hourfiles), ("l", legacy), ("p", pulled_by_legacy)]
    }

    assert "ignores the query's timestamp bounds" in said["l"] and "zone" not in said["l"]
    assert "another zone than hour_timezone" in said["h"] and said["p"] == said["h"]
