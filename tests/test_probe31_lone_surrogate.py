"""A record holding a lone surrogate (a JavaScript client that cut a message inside an emoji
sends `"\\ud83d"`) is kept verbatim in `data/unreadable/`, having no RFC 8785 form; it is still a
message, so the run's policies must judge it: a custodian's message under a legal hold is held,
and a keyword in it is found, as `auditor scan` finds it (probe31; stages.py, xhour31's area)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000
CUT = "1300000000000000002"


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    """The bag of a run over two messages of custodian user0007 (example policy's hold
    matter-2026-017), the second cut inside an emoji, and a line that is no record."""
    folder = tmp_path_factory.mktemp("surrogate")
    keys = generate_key_files(folder / "keys", identity="auditor@test")
    lines = [
        json.dumps(
            {
                "msg_id": str(1300000000000000001 + n),
                "timestamp": NOV_1 + n * 1000,
                "direction": "outgoing",
                "to": "user0001",
                "from": "user0007",
                "chat_type": "chat",
                "payload": {"bodies": [{"type": "txt", "msg": text}], "from": "user0007"},
            }
        )
        for n, text in enumerate(["the kickback is ready", "the kickback is ready \ud83d"])
    ]
    export = folder / "export.jsonl"
    export.write_text("".join(line + "\n" for line in [*lines, "not a record"]))
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
    (bag,) = (folder / "archive").glob("run-*")
    return bag


@pytest.fixture(scope="module")
def findings(bag) -> list[dict]:
    return [json.loads(line) for line in (bag / "data/findings.jsonl").read_text().splitlines()]


def rules_about(findings: list[dict], msg_id: str) -> set[str]:
    return {finding["rule"] for finding in findings if finding.get("msg_id") == msg_id}


def test_the_whole_message_is_held_and_its_keyword_found(findings):
    assert {"matter-2026-017", "en-misconduct"} <= rules_about(findings, "1300000000000000001")


def test_the_message_cut_inside_an_emoji_is_held_and_its_keyword_found(findings):
    assert {"not-canonical-json", "matter-2026-017", "en-misconduct"} <= rules_about(findings, CUT)


def test_a_scan_of_the_bag_judges_the_message_it_kept_verbatim_and_tells_the_other_line(bag):
    """`scan BAG` read `data/records/` alone, so a new policy applied to a bag missed the
    messages kept in `data/unreadable/`: they are read there as plain JSON lines."""
    result = CliRunner().invoke(
        main,
        ["scan", str(bag), "--policies", str(example_policy()), "--findings", "-"],
    )
    assert result.exit_code == 1, result.output
    scanned = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {"matter-2026-017", "en-misconduct"} <= rules_about(scanned, CUT)
    (garbage,) = [finding for finding in scanned if finding["category"] == "parse"]
    assert (
        garbage["details"]["file"].endswith(".txt") and "unreadable" in garbage["details"]["file"]
    )
