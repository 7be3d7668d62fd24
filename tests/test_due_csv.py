"""`auditor due --format csv` is for a spreadsheet: an 18-digit msg_id must stay its digits
(Excel keeps 15 and shows 2.00000070000000E+17), and a msg_id from the source that starts like a
formula must be shown, not run, as in findings.csv (probe 23)."""

import csv
import io
from contextlib import closing

from click.testing import CliRunner

from auditor.cli import main
from auditor.state import State

IDS = ("200000070000025721", '=HYPERLINK("http://127.0.0.1/x","x")', "-1+2", "007")


def state_with(path, ids):
    state = State(path)
    with closing(state), state.transaction() as db:
        db.execute(
            "INSERT INTO runs (sequence, status, since_ms, until_ms, started_at,"
            " previous_tagmanifest_sha256, bag_path, config_digest) VALUES (1, 'completed', 0,"
            " 3600000, 3600000, ?, 'run-000001-1970010100-1970010101', 'd')",
            ("0" * 64,),
        )
        db.executemany(
            "INSERT INTO messages (msg_id, content_hash, timestamp_ms, retain_until_ms,"
            " first_run, last_run, hour_ms, action, rule, seq) VALUES (?, ?, 0, 1000, 1, 1, 0,"
            " 'delete', 'default', ?)",
            [(msg_id, f"{seq:064x}", seq) for seq, msg_id in enumerate(ids)],
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
    assert table[0] == ["verdict", "msg_id", "retain_until", "rule", "run", "bag", "seq"]
    cells = {row[6]: row[1] for row in table[1:]}
    assert cells == {
        "0": '="200000070000025721"',
        "1": '\'=HYPERLINK("http://127.0.0.1/x","x")',
        "2": "'-1+2",
        "3": '="007"',
    }
