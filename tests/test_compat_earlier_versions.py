"""Bags and state databases written by earlier versions, read and continued by today's code; and
the version marks (bag-info's Auditor-Bag-Format, the state's user_version) that let a later
format be refused instead of misread.

The fixture (tests/fixtures/compat/, see its README) is a chain of two runs and its state that
commit d57b3d3, the first session's auditor, wrote: bags without data/policy.yaml and a state
without the `unidentified` table or the message index's later columns."""

import base64
import hashlib
import json
import sqlite3
import tarfile
from contextlib import closing
from pathlib import Path

import pytest
import run_support
from click.testing import CliRunner
from test_archive_support import build_bag, recompute_manifests

from auditor.archive import layout
from auditor.archive.bag import partial_path_for
from auditor.archive.keys import load_signing_key
from auditor.archive.signing import sign
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import InputError
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit
from auditor.resources import example_policy
from auditor.state import State
from auditor.state_schema import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures" / "compat"
SECRET = "compat-test-secret"
INDEX = (
    "SELECT msg_id, content_hash, timestamp_ms, retain_until_ms, first_run FROM messages"
    " ORDER BY msg_id, content_hash"
)


@pytest.fixture
def old(tmp_path):
    """A fresh copy of the d57b3d3 chain: archive/, state.db, policies.yaml, test-keys/."""
    with tarfile.open(FIXTURES / "d57b3d3.tar.gz") as archive:
        # the "data" filter where this Python has it (3.11.4 on), as 3.14 will require
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(tmp_path, **safe)
    return tmp_path


def auditor(*args: str):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_old_chain_verifies_and_proves(old):
    pubkey = old / "test-keys" / "auditor-signing-key.pub.pem"
    result = auditor("verify-chain", old / "archive", "--pubkey", pubkey)
    assert result.exit_code == 0, result.output
    assert "intact chain of runs 1 to 2" in result.output


def test_state_show_reads_a_state_of_the_first_version(old):
    """It lacks the `unidentified` table: it was called damaged (exit 2) and sent to a rebuild
    that could not read its bags either."""
    before = (old / "state.db").read_bytes()
    result = auditor("state", "show", "--state", old / "state.db")
    assert result.exit_code == 0, result.output
    assert "0 without a msg_id" in result.output
    assert "run-000002-2026110102-2026110104" in result.output
    assert (old / "state.db").read_bytes() == before


def test_rebuild_takes_the_policy_that_old_bags_only_name(old, tmp_path):
    pubkey = old / "test-keys" / "auditor-signing-key.pub.pem"
    digest = hashlib.sha256((old / "policies.yaml").read_bytes()).hexdigest()
    refused = auditor(
        "state", "rebuild", "--out", old / "archive", "--state", tmp_path / "a.db",
        "--pubkey", pubkey,
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "holds no data/policy.yaml" in refused.output and digest in refused.output
    assert not (tmp_path / "a.db").exists()
    rebuilt = auditor(
        "state", "rebuild", "--out", old / "archive", "--state", tmp_path / "b.db",
        "--pubkey", pubkey, "--policy", old / "policies.yaml",
    )  # fmt: skip
    assert rebuilt.exit_code == 0, rebuilt.output
    with (
        closing(sqlite3.connect(old / "state.db")) as db,
        closing(sqlite3.connect(tmp_path / "b.db")) as new,
    ):
        assert new.execute(INDEX).fetchall() == db.execute(INDEX).fetchall()
        assert len(db.execute(INDEX).fetchall()) == 16


def test_rebuild_refuses_a_policy_other_than_the_named_one(old, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_bytes((old / "policies.yaml").read_bytes() + b"\n")
    result = auditor(
        "state", "rebuild", "--out", old / "archive", "--state", tmp_path / "c.db",
        "--pubkey", old / "test-keys" / "auditor-signing-key.pub.pem", "--policy", other,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "give the policy file it applied" in result.output


def run_today(old: Path):
    """Today's incremental run on the first version's state and folder, to hour 6."""
    options = EmulatorOptions(messages=96, days=1, client_secret=SECRET)
    keys = type("Keys", (), {"private_key": old / "test-keys" / "auditor-signing-key.pem"})
    with run_emulator(options) as emulator:
        settings = run_support.settings_for(
            emulator, keys, old, SECRET, policy_path=old / "policies.yaml",
            since_ms=None, until_ms=DEFAULT_START_MS + 6 * HOUR_MS, incremental=True,
        )  # fmt: skip
        return run_audit(settings)


def test_incremental_run_continues_the_old_chain(old):
    """Today's run on the first version's state and folder: run 3, linked to run 2's bag, from
    where run 2 ended, nothing archived twice; the state is upgraded and marked."""
    outcome = run_today(old)
    assert outcome.sequence == 3
    assert outcome.since_ms == DEFAULT_START_MS + 4 * HOUR_MS
    third = old / "archive" / outcome.bag_path.name
    head = hashlib.sha256(
        (old / "archive/run-000002-2026110102-2026110104" / layout.TAGMANIFEST).read_bytes()
    ).hexdigest()
    assert f"{layout.PREVIOUS}: {head}\n" in (third / layout.BAG_INFO).read_text()
    pubkey = old / "test-keys" / "auditor-signing-key.pub.pem"
    result = auditor("verify-chain", old / "archive", "--pubkey", pubkey)
    assert result.exit_code == 0 and "intact chain of runs 1 to 3" in result.output
    assert user_version(old / "state.db") == SCHEMA_VERSION
    assert auditor("state", "show", "--state", old / "state.db").exit_code == 0


def test_a_bag_says_its_format(keys, tmp_path):
    bag = build_bag(tmp_path, keys[1]).path
    lines = (bag / layout.BAG_INFO).read_text().splitlines()
    assert lines[1] == f"{layout.FORMAT}: {layout.FORMAT_VERSION}"
    assert lines[0].startswith(layout.SOFTWARE)


def resign_with_format(bag: Path, key_path: Path, value: str | None) -> None:
    """bag-info with the format label set to `value` (removed when None), signed again."""
    info = [
        line
        for line in (bag / layout.BAG_INFO).read_text().splitlines(keepends=True)
        if not line.startswith(f"{layout.FORMAT}:")
    ]
    if value is not None:
        info.insert(1, f"{layout.FORMAT}: {value}\n")
    (bag / layout.BAG_INFO).write_text("".join(info))
    recompute_manifests(bag, update_root=False)
    tagmanifest = (bag / layout.TAGMANIFEST).read_bytes()
    signatures = sign(load_signing_key(key_path), tagmanifest, layout.DEFAULT_NAMESPACE)
    (bag / layout.SIGNATURE).write_bytes(signatures.raw)
    (bag / layout.SSH_SIGNATURE).write_text(signatures.ssh)


@pytest.mark.parametrize("value", ["2", "1.1"])
def test_a_newer_bag_format_is_refused_in_one_line(keys, tmp_path, value):
    bag = build_bag(tmp_path, keys[1]).path
    resign_with_format(bag, keys[0].private_key, value)
    for command in (("verify", bag), ("verify-chain", tmp_path)):
        result = auditor(*command, "--pubkey", keys[0].public_key)
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert "written in bag format" in result.output and value in result.output
        assert "reads formats up to 1" in result.output


def test_prove_and_verify_proof_refuse_a_newer_bag_format(keys, tmp_path):
    bag = build_bag(tmp_path, keys[1]).path
    msg_id = json.loads(next(iter(sorted((bag / layout.RECORDS).glob("*.jsonl")))).read_text()
                        .splitlines()[0])["record"]["msg_id"]  # fmt: skip
    proved = auditor("prove", bag, msg_id, "-o", tmp_path / "proof.json")
    assert proved.exit_code == 0, proved.output
    proof = json.loads((tmp_path / "proof.json").read_text())
    resign_with_format(bag, keys[0].private_key, "2")
    proof["bag_info"] = (bag / layout.BAG_INFO).read_text()
    proof["tagmanifest"] = (bag / layout.TAGMANIFEST).read_text()
    proof["signature"] = base64.b64encode((bag / layout.SIGNATURE).read_bytes()).decode()
    proof["ssh_signature"] = (bag / layout.SSH_SIGNATURE).read_text()
    (tmp_path / "newer.json").write_text(json.dumps(proof))
    for command in (
        ("prove", bag, msg_id, "-o", tmp_path / "again.json"),
        ("verify-proof", tmp_path / "newer.json", "--pubkey", keys[0].public_key),
    ):
        result = auditor(*command)
        assert result.exit_code == 2, (command, result.output)
        assert "written in bag format 2, newer than this auditor" in result.output
    assert not (tmp_path / "again.json").exists()


def test_report_and_scan_refuse_a_newer_bag_format_in_one_line(keys, tmp_path):
    """They read a bag's records without verifying it, and read a format-2 bag as format 1."""
    window = {"Window-Until": "2026-11-02T00:00:00Z"}  # which `report` needs
    bag = build_bag(tmp_path / "runs", keys[1], info=window).path
    resign_with_format(bag, keys[0].private_key, "2")
    record_file = sorted((bag / layout.RECORDS).glob("*.jsonl"))[0]
    for command in (
        ("report", bag, "-o", tmp_path / "report"),
        ("scan", "--policies", example_policy(), bag),
        ("scan", "--policies", example_policy(), tmp_path / "runs"),
        ("scan", "--policies", example_policy(), record_file),
    ):
        result = auditor(*command)
        assert result.exit_code == 2, (command, result.output[-300:])
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert f"{bag}: written in bag format 2, newer than this auditor" in result.output
    assert not (tmp_path / "report").exists()


def test_due_policy_refuses_a_newer_bag_format_in_one_line(old):
    """due --policy reads the indexed messages from their bags to apply today's holds."""
    bags = sorted(path.parent for path in (old / "archive").glob(f"*/{layout.BAG_INFO}"))
    for bag in bags:
        info = bag / layout.BAG_INFO
        info.write_text(info.read_text() + f"{layout.FORMAT}: 2\n")
    result = auditor(
        "due", "--state", old / "state.db", "--policy", old / "policies.yaml",
        "--out", old / "archive", "--on", "2030-01-01",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "written in bag format 2, newer than this auditor" in result.output


def test_a_format_label_raised_by_hand_is_a_change_not_a_newer_format(keys, tmp_path):
    """The label is believed once the signature covers it: raised without signing again, it is
    a change to a signed file (exit 1), never "newer format, nothing was checked" (exit 2)."""
    bag = build_bag(tmp_path, keys[1]).path
    msg_id = json.loads(next(iter(sorted((bag / layout.RECORDS).glob("*.jsonl")))).read_text()
                        .splitlines()[0])["record"]["msg_id"]  # fmt: skip
    assert auditor("prove", bag, msg_id, "-o", tmp_path / "proof.json").exit_code == 0
    proof = json.loads((tmp_path / "proof.json").read_text())
    raised = f"{layout.FORMAT}: 2\n"
    proof["bag_info"] = proof["bag_info"].replace(f"{layout.FORMAT}: 1\n", raised)
    (tmp_path / "raised.json").write_text(json.dumps(proof))
    info = bag / layout.BAG_INFO
    info.write_text(info.read_text().replace(f"{layout.FORMAT}: 1\n", raised))

    for command in (
        ("verify", bag, "--pubkey", keys[0].public_key),
        ("verify-proof", tmp_path / "raised.json", "--pubkey", keys[0].public_key),
    ):
        result = auditor(*command)
        assert result.exit_code == 1, (command, result.output)
        assert "newer than this auditor" not in result.output
        assert layout.BAG_INFO in result.output


def test_a_bag_without_the_format_label_is_read_as_today(keys, tmp_path):
    bag = build_bag(tmp_path, keys[1]).path
    resign_with_format(bag, keys[0].private_key, None)
    result = auditor("verify", bag, "--pubkey", keys[0].public_key)
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


def newer_state(path: Path) -> Path:
    State(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    return path


def test_a_newer_state_is_refused_in_one_line(tmp_path):
    state = newer_state(tmp_path / "state.db")
    before = state.read_bytes()
    for command in (
        ("state", "show", "--state", state),
        ("due", "--state", state),
        ("state", "prune", "--state", state, "--before", "2026-11-01T00:00Z"),
    ):
        result = auditor(*command)
        assert result.exit_code == 2, (command, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert f"schema version {SCHEMA_VERSION + 1}, written by a later auditor" in result.output
    assert state.read_bytes() == before


def test_an_older_state_is_upgraded_and_marked_when_written(old):
    assert user_version(old / "state.db") == 0
    result = auditor("state", "prune", "--state", old / "state.db", "--before", "2026-11-01T01:00Z")
    assert result.exit_code == 0, result.output
    assert user_version(old / "state.db") == SCHEMA_VERSION
    with closing(sqlite3.connect(old / "state.db")) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        paths = [row[0] for row in db.execute("SELECT bag_path FROM runs")]
    assert {"seq", "hour_ms", "rule", "action"} <= columns
    assert "unidentified" in tables
    assert all("/" not in path for path in paths)


def test_a_run_refuses_to_chain_onto_a_newer_bag_format(old):
    """The chain head is a bag a newer version wrote: a run would link a format-1 bag to a
    format it does not understand and read its bag-info as format 1. Refused in one line before
    the run opens its state or writes a bag."""
    head = old / "archive" / "run-000002-2026110102-2026110104"
    resign_with_format(head, old / "test-keys" / "auditor-signing-key.pem", "2")
    state_before = (old / "state.db").read_bytes()
    bags_before = sorted(path.name for path in (old / "archive").iterdir())
    with pytest.raises(InputError) as refused:
        run_today(old)
    assert str(refused.value) == (
        f"{head}: written in bag format 2, newer than this auditor, which reads formats up to 1 "
        f"({layout.FORMAT} in {layout.BAG_INFO}): chain a run onto it with the auditor that "
        "wrote it (easemob-auditor 0.1.0) or a later one; nothing was read"
    )
    assert (old / "state.db").read_bytes() == state_before
    assert sorted(path.name for path in (old / "archive").iterdir()) == bags_before


def test_a_run_refuses_to_publish_a_newer_format_bag_a_killed_run_committed(old):
    """A newer version's run killed between its commit and the rename of its bag leaves the
    head unpublished: the next run published it, and chained onto it, unread."""
    head = old / "archive" / "run-000002-2026110102-2026110104"
    resign_with_format(head, old / "test-keys" / "auditor-signing-key.pem", "2")
    partial = partial_path_for(head.parent, head.name)
    head.rename(partial)
    with pytest.raises(InputError, match="written in bag format 2, newer than this auditor"):
        run_today(old)
    assert partial.is_dir() and not head.exists()
    assert sorted(
        path.name for path in (old / "archive").iterdir() if path.name.startswith("run-")
    ) == ["run-000001-2026110100-2026110102"]


def test_a_policy_copy_taken_from_a_newer_bag_is_refused_in_one_line(keys, tmp_path):
    """`scan --policies BAG/data/policy.yaml` (or `run --policies` of it) read a newer bag's
    policy copy and its term files as this version's, without a word."""
    policy = example_policy().read_bytes()
    bag = build_bag(tmp_path / "runs", keys[1], files={"policy.yaml": policy}).path
    records = tmp_path / "records.jsonl"
    records.write_text('{"msg_id": "1", "timestamp": 1700000000000}\n')
    scan = ("scan", "--policies", bag / layout.POLICY, records, "--fail-on", "none")
    assert auditor(*scan).exit_code == 0
    resign_with_format(bag, keys[0].private_key, "2")

    result = auditor(*scan)

    assert result.exit_code == 2, result.output
    assert result.output == (
        f"auditor: error: {bag}: written in bag format 2, newer than this auditor, which reads "
        f"formats up to 1 ({layout.FORMAT} in {layout.BAG_INFO}): take the policy from it with the "
        "auditor that wrote it (easemob-auditor 0.1.0) or a later one; nothing was read\n"
    )
