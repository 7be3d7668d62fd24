"""`auditor due` tells the retention of the messages a bag keeps verbatim in `data/unreadable/`.

A record with no RFC 8785 form (a client cut a message inside an emoji: a lone surrogate) has no
Merkle leaf; its run judges it and keeps it verbatim. It was left out of the state's message
index, so `due` never listed it: its retention and its holds were never told to the officer, and
`state show` and `state rebuild` did not count it. One run over an export of two such messages
(one of a custodian the example policy holds) beside ordinary ones and a line of garbage."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000
CUT = "1300000000000000002"  # user0003's, cut inside an emoji: default rule, 1 year, delete
HELD_CUT = "1300000000000000004"  # user0007's (hold matter-2026-017), cut too
AFTER = "2027-12-01"  # every default retention of November 2026 has ended


def message(n: int, sender: str, text: str) -> str:
    return json.dumps(
        {
            "msg_id": str(1300000000000000001 + n),
            "timestamp": NOV_1 + n * 1000,
            "direction": "outgoing",
            "to": "user0001",
            "from": sender,
            "chat_type": "chat",
            "payload": {"bodies": [{"type": "txt", "msg": text}], "from": sender},
        }
    )


def invoke(*args: object, exit_code: int = 0) -> str:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == exit_code, result.output
    return result.output


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(folder, bag, public key) of one run over the export."""
    folder = tmp_path_factory.mktemp("verbatim")
    keys = generate_key_files(folder / "keys", identity="auditor@test")
    lines = [
        message(0, "user0003", "lunch at noon"),
        message(1, "user0003", "see you there \ud83d"),
        message(2, "user0007", "the invoice is ready"),
        message(3, "user0007", "the invoice is ready \ud83d"),
    ]
    export = folder / "export.jsonl"
    export.write_text("".join(line + "\n" for line in ["not a record", *lines]))
    invoke(
        *("run", "--from", export, "--policies", example_policy()),
        *("--key", keys.private_key, "--out", folder / "archive"),
        *("--state", folder / "state.db", "--as-of", "2026-11-02T00:00Z"),
        *("--fail-on", "none", "--quiet"),
    )
    (bag,) = (folder / "archive").glob("run-*")
    return folder, bag, keys.public_key


def due_json(state: Path, *extra: object) -> dict:
    output = invoke("due", "--state", state, "--on", AFTER, "--format", "json", *extra)
    return json.loads(output[output.index("{") :])


def listed(report: dict) -> dict[str, dict]:
    return {entry["msg_id"]: entry for entry in report["messages"]}


def unreadable_file(bag: Path) -> str:
    (path,) = (bag / "data/unreadable").glob("*.txt")
    return f"data/unreadable/{path.name}"


def test_due_lists_a_message_kept_verbatim_with_its_bag_and_line(chain):
    folder, bag, _key = chain
    entry = listed(due_json(folder / "state.db"))[CUT]
    assert entry["verdict"] == "delete"
    assert entry["rule"] == "default"
    assert entry["retain_until"] == "2027-11-01T00:00:01Z"
    assert entry["bag"] == bag.name
    assert entry["seq"] is None  # no Merkle leaf
    # line 1 is the garbage served before it
    assert entry["kept_verbatim"] == f"{unreadable_file(bag)}:2"


def test_a_held_sender_s_message_kept_verbatim_is_listed_as_held(chain):
    folder, bag, _key = chain
    report = due_json(folder / "state.db")
    entry = listed(report)[HELD_CUT]
    assert (entry["verdict"], entry["rule"]) == ("hold", "matter-2026-017")
    assert entry["kept_verbatim"] == f"{unreadable_file(bag)}:3"
    # the ordinary messages are as before: nothing kept verbatim
    ordinary = listed(report)["1300000000000000001"]
    assert ordinary["kept_verbatim"] is None and ordinary["seq"] == 0


def test_the_table_says_the_message_is_kept_verbatim_and_where(chain):
    folder, bag, _key = chain
    output = invoke("due", "--state", folder / "state.db", "--on", AFTER)
    (line,) = [line for line in output.splitlines() if line.startswith(f"delete        {CUT}")]
    assert f"{bag.name} (kept verbatim: line 2 of {unreadable_file(bag)}, no leaf)" in line


def test_a_hold_added_since_covers_a_message_kept_verbatim_with_the_current_policy(chain, tmp_path):
    folder, bag, _key = chain
    current = tmp_path / "current.yaml"
    current.write_text(
        example_policy()
        .read_text()
        .replace("participant: [user0007, user0042]", "participant: [user0007, user0003]")
    )
    report = due_json(folder / "state.db", "--policy", current, "--out", folder / "archive")
    entry = listed(report)[CUT]
    assert (entry["verdict"], entry["rule"]) == ("hold", "matter-2026-017")
    assert entry["kept_verbatim"] == f"{unreadable_file(bag)}:2"


def test_state_show_counts_the_messages_kept_verbatim(chain):
    folder, _bag, _key = chain
    view = json.loads(invoke("state", "show", "--state", folder / "state.db", "--format", "json"))
    assert (view["messages"], view["verbatim"]) == (2, 2)
    table = invoke("state", "show", "--state", folder / "state.db")
    assert "2 message(s), 0 without a msg_id, 2 kept verbatim (no leaf)" in table


def test_state_rebuild_indexes_the_messages_kept_verbatim_as_the_run_did(chain, tmp_path):
    folder, _bag, key = chain
    rebuilt = tmp_path / "rebuilt.db"
    output = invoke(
        *("state", "rebuild", "--out", folder / "archive", "--state", rebuilt, "--pubkey", key)
    )
    assert "2 kept verbatim" in output
    assert due_json(rebuilt)["messages"] == due_json(folder / "state.db")["messages"]


def test_a_state_without_the_verbatim_table_still_reads(chain, tmp_path):
    """A state written before this table (by main on 2026-11-29) lists what its index holds."""
    folder, _bag, _key = chain
    older = tmp_path / "older.db"
    older.write_bytes((folder / "state.db").read_bytes())
    with closing(sqlite3.connect(older)) as db:
        db.execute("DROP TABLE verbatim_messages")
        db.commit()
    assert CUT not in listed(due_json(older))
    assert (
        json.loads(invoke("state", "show", "--state", older, "--format", "json"))["verbatim"] == 0
    )


def test_prune_forgets_a_message_kept_verbatim_only_once_its_deletion_is_carried_out(
    chain, tmp_path
):
    """As for the index's messages: `due` keeps listing it until the officer's listing says
    its deletion was carried out, and a held one stays."""
    folder, _bag, _key = chain
    state = tmp_path / "state.db"
    state.write_bytes((folder / "state.db").read_bytes())
    listing = tmp_path / "acted-on.json"
    listing.write_text(json.dumps(due_json(state)))
    prune = ("state", "prune", "--state", state, "--before", "2026-12-01", "--on", AFTER)
    invoke(*prune)
    assert CUT in listed(due_json(state))
    invoke(*prune, "--carried-out", listing)
    after = listed(due_json(state))
    assert CUT not in after and after[HELD_CUT]["verdict"] == "hold"


def test_due_policy_lists_a_changed_verbatim_line_as_unchecked_never_as_due(chain, tmp_path):
    """The line read again must be the one its run indexed (its SHA-256): an edited line is not
    judged, and the message is `unchecked`, exit 1, as a changed archived line is."""
    folder, bag, _key = chain
    archive = tmp_path / "archive"
    shutil.copytree(folder / "archive", archive)
    kept = archive / bag.name / unreadable_file(bag)
    lines = kept.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"see you", b"see them")
    kept.write_bytes(b"".join(lines))
    current = tmp_path / "current.yaml"
    current.write_text(example_policy().read_text())
    output = invoke(
        *("due", "--state", folder / "state.db", "--on", AFTER, "--format", "json"),
        *("--policy", current, "--out", archive),
        exit_code=1,
    )
    report = json.loads(output[output.index("{") :])
    assert listed(report)[CUT]["verdict"] == "unchecked"
    assert report["policy_holds"]["unchecked_why"] == {"changed": 1}


def test_a_hold_added_since_holds_a_verbatim_message_whose_retention_still_runs(chain, tmp_path):
    """A run that did not apply a hold now open (`due_holds.runs_without`) has its kept messages
    read again: one kept verbatim too, or it would surface only as due once its retention ended."""
    folder, _bag, _key = chain
    current = tmp_path / "current.yaml"
    current.write_text(
        example_policy()
        .read_text()
        .replace("participant: [user0007, user0042]", "participant: [user0007, user0003]")
    )
    output = invoke(
        *("due", "--state", folder / "state.db", "--on", "2027-01-01", "--format", "json"),
        *("--policy", current, "--out", folder / "archive"),
    )
    entry = listed(json.loads(output[output.index("{") :]))[CUT]
    assert (entry["verdict"], entry["retain_until"]) == ("hold", "2027-11-01T00:00:01Z")


def test_a_hold_beginning_after_the_run_holds_its_verbatim_message_in_due(tmp_path):
    """As `due_holds` pins for an archived message: the index stores a hold not yet begun at
    the reference time as holding already, never as due for deletion once it has begun."""
    keys = generate_key_files(tmp_path / "keys", identity="auditor@test")
    policy = tmp_path / "later.yaml"
    policy.write_text(
        example_policy().read_text().replace("starts: 2026-10-15", "starts: 2026-12-01")
    )
    export = tmp_path / "export.jsonl"
    export.write_text(message(3, "user0007", "the invoice is ready \ud83d") + "\n")
    invoke(
        *("run", "--from", export, "--policies", policy, "--key", keys.private_key),
        *("--out", tmp_path / "archive", "--state", tmp_path / "state.db"),
        *("--as-of", "2026-11-02T00:00Z", "--fail-on", "none", "--quiet"),
    )
    entry = listed(due_json(tmp_path / "state.db"))[HELD_CUT]
    assert (entry["verdict"], entry["rule"]) == ("hold", "matter-2026-017")
