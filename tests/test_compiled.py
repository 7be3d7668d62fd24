"""The compiled policy path (setup.py, mypyc) is what runs, and it decides as the source does."""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys

import orjson
import pytest
from compiled_support import ROOT, compiled_sources, extensions_of, module_name

from auditor.archive.canonical import canonical
from auditor.emulator.dataset import SyntheticHistory
from auditor.policies.engine import PolicyEngine
from auditor.policies.loading import load_policy
from auditor.records import sender, timestamp_ms
from auditor.report.csv_rows import SendTimes, row
from auditor.report.facts import archived_facts
from auditor.report.formats.csv import CsvFormat
from auditor.report.model import ReportBuilder
from auditor.report.runinfo import RunInfo
from auditor.resources import example_policy

NOW_MS = 1_796_083_200_000  # 2026-12-01, a month after the synthetic window
RECORDS = 4_000

# Run in a fresh interpreter that imports every listed module from its source, then prints the
# digest of the evaluations of the same records as `digest_of_evaluations` below.
INTERPRETED = """
import importlib, importlib.util, sys
names = dict(arg.split("=", 1) for arg in sys.argv[1:])

class Source:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in names:
            return importlib.util.spec_from_file_location(name, names[name])
        return None

sys.meta_path.insert(0, Source)
sys.path.insert(0, {tests!r})
import test_compiled
for name in names:
    assert importlib.import_module(name).__file__.endswith(".py"), sys.modules[name].__file__
print(test_compiled.{digest})
"""


def digest_of_evaluations(memo_size: int) -> str:
    """sha256 of every verdict and finding the engine gives the synthetic records."""
    engine = PolicyEngine(load_policy(example_policy()), NOW_MS, memo_size=memo_size)
    digest = hashlib.sha256()
    for record in SyntheticHistory(messages=RECORDS):
        until, verdict, found = engine.evaluate(record)
        digest.update(orjson.dumps([until, *verdict, [f.to_dict() for f in found]]))
    return digest.hexdigest()


# Shapes the synthetic history lacks, each taking another branch of `report.facts`.
ODD_RECORDS = [
    {},
    {"payload": "not an object", "from": 7, "timestamp": "1793491200000", "msg_id": 12},
    {"payload": {"bodies": "none"}, "chat_type": 3, "timestamp": True},
    {"payload": {"bodies": [1, {"type": "txt", "subType": "sub_combine"}]}, "msg_id": 5.0},
    {"payload": {"bodies": [{"type": 4}], "from": 2.5}, "timestamp": 1.0e12},
    {"payload": {"bodies": [{"type": ""}], "from": None}, "from": "top", "chat_type": "chat"},
    {"payload": {"bodies": [], "from": ""}, "from": 3.0, "timestamp": -1},
    {"payload": {"bodies": [{"type": "loc"}], "from": ["a"]}, "timestamp": 253_402_300_800_000},
]


def digest_of_facts() -> str:
    """sha256 of the report facts of the synthetic records and of `ODD_RECORDS`."""
    digest = hashlib.sha256()
    for record in [*SyntheticHistory(messages=RECORDS), *ODD_RECORDS]:
        digest.update(orjson.dumps(archived_facts(record, canonical(record))))
    return digest.hexdigest()


# A value of each kind a finding's column may hold, each taking another branch of a CSV cell.
ODD_VALUES = ["", "=1+1", "0042", "3-Mar", "Jan-2026", 'a"b', "x\0y", "é" * 17_000, 7, 10**16]
ODD_VALUES += [-1.5, 1e300, True, None, [1, "a"], {"k": None}]


def digest_of_report() -> str:
    """sha256 of what the report builder makes of the engine's findings over the synthetic
    records (half of them placed by the run, half found by the builder) and of findings whose
    every column holds an odd value: the summary, the CSV's lines and each finding's row."""
    engine = PolicyEngine(load_policy(example_policy()), NOW_MS)
    run = RunInfo(sequence=1, since_ms=0, until_ms=NOW_MS, generated_at=NOW_MS)
    digest = hashlib.sha256()
    with ReportBuilder(run, table_rows=50) as builder:
        for number, record in enumerate(SyntheticHistory(messages=RECORDS)):
            builder.observe_record(record, "p", number)
            for finding in engine.evaluate(record)[2]:
                place = (timestamp_ms(record), sender(record)) if number % 2 else None
                builder.observe_finding(finding, place)
        for value in ODD_VALUES:
            columns = ("msg_id", "category", "rule", "severity", "message", "pointer")
            odd = dict.fromkeys(columns, value) | {"severity": "low", "details": {"x": value}}
            builder.observe_finding(odd, (NOW_MS + 1, value if type(value) is str else None))
        report = builder.snapshot()
        summary = report.summary
        digest.update(orjson.dumps(summary, default=str, option=orjson.OPT_SORT_KEYS))
        for line in CsvFormat._lines(report):
            digest.update(line.encode("utf-8", "surrogatepass"))
        sent = SendTimes(run.timezone())
        for finding, place in zip(report.findings(), report.places(), strict=True):
            digest.update(repr(row(finding, place, sent)).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def test_every_listed_module_runs_as_it_was_installed() -> None:
    """Benchmarks and tests measure what `pip install` ships: the compiled modules, or with
    AUDITOR_PURE_PYTHON the sources, and no compiled module left over from an earlier install."""
    interpreted = bool(os.environ.get("AUDITOR_PURE_PYTHON"))
    for source in compiled_sources():
        module = importlib.import_module(module_name(source))
        if interpreted:
            assert module.__file__ == str(source)
        else:
            assert extensions_of(source), f"{source.name} was not compiled; run make"
            assert module.__file__ in {str(path) for path in extensions_of(source)}


def interpreted(digest: str) -> str:
    """`digest` (an expression of this module) computed with every compiled module's source."""
    sources = [f"{module_name(source)}={source}" for source in compiled_sources()]
    script = INTERPRETED.format(tests=str(ROOT / "tests"), digest=digest)
    return subprocess.run(
        [sys.executable, "-c", script, *sources],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()


@pytest.mark.parametrize("memo_size", [0, 32_768])
def test_compiled_and_interpreted_engines_give_the_same_evaluations(memo_size: int) -> None:
    assert interpreted(f"digest_of_evaluations({memo_size})") == digest_of_evaluations(memo_size)


def test_compiled_and_interpreted_report_facts_agree() -> None:
    assert interpreted("digest_of_facts()") == digest_of_facts()


def test_compiled_and_interpreted_report_builders_agree() -> None:
    assert interpreted("digest_of_report()") == digest_of_report()
