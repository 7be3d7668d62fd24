"""`auditor validate`: a table per message type, findings as JSON lines, exit 0 / 1 / 2."""

import gzip
import json
from collections import Counter

import orjson
import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.emulator.dataset import SyntheticHistory
from auditor.records import message_type
from auditor.validation import TypeCount, validate_files

CLEAN = list(SyntheticHistory(messages=60, defect_rate=0.0, seed=3))


def write_jsonl(path, records, extra_lines=()):
    lines = [orjson.dumps(record) for record in records] + [line.encode() for line in extra_lines]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def run(*args):
    return CliRunner().invoke(main, ["validate", *map(str, args)])


@pytest.fixture
def pulled(tmp_path):
    """A folder as `auditor pull` leaves it: one file per hour plus its own metadata."""
    folder = tmp_path / "pulled"
    folder.mkdir()
    broken = dict(CLEAN[1], chat_type="privatechat")
    write_jsonl(folder / "2026110100.jsonl", [CLEAN[0], broken])
    write_jsonl(folder / "2026110101.jsonl", [CLEAN[2]], extra_lines=['{"msg_id": '])
    (folder / "checkpoint.json").write_text(json.dumps({"format": "auditor-pull/1"}))
    write_jsonl(folder / "conflicts.jsonl", [{"msg_id": "x"}])
    return folder


def test_all_valid_records_exit_0_with_a_table_per_message_type(tmp_path):
    path = write_jsonl(tmp_path / "2026110100.jsonl", CLEAN)
    result = run(path)
    assert result.exit_code == 0, result.output
    counts = Counter(message_type(record) for record in CLEAN)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["type", "records", "valid", "invalid"]
    assert {line.split()[0]: line.split()[1:] for line in lines[1:-1]} == {
        kind: [str(count), str(count), "0"] for kind, count in counts.items()
    }
    assert lines[-1].split() == ["total", "60", "60", "0"]


def test_a_pulled_folder_with_a_broken_record_and_a_bad_line_exits_1_and_writes_findings(
    pulled, tmp_path
):
    out = tmp_path / "findings.jsonl"
    result = run(pulled, "--findings", out)
    assert result.exit_code == 1, result.output
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(f["category"], f["pointer"]) for f in findings] == [
        ("schema", "/chat_type"),
        ("parse", None),
    ]
    assert findings[1]["details"] == {"file": str(pulled / "2026110101.jsonl"), "line": 2}
    assert result.stdout.splitlines()[-2].split() == ["total", "3", "2", "1"]
    assert result.stdout.splitlines()[-1] == (
        "1 line(s) were not JSON records (see the parse findings)"
    )


def test_findings_to_stdout_move_the_table_to_stderr(pulled):
    result = run(pulled, "--findings", "-")
    assert result.exit_code == 1
    assert [json.loads(line)["category"] for line in result.stdout.splitlines()] == [
        "schema",
        "parse",
    ]
    assert "total" in result.stderr


def test_without_findings_file_the_table_says_how_many_findings_there_are(pulled):
    result = run(pulled)
    assert result.stderr == "2 finding(s); write them with --findings FILE\n"


def test_gzip_files_are_read_and_the_strict_profile_flags_loose_encodings(tmp_path):
    loose = dict(CLEAN[0], timestamp=str(CLEAN[0]["timestamp"]))
    path = tmp_path / "2026110100.gz"
    path.write_bytes(gzip.compress(orjson.dumps(loose) + b"\n"))
    assert (run(path).exit_code, run(path, "--profile", "strict").exit_code) == (0, 1)


def test_a_missing_file_exits_2_with_one_line_naming_it(tmp_path):
    result = run(tmp_path / "nope.jsonl")
    assert (result.exit_code, result.stderr) == (
        2,
        f"auditor: error: {tmp_path / 'nope.jsonl'}: no such file or folder\n",
    )


def test_an_unreadable_gzip_exits_2_with_one_line_naming_it(tmp_path):
    path = tmp_path / "2026110100.gz"
    path.write_bytes(gzip.compress(orjson.dumps(CLEAN[0]) * 50)[:60])
    result = run(path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"auditor: error: {path}: corrupt gzip data")
    assert result.stderr.count("\n") == 1


def test_validate_files_counts_records_per_type_and_passes_each_finding_on(pulled):
    found = []
    summary = validate_files([pulled], on_finding=found.append)
    expected: dict[str, TypeCount] = {}
    for record, valid in ((CLEAN[0], 1), (CLEAN[1], 0), (CLEAN[2], 1)):
        count = expected.get(message_type(record), TypeCount())
        expected[message_type(record)] = TypeCount(count.records + 1, count.valid + valid)
    assert summary.by_type == dict(sorted(expected.items()))
    assert (summary.files, summary.unparsed, summary.findings, summary.invalid) == (2, 1, 2, 1)
    assert [finding.category for finding in found] == ["schema", "parse"]
    assert not summary.clean


def test_a_findings_file_the_system_refuses_is_one_line_and_exit_2(tmp_path):
    path = write_jsonl(tmp_path / "2026110100.jsonl", CLEAN)
    (tmp_path / "a-file").write_text("")

    result = run(path, "--findings", tmp_path / "a-file" / "findings.jsonl")

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"auditor: error: {tmp_path / 'a-file' / 'findings.jsonl'}: cannot write findings "
        "(Not a directory)\n"
    )
