"""`auditor report BAG -o DIR`: the report rendered again from a bag alone."""

import json
import re
from dataclasses import replace

import orjson
import pytest
import run_support
from click.testing import CliRunner
from markupsafe import escape

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import SyntheticHistory
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import Partition
from auditor.report.synthetic import planted_findings

SECRET = "report-bag-test-secret"

BAG_INFO = {
    "Source-API": "hourfiles",
    "Source-Base-URL": "http://127.0.0.1:5080",
    "Source-Organization": "demo-org",
    "Source-Application": "demo-app",
    "Window-Since": "2026-11-01T00:00:00Z",
    "Window-Until": "2026-11-01T06:00:00Z",
    "Run-Sequence": "3",
    "Merkle-Root": "9f" * 32,
    "Merkle-Tree-Size": "600",
    "Record-Count": "600",
    "Attachment-Count": "17",
    "Previous-Tagmanifest-SHA256": "e3" * 32,
    "Signing-Key-Fingerprint": "SHA256:q2pEVS6d0l9vD5XbN2wVxN4b1s9Ew2ak9Vf8X1hQk3c",
    "Policy-SHA256": "5d" * 32,
    "Hour-Timezone": "+08:00",
    "Tool-Version": "0.1.0",
    "Fail-On": "medium",
    "Bagging-Date": "2026-11-21",
}
VERIFY = "sha256sum -c tagmanifest-sha256.txt\nssh-keygen -Y verify -f allowed_signers ...\n"


def write_bag(root, info=BAG_INFO, records=600):
    """A bag-like folder with what the report reads: bag-info, record files, findings."""
    bag = root / "run-000003-2026110100-2026110106"
    (bag / "data" / "records").mkdir(parents=True)
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    (bag / "bag-info.txt").write_text("".join(f"{k}: {v}\n" for k, v in info.items()))
    (bag / "data" / "VERIFY.txt").write_text(VERIFY)
    history = SyntheticHistory(messages=records, days=1, start_ms=1_793_491_200_000)
    findings = []
    by_hour: dict[str, list[bytes]] = {}
    for index in range(records):
        truth = history.truth(index)
        label = Partition.containing(history.timestamp(index)).label()
        line = {"record": truth.record, "salt": f"{index:032x}", "seq": index}
        by_hour.setdefault(label, []).append(orjson.dumps(line, option=orjson.OPT_SORT_KEYS))
        for finding in planted_findings(truth):  # the archive keeps findings without records
            finding["details"].pop("record", None)
            findings.append(finding)
    for label, lines in by_hour.items():
        (bag / "data" / "records" / f"{label}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (bag / "data" / "findings.jsonl").write_bytes(
        b"".join(orjson.dumps(f) + b"\n" for f in findings)
    )
    return bag, findings


def test_a_bag_alone_renders_the_report_with_its_runs_facts(tmp_path):
    bag, findings = write_bag(tmp_path, records=600)
    result = CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    failing = sum(f["severity"] in ("medium", "high") for f in findings)
    assert result.exit_code == 1, result.output  # FAIL verdict: findings at or above --fail-on
    assert result.stdout.splitlines()[-1] == f"FAIL: {failing} findings at or above 'medium'"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["records"]["total"] == 600
    assert summary["findings"]["total"] == len(findings)
    assert summary["run"]["sequence"] == 3
    assert (summary["run"]["since"], summary["run"]["until"]) == (
        "2026-11-01T00:00:00Z",
        "2026-11-01T06:00:00Z",
    )
    assert summary["run"]["source"] == {
        "api": "hourfiles",
        "base_url": "http://127.0.0.1:5080",
        "org": "demo-org",
        "app": "demo-app",
    }
    assert summary["archive"] == {
        "merkle_root": "9f" * 32,
        "tree_size": 600,
        "signing_key_fingerprint": BAG_INFO["Signing-Key-Fingerprint"],
        "previous_tagmanifest_sha256": "e3" * 32,
        "first_run": False,
    }
    assert summary["attachments"]["count"] == 17
    assert summary["time_zone"] == "UTC+08:00"
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert '<pre id="verify-commands">sha256sum -c tagmanifest-sha256.txt\nssh-keygen' in html
    assert len((tmp_path / "out" / "findings.jsonl").read_bytes().splitlines()) == len(findings)


def test_fail_on_given_on_the_command_line_overrides_the_bags(tmp_path):
    bag, findings = write_bag(tmp_path, records=200)
    result = CliRunner().invoke(
        main, ["report", str(bag), "-o", str(tmp_path / "out"), "--fail-on", "high"]
    )
    high = sum(f["severity"] == "high" for f in findings)
    assert result.stdout.splitlines()[-1] == f"FAIL: {high} findings at or above 'high'"


def test_a_bag_without_its_window_is_refused_in_one_line(tmp_path):
    info = {k: v for k, v in BAG_INFO.items() if k != "Window-Since"}
    bag, _ = write_bag(tmp_path, info=info, records=10)
    result = CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr == f"auditor: error: {bag}/bag-info.txt: Window-Since is missing\n"


def test_the_reference_time_of_bag_info_is_on_the_first_screen_and_in_the_summary(tmp_path):
    info = BAG_INFO | {"Policy-Reference-Time": "2026-11-27T06:14:27Z"}
    bag, _ = write_bag(tmp_path, info=info, records=10)
    CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert (summary["run"]["reference_time"], summary["run"]["reference_ms"]) == (
        "2026-11-27T06:14:27Z",
        1_795_760_067_000,
    )
    header = html.split("</header>")[0]  # the first screen, beside the window
    assert (
        'Retention and holds judged as of <span id="reference-time">2026-11-27 14:14:27 +08:00'
        "</span>." in header
    )
    assert (
        '<tr><th scope="row">Retention and holds judged as of</th>'
        "<td>2026-11-27 14:14:27 +08:00<br><code>2026-11-27T06:14:27Z</code></td></tr>" in html
    )


def test_a_bag_without_a_reference_time_shows_none(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "reference_time" not in summary["run"]
    assert "judged as of" not in html


def test_a_reference_time_that_is_not_a_time_is_refused_in_one_line(tmp_path):
    bag, _ = write_bag(tmp_path, info=BAG_INFO | {"Policy-Reference-Time": "soon"}, records=10)
    result = CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"auditor: error: {bag}/bag-info.txt: Policy-Reference-Time 'soon' is not an ISO 8601 "
        "time\n"
    )


def test_a_damaged_record_line_is_named_by_file_and_line(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    damaged = sorted((bag / "data" / "records").glob("*.jsonl"))[0]
    damaged.write_bytes(damaged.read_bytes() + b'{"record": "cut sho\n')
    lines = damaged.read_bytes().count(b"\n")
    result = CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"auditor: error: {damaged}:{lines}: not an archived record")
    assert "Traceback" not in result.output


def test_a_folder_that_is_not_a_bag_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"auditor: error: {tmp_path}: not a readable BagIt bag")


def test_schema_findings_show_their_record_found_in_the_bag(tmp_path):
    bag, findings = write_bag(tmp_path, records=400)
    CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    schema = [f for f in findings if f["category"] == "schema"]
    findable = [f for f in schema if f["msg_id"] is not None]
    assert 0 < len(findable) < len(schema)
    assert html.count("<summary>record</summary>") == len(findable)


def test_retention_counts_come_back_from_the_summary_stored_in_the_bag(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    stored = {
        "retention": {
            "by_rule": [
                {"disposition": "keep", "rule": "default-3y", "count": 9},
                {"disposition": "hold", "rule": "case-42", "count": 1},
            ]
        }
    }
    (bag / "data" / "report").mkdir()
    (bag / "data" / "report" / "summary.json").write_text(json.dumps(stored))
    CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["retention"]["by_disposition"] == {
        "keep": 9,
        "dispose": 0,
        "review": 0,
        "hold": 1,
    }
    assert summary["holds"]["records"] == 1


def test_a_bag_written_by_the_archive_writer_renders_with_its_own_figures(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from auditor.archive.bag import BagWriter
    from auditor.report.bag import render_bag, run_info_from_bag
    from auditor.report.formats.html import verify_commands

    history = SyntheticHistory(messages=300, days=1, start_ms=1_793_491_200_000)
    info = {k: BAG_INFO[k] for k in ("Source-API", "Source-Base-URL", "Source-Organization")}
    info |= {
        "Source-Application": "demo-app",
        "Window-Since": "2026-11-01T00:00:00Z",
        "Window-Until": "2026-11-02T00:00:00Z",
        "Hour-Timezone": "UTC",
        "Fail-On": "high",
        "Policy-File": "policies.example.yaml",
        "Policy-SHA256": "5d" * 32,
        "Tool-Version": "0.1.0",
    }
    by_hour: dict[str, list[dict]] = {}
    findings = []
    for index in range(len(history)):
        truth = history.truth(index)
        label = Partition.containing(history.timestamp(index)).label()
        by_hour.setdefault(label, []).append(truth.record)
        findings.extend(planted_findings(truth))
    with BagWriter(tmp_path, "run-1", Ed25519PrivateKey.generate(), "0" * 64, 1, info) as writer:
        for label in sorted(by_hour):
            writer.add_partition(label, by_hour[label])
        writer.add_findings(findings)
        written = writer.finish()

    rendered = render_bag(written.path, tmp_path / "out")
    summary = rendered.summary
    assert summary["records"]["total"] == written.record_count == 300
    assert summary["findings"]["total"] == written.findings_count == len(findings)
    assert summary["archive"] == {
        "merkle_root": written.merkle_root,
        "tree_size": written.tree_size,
        "signing_key_fingerprint": written.fingerprint,
        "previous_tagmanifest_sha256": "0" * 64,
        "first_run": True,
    }
    assert summary["policy"] == {
        "file": "policies.example.yaml",
        "sha256": "5d" * 32,
        "term_files": [],
    }
    html = rendered.files["report.html"].read_text(encoding="utf-8")
    verify = (written.path / "data" / "VERIFY.txt").read_text(encoding="utf-8").strip("\n")
    assert f'<pre id="verify-commands">{escape(verify)}</pre>' in html
    # during a run the bag has no VERIFY.txt yet: the report states the same text from its facts
    during_run = replace(run_info_from_bag(written.path), verify_text="", bag_name="run-1")
    assert verify_commands(during_run) == verify


def test_exact_copies_dropped_come_back_from_the_summary_stored_in_the_bag(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    stored = {"retention": {"by_rule": []}, "records": {"source_copies_dropped": 382}}
    (bag / "data" / "report").mkdir()
    (bag / "data" / "report" / "summary.json").write_text(json.dumps(stored))
    CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert summary["records"]["source_copies_dropped"] == 382
    assert '<td id="source-copies">382 exact copies served by' in html


def test_attachments_skipped_are_noted_as_the_run_noted_them(tmp_path):
    bag, _ = write_bag(tmp_path, info=BAG_INFO | {"Attachments-Skipped": "--attachments skip"})
    CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["attachments"] == {
        "count": 17,
        "skipped": 0,
        "note": "skipped (--attachments skip)",
    }


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory):
    """The bag of the second of two `auditor run`s over overlapping windows (hours 0-6, then
    3-9) of a source that serves exact copies, conflicting versions, late records and mangled lines,
    naming its hours in Beijing time; and the exact copies its progress lines say it dropped."""
    folder = tmp_path_factory.mktemp("overlapping")
    keys = generate_key_files(folder / "keys", identity="report-bag-test")
    options = EmulatorOptions(
        messages=3000,
        days=1,
        client_secret=SECRET,
        hour_timezone="+8",
        duplicate_rate=0.05,
        conflict_rate=0.02,
        late_rate=0.05,
        mangled_rate=0.02,
    )
    with run_emulator(options) as emulator:

        def run(since: int, until: int):
            args = run_support.run_args(emulator, keys, folder, hours=until)
            args[args.index("--since") + 1] = f"2026-11-01T{since:02d}:00Z"
            args += ["--hour-timezone", "+8", "--attachments", "skip", "--fail-on", "none"]
            result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})
            assert result.exit_code == 0, result.output
            return result

        run(0, 6)
        second = run(3, 9)
    copies = sum(map(int, re.findall(r"(\d+) duplicates dropped", second.stderr)))
    (bag,) = (folder / "archive").glob("run-000002-*")
    return bag, copies


def test_a_bag_overlapping_an_earlier_run_renders_again_the_summary_it_signed(
    overlapping, tmp_path
):
    bag, copies = overlapping
    result = CliRunner().invoke(main, ["report", str(bag), "-o", str(tmp_path / "out")])
    signed = json.loads((bag / "data" / "report" / "summary.json").read_text())
    rendered = json.loads((tmp_path / "out" / "summary.json").read_text())
    # different by nature: when each was generated, and the bagging date (a run writes its
    # report before it bags)
    for summary in (signed, rendered):
        del summary["generated_at"], summary["run"]["archived_on"]

    assert result.exit_code == 0, result.output
    assert rendered == signed
    rules = {
        (each["rule"], each["severity"]): each["count"] for each in signed["findings"]["by_rule"]
    }
    assert rules[("archived-earlier", "info")] > 0  # about messages this bag does not hold
    assert rules[("conflicting-content", "medium")] > 0
    assert signed["records"]["source_copies_dropped"] == copies > 0


def test_the_page_a_run_signs_shows_its_verify_txt_with_the_previous_run_named(overlapping):
    """The run writes its page before the bag's VERIFY.txt exists; both name run 1's folder."""
    bag, _copies = overlapping
    verify = (bag / "data" / "VERIFY.txt").read_text(encoding="utf-8").strip("\n")
    page = (bag / "data" / "report" / "report.html").read_text(encoding="utf-8")

    (previous,) = {name for name in re.findall(r"\.\./(run-\d+-\S+?)/", verify)}
    assert previous.startswith("run-000001-")
    assert f'<pre id="verify-commands">{escape(verify)}</pre>' in page


def test_a_report_folder_that_cannot_be_made_is_one_line_naming_it(tmp_path):
    """Its reason once repeated Python's whole line, path and errno included, inside the line."""
    bag, _findings = write_bag(tmp_path / "bag")
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "report"

    result = CliRunner().invoke(main, ["report", str(bag), "-o", str(target)])

    assert result.exit_code == 2, result.output
    assert result.output == (
        f"auditor: error: {target}: cannot create the report folder (Not a directory)\n"
    )
