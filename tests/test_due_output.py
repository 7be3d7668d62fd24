"""What `auditor due` writes: a CSV for a spreadsheet, where an 18-digit msg_id must stay its
digits (Excel keeps 15 and shows 2.00000070000000E+17) and a msg_id from the source that starts
like a formula is shown, not run, as in findings.csv; and a listing of a long chain written as it
is read, not held whole in memory (probe 23)."""

import csv
import io
import json
import subprocess
import sys
from contextlib import closing

from click.testing import CliRunner

from auditor.cli import main
from auditor.state import State
from auditor.state_index import add_rows

IDS = ("200000070000025721", '=HYPERLINK("http://127.0.0.1/x","x")', "-1+2", "007")


def state_with(path, ids, until_ms=1000):
    state = State(path)
    with closing(state), state.transaction() as db:
        db.execute(
            "INSERT INTO runs (sequence, status, since_ms, until_ms, started_at,"
            " previous_tagmanifest_sha256, bag_path, config_digest) VALUES (1, 'completed', 0,"
            " 3600000, 3600000, ?, 'run-000001-1970010100-1970010101', 'd')",
            ("0" * 64,),
        )
        add_rows(
            db,
            (
                (msg_id, f"{seq:064x}", 0, until_ms + seq, 1, 1, 0, "delete", "default", seq)
                for seq, msg_id in enumerate(ids)
            ),
        )


def test_due_csv_keeps_msg_ids_as_text_and_never_as_a_formula(tmp_path):
    state_with(tmp_path / "state.db", IDS)

    result = CliRunner().invoke(
        main,
        ["due", "--state", str(tmp_path / "state.db"), "--on", "2026-01-01", "--format", "csv"],
    )

    assert result.exit_code == 0, result.output
    assert result.output_bytes.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 then
    table = list(csv.reader(io.StringIO(result.output.removeprefix("\ufeff"))))
    assert table[0] == [
        "verdict", "msg_id", "retain_until", "rule", "run", "bag", "seq", "earlier_versions",
        "kept_verbatim",
    ]  # fmt: skip
    cells = {row[6]: row[1] for row in table[1:]}
    assert cells == {
        "0": '="200000070000025721"',
        "1": '\'=HYPERLINK("http://127.0.0.1/x","x")',
        "2": "'-1+2",
        "3": '="007"',
    }


def test_due_lists_a_long_chain_without_holding_it_in_memory(tmp_path):
    """100,000 messages to delete: the JSON listing was built whole (about 2.3 GB at a million
    messages); written as read, the command stays at its size without them (about 66 MB)."""
    count = 100_000
    state_with(tmp_path / "state.db", (f"2000000700{i:08d}" for i in range(count)))
    measure = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    due = [sys.executable, "-m", "auditor", "due", "--state", str(tmp_path / "state.db")]
    due += ["--on", "2026-01-01"]

    peak_kb = int(
        subprocess.run(
            [sys.executable, "-c", measure, *due, "--format", "json"],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    listed = subprocess.run([*due, "--format", "json"], capture_output=True, check=True).stdout

    assert peak_kb < 150_000, f"{peak_kb:,} KB"
    report = json.loads(listed)
    assert report["counts"] == {"delete": count}
    assert len(report["messages"]) == count
    assert report["messages"][0]["msg_id"] == "200000070000000000"


def test_due_warns_that_holds_added_since_a_run_are_not_applied(tmp_path):
    """Holds are stored as each run judged them (probe 23 #1, #2): the officer is told, before
    deleting, to check the list against the current policy."""
    state_with(tmp_path / "state.db", IDS)

    command = [sys.executable, "-m", "auditor", "due", "--state", str(tmp_path / "state.db")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "a hold added to the policy since" in result.stderr
    assert "auditor scan --policies CURRENT.yaml --now" in result.stderr


def test_due_json_writes_each_message_as_json_dumps_would(tmp_path):
    """The listing's lines are made by hand for speed (a million messages): each must still be
    `json.dumps(message, ensure_ascii=False)` byte for byte, with quotes, backslashes, control
    characters and non-ASCII in a msg_id."""
    hostile = ('a"b', "back\\slash", "line\nbreak\x01\x1f", "\u2028é中", "200000070000025721")
    state_with(tmp_path / "state.db", hostile, until_ms=1_767_225_599_999)

    result = CliRunner().invoke(
        main,
        ["due", "--state", str(tmp_path / "state.db"), "--on", "2026-06-01", "--format", "json"],
    )

    assert result.exit_code == 0, result.output
    body = result.output[result.output.index("{") :]
    lines = body.split('"messages": [\n    ')[1].split("\n  ]")[0].split(",\n    ")
    listed = [json.loads(line) for line in lines]
    assert [json.dumps(message, ensure_ascii=False) for message in listed] == lines
    assert {message["msg_id"] for message in listed} == set(hostile)
    assert listed[0]["retain_until"] == "2025-12-31T23:59:59.999Z"
    assert listed[1]["retain_until"] == "2026-01-01T00:00:00Z"


def test_due_writes_instants_as_format_instant_does():
    """`due` makes a listed instant's date once a day; the text is `format_instant`'s."""
    from auditor.due import _Instants
    from auditor.partitions import format_instant

    instants = _Instants()
    day = 86_400_000
    for ms in (-day - 1, -1, 0, 999, 1000, day - 1, day, 1_767_225_599_999, 253_402_300_799_999):
        assert instants(ms) == format_instant(ms), ms


# What a daily `due` has no use for: the report's page (Jinja2), the policy loader (YAML, JSON
# Schema, detectors) and the bag reader `--policy` alone needs. They were most of a call's 0.74 s.
NOT_FOR_DUE = (
    "auditor.archive.verify",
    "auditor.due_holds",
    "auditor.policies.in_bag",
    "auditor.policies.loading",
    "auditor.report.formats",
    "auditor.state_rebuild",
    "jinja2",
    "jsonschema",
    "yaml",
)

DUE_MODULES = """
import contextlib, io, sys
from auditor.cli import main

for output in ("table", "csv", "json"):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main.main(["due", *sys.argv[1:], "--format", output], prog_name="auditor")
        except SystemExit as done:
            assert done.code == 0, done.code
print(*sorted(sys.modules))
"""


def test_due_without_a_policy_imports_neither_the_report_nor_the_policy_loader(tmp_path):
    """In a fresh interpreter, after a listing in each format: the CSV's cells come from a
    module of their own, not through the report's formats (which import the page's Jinja2)."""
    state_with(tmp_path / "state.db", IDS)
    asked = ["--state", str(tmp_path / "state.db"), "--on", "2026-01-01"]

    shown = subprocess.run(
        [sys.executable, "-c", DUE_MODULES, *asked], capture_output=True, text=True, check=True
    ).stdout

    modules = set(shown.split())
    assert "auditor.due" in modules
    assert sorted(name for name in modules if name.startswith(NOT_FOR_DUE)) == []


def test_a_retention_kept_to_the_calendars_end_is_never_due(tmp_path):
    """A period past the year 9999 keeps a message until 9999-12-31T23:59:59.999Z, the last
    instant there is, for ever: `--on 9999-12-31` listed it for deletion (probe 30)."""
    last = 253_402_300_799_999
    state_with(tmp_path / "state.db", ("1", "2"), until_ms=last)  # and one past it

    listed = {}
    for on in ("9999-12-31", "9999-12-31T23:59:59.999Z"):
        result = CliRunner().invoke(
            main,
            ["due", "--state", str(tmp_path / "state.db"), "--on", on, "--format", "json"],
        )
        assert result.exit_code == 0, result.output
        listed[on] = json.loads(result.output)

    assert {on: [m["msg_id"] for m in answer["messages"]] for on, answer in listed.items()} == {
        "9999-12-31": [],
        "9999-12-31T23:59:59.999Z": [],
    }


def test_the_calendars_last_day_is_answered_for_its_last_instant_as_every_other_day(tmp_path):
    """`--on 9999-12-31` said it answered for 23:59:59.998Z, one ms short of the day's end that
    `--on` gives every other date: the retention that never ends was kept so by moving the day,
    not by judging it. The answer is the same; the instant shown is the one asked for."""
    state_with(tmp_path / "state.db", ("1",), until_ms=253_402_300_799_999)

    shown = {}
    for on in ("9999-12-31", "9999-12-31T23:59:59.999Z", "2026-02-28"):
        result = CliRunner().invoke(
            main, ["due", "--state", str(tmp_path / "state.db"), "--on", on, "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        shown[on] = json.loads(result.output)["on"]

    assert shown == {
        "9999-12-31": "9999-12-31T23:59:59.999Z",
        "9999-12-31T23:59:59.999Z": "9999-12-31T23:59:59.999Z",
        "2026-02-28": "2026-02-28T23:59:59.999Z",
    }


def test_prune_on_the_calendars_last_day_keeps_a_retention_that_never_ends(tmp_path):
    """`state prune --on` reads its day as `due` does: the last instant of 9999-12-31 does not
    end a retention kept to it, so the message is kept, not pending deletion."""
    state_with(tmp_path / "state.db", ("1",), until_ms=253_402_300_799_999)

    state = str(tmp_path / "state.db")
    result = CliRunner().invoke(
        main,
        ["state", "prune", "--state", state, "--before", "1970-01-02", "--on", "9999-12-31"],
    )

    assert result.exit_code == 0, result.output
    assert "1 sent before it, which `auditor due` still needs: retention not ended" in result.output
    assert "due for deletion" not in result.output
