"""What a reviewer reads in the report against what the bag holds, for a run over served data
of which some is no record (probe31): every number on the page is one the bag bears out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    """A run over one hour served as an export: two records, a line that is no JSON, a number
    beyond a double, and a record holding a lone surrogate (which has no RFC 8785 form)."""
    folder = tmp_path_factory.mktemp("unreadable")
    keys = generate_key_files(folder / "keys", identity="auditor@test")
    records = [
        {
            "msg_id": str(1300000000000000001 + n),
            "timestamp": NOV_1 + n * 1000,
            "direction": "outgoing",
            "to": "user0001",
            "from": "user0002",
            "chat_type": "chat",
            "payload": {"bodies": [{"type": "txt", "msg": "hello"}], "from": "user0002"},
        }
        for n in range(2)
    ]
    lines = [json.dumps(record) for record in records]
    lines.append('=HYPERLINK("http://example.invalid") not json')
    lines.append(f'{{"msg_id": "1300000000000000009", "timestamp": {NOV_1}, "n": 1e400}}')
    lines.append(json.dumps({**records[0], "msg_id": "1300000000000000010", "to": "\ud800"}))
    export = folder / "export.jsonl"
    export.write_text("".join(line + "\n" for line in lines))
    result = CliRunner().invoke(
        main,
        [
            *("run", "--from", str(export), "--policies", str(example_policy())),
            *("--key", str(keys.private_key), "--out", str(folder / "archive")),
            *("--state", str(folder / "state.db"), "--as-of", "2026-11-02T00:00Z"),
            *("--fail-on", "none", "--quiet"),
        ],
    )
    assert result.exit_code == 0, result.output
    (found,) = (folder / "archive").glob("run-*")
    return found


def unreadable_lines(bag: Path) -> int:
    return sum(
        len(path.read_bytes().splitlines()) for path in (bag / "data/unreadable").glob("*.txt")
    )


def test_the_summary_counts_every_line_the_bag_keeps_as_unreadable(bag):
    summary = json.loads((bag / "data/report/summary.json").read_text())
    assert unreadable_lines(bag) == 3
    assert summary["records"]["unparseable_lines"] == 3


def test_the_page_shows_the_unreadable_lines_the_bag_keeps(bag):
    page = (bag / "data/report/report.html").read_text()
    shown = re.search(r"Unreadable lines</th><td>([0-9,]+)</td>", page)
    assert shown is not None and shown.group(1) == "3"


def test_prove_of_a_message_kept_verbatim_says_where_the_bag_keeps_it(bag, tmp_path):
    """The report lists the lone-surrogate message with a finding; `prove` said only "no record
    with msg_id", as for a message the bag never held."""
    proof = str(tmp_path / "proof.json")
    result = CliRunner().invoke(main, ["prove", str(bag), "1300000000000000010", "-o", proof])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "no RFC 8785 form" in line and "line 3 of data/unreadable/2026110100.txt" in line
    assert "sha256sum -c manifest-sha256.txt" in line


def test_prove_of_a_message_the_bag_never_held_says_so(bag, tmp_path):
    proof = str(tmp_path / "proof.json")
    result = CliRunner().invoke(main, ["prove", str(bag), "1300000000000000099", "-o", proof])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().endswith("no record with msg_id 1300000000000000099")
