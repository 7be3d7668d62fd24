"""`auditor due` lists a message once, however many versions of it the chain archived (probe 23
#3): a message changed at the source is archived again by a later run (`--recheck`), and the
index keeps both versions; `due` lists the newest, counts it once, and says how many are older.

Two real runs against the emulator: four hours, then the same four hours rechecked while the
emulator serves changed versions of some messages."""

import json

import run_support
from click.testing import CliRunner

from auditor.archive import layout
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit

SECRET = "due-versions-test-secret"


def test_a_message_archived_in_two_versions_is_listed_and_counted_once(tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="due-versions-test")
    base = dict(messages=600, days=1, client_secret=SECRET)
    window = dict(since_ms=DEFAULT_START_MS, until_ms=DEFAULT_START_MS + 4 * HOUR_MS)
    with run_emulator(EmulatorOptions(**base)) as original:
        first = run_audit(run_support.settings_for(original, keys, tmp_path, SECRET, **window))
    with run_emulator(EmulatorOptions(**base, conflict_rate=0.05)) as changed:
        recheck = run_audit(
            run_support.settings_for(changed, keys, tmp_path, SECRET, recheck=True, **window)
        )
    altered = {
        json.loads(line)["msg_id"]
        for line in (recheck.bag_path / layout.FINDINGS).read_text().splitlines()
        if json.loads(line)["category"] == "changed"
    }
    assert altered and first.records > len(altered)

    result = CliRunner().invoke(
        main,
        ["due", "--state", str(tmp_path / "state.db"), "--on", "2030-01-01", "--format", "json"],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    listed = [m["msg_id"] for m in report["messages"]]
    assert len(listed) == len(set(listed))
    counts = report["counts"]
    assert sum(counts.values()) - counts.get("keep", 0) - counts.get("kept", 0) == len(listed)
    newest = {m["msg_id"]: m for m in report["messages"] if m["msg_id"] in altered}
    assert newest  # the others' retention (five years for shared files) still runs
    assert {(m["run"], m["earlier_versions"]) for m in newest.values()} == {(2, 1)}
    assert {m["earlier_versions"] for m in report["messages"] if m["msg_id"] not in altered} == {0}
