"""Hour files a hostile or broken server serves, through `auditor pull` over loopback HTTP: a gzip
bomb is refused with one line, bad lines are kept verbatim, records are pulled as served."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.partitions import Partition
from auditor.sources.easemob import EasemobClient
from auditor.sources.hourfiles import HourFileSource
from auditor.sources.local import LocalFileSource

SECRET = "hostile-data-secret"
LABEL = "2026110100"
HOUR = Partition(1_793_491_200_000)
WINDOW = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z"]
RECORD = b'{"msg_id":"1","timestamp":1793491200001,"chat_type":"chat","note":"fine"}'
NO_FILE = (404, {"error": "storage_object_not_found", "error_description": "no file"})
EXPIRED = (400, {"error": "illegal_argument", "error_description": "maybe ... expired or unstored"})


class HourFileServer(BaseHTTPRequestHandler):
    """Easemob's token and hour API, and a signed URL answering with `self.server.hour_file`."""

    def do_POST(self) -> None:  # the token
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, json.dumps({"access_token": "T", "expires_in": 7200}).encode())

    def do_GET(self) -> None:
        if self.path.startswith("/files/"):
            turns = getattr(self.server, "turns", None)  # files served in turn, then as below
            if turns:
                return self._send(200, turns.pop(0))
            files = getattr(self.server, "hour_files", None)  # label -> file, else one for all
            if files:
                return self._send(200, files[self.path.split("/")[2].partition(".")[0]])
            return self._send(200, self.server.hour_file)  # type: ignore[attr-defined]
        links = getattr(self.server, "links", None)  # how many answers give a link, then 404
        if links is not None:
            self.server.links = links - 1  # type: ignore[attr-defined]
            if links <= 0:
                status, answer = getattr(self.server, "after_links", None) or NO_FILE
                return self._send(status, json.dumps(answer).encode())
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        link = f"{base}/files/{self.path.rsplit('/', 1)[-1]}.gz?Signature=x"
        self._send(200, json.dumps({"data": [{"url": link}]}).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), HourFileServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def pull(server, out, served: bytes, *extra: str):
    server.hour_file = served
    base = f"http://127.0.0.1:{server.server_address[1]}"
    args = ["pull", *WINDOW, *extra, "--out", str(out), "--base-url", base, "--org", "o"]
    args += ["--app", "a"]
    args += ["--client-id", "c", "--retries", "1", "--timeout", "5"]
    env = {"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None}
    env.update({name: None for name in ("EASEMOB_BASE_URL", "EASEMOB_ORG", "EASEMOB_APP")})
    return CliRunner().invoke(main, args, env=env)


def zero_bomb(size: int) -> bytes:
    """A gzip file of `size` zero bytes, compressed by runs (`Z_RLE`): as small as level 9
    makes it, in half the CPU (1.3 s against 2.4 for 300 MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    chunk = bytes(1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(size >> 20)) + packer.flush()


def test_a_gzip_bomb_is_refused_with_one_line_naming_the_hour_and_exit_3(server, tmp_path):
    bomb = zero_bomb(300 << 20)  # 300 KB on the wire

    result = pull(server, tmp_path, bomb)

    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"auditor: error: hour {LABEL}: a gzip bomb or damaged gzip (it expands past 256 MiB: "
        f"100 times its {len(bomb):,} bytes, at least 256 MiB) on each of 2 attempts"
    )
    assert not (tmp_path / f"{LABEL}.jsonl").exists()


def test_a_bomb_of_tiny_lines_is_refused_before_it_becomes_millions_of_objects(server, tmp_path):
    # 9 MB of 3 million `{}` lines, 30 KB on the wire: 131 bytes a line as weighed, about what
    # each costs parsed (the floor of 256 MiB of weight is reached at 2 million)
    bomb = gzip.compress(b"{}\n" * 3_000_000, compresslevel=9)

    result = pull(server, tmp_path, bomb)

    assert result.exit_code == 3, result.output
    assert "a gzip bomb or damaged gzip" in result.stderr


def test_a_line_nested_100000_deep_is_kept_verbatim_as_unreadable(server, tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    for exact in (b"", b' {"n":123456789012345678901}'):  # orjson first, or the exact parser
        out = tmp_path / str(len(exact))
        result = pull(server, out, gzip.compress(RECORD + b"\n" + deep + exact + b"\n"))

        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert (out / f"{LABEL}.jsonl").read_bytes() == RECORD + b"\n"
        assert (out / f"{LABEL}.unreadable.txt").read_bytes() == deep + exact + b"\n"


def test_a_lone_surrogate_is_pulled_as_an_escape_and_read_back_as_the_same_record(server, tmp_path):
    served = b'{"msg_id":"1","timestamp":1793491200001,"note":"lone \\ud800 here \xe4\xbd\xa0"}'

    result = pull(server, tmp_path / "out", gzip.compress(served + b"\n"))

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "out" / f"{LABEL}.unreadable.txt").exists()
    (record,) = LocalFileSource([tmp_path / "out"]).records(HOUR)
    assert record == json.loads(served)
    assert record["note"] == "lone \ud800 here \u4f60"


def test_a_number_beyond_a_double_is_kept_as_served_never_rewritten(server, tmp_path, caplog):
    big = b'{"msg_id":"2","timestamp":1e400,"v":1}'
    for beside in (b"", b',"n":123456789012345678901'):  # orjson first, or the exact parser
        served, out = big[:-1] + beside + b"}", tmp_path / str(len(beside))

        result = pull(server, out, gzip.compress(RECORD + b"\n" + served + b"\n"))

        assert result.exit_code == 0, result.output
        assert (out / f"{LABEL}.jsonl").read_bytes() == RECORD + b"\n"
        assert (out / f"{LABEL}.unreadable.txt").read_bytes() == served + b"\n"
        assert f"kept as line 1 of {LABEL}.unreadable.txt" in caplog.text


@pytest.mark.parametrize(
    "served",
    [b"", gzip.compress(b""), gzip.compress(b"  \n\r\n\t \n")],
    ids=["no bytes", "gzip of nothing", "gzip of whitespace"],
)
def test_an_empty_hour_file_is_a_warning_and_an_unreadable_piece_not_an_empty_hour(
    server, tmp_path, served, caplog
):
    result = pull(server, tmp_path, served)

    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings[0] == f"hour {LABEL}: keeping the file with an empty file"
    assert warnings[1].startswith(f"hour {LABEL}: unreadable data ({LABEL}: an empty hour file: ")
    assert result.stdout.startswith(f"{LABEL}  pulled          0 records  (1 unreadable)")
    assert (tmp_path / f"{LABEL}.jsonl").read_bytes() == b""
    assert (tmp_path / f"{LABEL}.unreadable.txt").read_bytes().count(b"\n") == 1
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_bytes())
    assert checkpoint["hours"][LABEL]["unreadable"] == 1


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_record_nested_deeper_than_orjson_writes_is_archived_and_reported(
    server, tmp_path, depth
):
    """orjson reads 1,024 levels and writes 255; past that the json module and rfc8785 write the
    record (they recursed past Python's limit at about 990 levels), and the schema check, which
    stops at about 250 levels, reports the record instead of raising."""
    deep = b'{"msg_id":"2","timestamp":1793491200002,"x":%b}' % (b"[" * depth + b"]" * depth)

    summary, findings = run_and_verify(server, tmp_path, RECORD + b"\n" + deep + b"\n")

    assert summary["records"] == 2
    assert any(
        finding["msg_id"] == "2" and "nested too deeply for the validator" in finding["message"]
        for finding in findings
    )


REPEATED = b'{"msg_id":"3","timestamp":1793491200003,"chat_type":"chat","msg_id":"4"}'


def test_a_record_that_names_a_key_twice_is_pulled_verbatim_as_unreadable(server, tmp_path, caplog):
    """Which msg_id it has depends on the parser: kept as served, never as one of its readings."""
    result = pull(server, tmp_path, gzip.compress(RECORD + b"\n" + REPEATED + b"\n"))

    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{LABEL}.jsonl").read_bytes() == RECORD + b"\n"
    assert (tmp_path / f"{LABEL}.unreadable.txt").read_bytes() == REPEATED + b"\n"
    assert 'an object names the key "msg_id" more than once' in caplog.text


def test_a_run_archives_a_record_that_names_a_key_twice_verbatim_with_a_high_finding(
    server, tmp_path
):
    summary, findings = run_and_verify(server, tmp_path, RECORD + b"\n" + REPEATED + b"\n")

    assert summary["records"] == 1
    bag = Path(summary["bag"])
    assert (bag / "data" / "unreadable" / f"{LABEL}.txt").read_bytes() == REPEATED + b"\n"
    (finding,) = [finding for finding in findings if finding["rule"] == "unreadable"]
    assert finding["severity"] == "high"
    assert 'an object names the key "msg_id" more than once' in finding["message"]


def test_a_record_without_msg_id_served_in_two_hours_is_archived_once_by_a_run(server, tmp_path):
    anonymous = b'{"timestamp":1793491200001,"chat_type":"chat","payload":{"bodies":[]}}'
    two_hours = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T02:00Z"]

    summary, findings = run_and_verify(server, tmp_path, anonymous + b"\n", two_hours)

    assert summary["records"] == 1
    (stray,) = [finding for finding in findings if finding["rule"] == "served-in-another-hour"]
    assert stray["message"].endswith("kept with this hour, archived once")


def run_and_verify(server, tmp_path, served: bytes, window=WINDOW) -> tuple[dict, list[dict]]:
    """`auditor run` over the served hour, then `auditor verify` of its bag: the run's JSON
    summary and the bag's findings."""
    from auditor.archive.keys import generate_key_files
    from auditor.resources import example_policy

    server.hour_file = gzip.compress(served)
    keys = generate_key_files(tmp_path / "keys", identity="hostile-data-test")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    args = ["run", *window, "--base-url", base, "--org", "o", "--app", "a", "--client-id", "c"]
    args += ["--policies", str(example_policy()), "--key", str(keys.private_key), "--json"]
    args += ["--out", str(tmp_path / "archive"), "--state", str(tmp_path / "state.db")]
    args += ["--ready-delay-hours", "0", "--fail-on", "none", "--attachments", "skip"]

    result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    bag = summary["bag"]
    verified = CliRunner().invoke(main, ["verify", bag, "--pubkey", str(keys.public_key)])
    assert verified.exit_code == 0, verified.output
    findings = Path(bag, "data", "findings.jsonl").read_bytes().splitlines()
    return summary, [json.loads(line) for line in findings]


@pytest.fixture
def one_link(server):
    """The hour API gives a download link once, then says the hour has no file (404)."""
    server.links = 1
    yield
    server.links = server.after_links = None


def test_a_file_with_a_bad_line_is_kept_when_the_next_look_is_refused_as_expired(
    server, tmp_path, one_link
):
    """The hour passed the source's retention between two looks: the file served is kept, not
    recorded as lost with nothing in it."""
    server.after_links = EXPIRED

    result = pull(server, tmp_path, gzip.compress(RECORD + b"\n" + b'{"msg_id":"2",\n'))

    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{LABEL}.jsonl").read_bytes() == RECORD + b"\n"
    assert not (tmp_path / f"{LABEL}.expired.txt").exists()


def test_a_file_with_a_bad_line_is_kept_when_the_next_look_says_the_hour_has_no_file(
    server, tmp_path, one_link
):
    result = pull(server, tmp_path, gzip.compress(RECORD + b"\n" + b'{"msg_id":"2",\n'))

    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{LABEL}.jsonl").read_bytes() == RECORD + b"\n"
    assert (tmp_path / f"{LABEL}.unreadable.txt").read_bytes() == b'{"msg_id":"2",\n'
    server.links = 1
    base = f"http://127.0.0.1:{server.server_address[1]}"
    source = HourFileSource(EasemobClient(base, "o", "a", "c", SECRET))
    assert source.fetch(HOUR).records == (json.loads(RECORD),)  # read in memory


def test_a_refetch_the_source_answers_with_no_file_keeps_the_hour_pulled_before(
    server, tmp_path, caplog
):
    """A pulled hour with records, said on `--refetch` to have no file (404): the pull wrote an
    empty file over its records and said "pulled 0 records", losing them without a word."""
    assert pull(server, tmp_path, gzip.compress(RECORD + b"\n")).exit_code == 0
    before = (tmp_path / "checkpoint.json").read_bytes()
    server.links = 0
    try:
        result = pull(server, tmp_path, b"", "--refetch")
    finally:
        server.links = None

    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{LABEL}.jsonl").read_bytes() == RECORD + b"\n"
    assert (tmp_path / "checkpoint.json").read_bytes() == before
    assert f"{LABEL}  done            1 records" in result.stdout
    assert (
        f"hour {LABEL}: the source now serves nothing for the hour (an hour file: 404, no file); "
        "keeping the 1 record(s) pulled before"
    ) in caplog.messages


SECOND = b'{"msg_id":"2","timestamp":1793491200002,"chat_type":"chat","note":"also"}'
EDITED = b'{"msg_id":"1","timestamp":1793491200001,"chat_type":"chat","note":"edited"}'


@pytest.mark.parametrize("spill", ["", "1"], ids=["in memory", "settled on disk"])
def test_a_refetch_served_fewer_records_keeps_those_only_the_earlier_pull_got(
    server, tmp_path, caplog, monkeypatch, spill
):
    """An hour pulled with two records, served on `--refetch` with one: the new file replaced
    the earlier one, exit 0 and no word, and the record the source stopped serving was gone."""
    monkeypatch.setenv("AUDITOR_SETTLE_SPILL_RECORDS", spill)
    assert pull(server, tmp_path, gzip.compress(RECORD + b"\n" + SECOND + b"\n")).exit_code == 0

    result = pull(server, tmp_path, gzip.compress(SECOND + b"\n"), "--refetch")

    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{LABEL}.jsonl").read_bytes() == RECORD + b"\n" + SECOND + b"\n"
    entry = json.loads((tmp_path / "checkpoint.json").read_bytes())["hours"][LABEL]
    assert (entry["records"], entry["earlier"], entry["conflicts"]) == (2, 1, {})
    assert f"{LABEL}  pulled          2 records  (1 no longer served)" in result.stdout
    assert (
        f"hour {LABEL}: the source no longer serves 1 record(s) an earlier pull got; kept "
        "beside the 1 it serves now"
    ) in caplog.messages
    again = pull(server, tmp_path, b"")  # a later pull lists the hour as it was left
    assert f"{LABEL}  done            2 records  (1 no longer served)" in again.stdout


def test_a_record_changed_at_the_source_since_an_earlier_pull_is_kept_in_both_versions(
    server, tmp_path
):
    assert pull(server, tmp_path, gzip.compress(RECORD + b"\n")).exit_code == 0

    result = pull(server, tmp_path, gzip.compress(EDITED + b"\n"), "--refetch")

    assert result.exit_code == 0, result.output
    lines = (tmp_path / f"{LABEL}.jsonl").read_bytes().splitlines()
    assert sorted(lines) == sorted([RECORD, EDITED])
    entry = json.loads((tmp_path / "checkpoint.json").read_bytes())["hours"][LABEL]
    assert (entry["records"], entry["earlier"], entry["conflicts"]) == (2, 1, {"1": 2})
    assert (tmp_path / "conflicts.jsonl").read_bytes() == (
        f'{{"hour":"{LABEL}","msg_id":"1","variants":2}}\n'.encode()
    )


def test_a_refetch_serving_every_record_again_adds_nothing_and_says_nothing(server, tmp_path):
    served = gzip.compress(RECORD + b"\n" + SECOND + b"\n")
    assert pull(server, tmp_path, served).exit_code == 0
    before = (tmp_path / "checkpoint.json").read_bytes()

    result = pull(server, tmp_path, served, "--refetch")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "checkpoint.json").read_bytes() == before
    assert f"{LABEL}  pulled          2 records\n" in result.stdout


def test_a_file_cut_short_then_said_not_to_exist_stops_the_hour_rather_than_pass_it_empty(
    server, tmp_path, one_link
):
    result = pull(server, tmp_path, gzip.compress(RECORD + b"\n" * 1000)[:-20])

    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"auditor: error: hour {LABEL}: corrupt gzip (cut short), then the source answered that "
        "the hour has no file (404 storage_object_not_found), though it had served one: run "
        "again later"
    )
    assert not (tmp_path / f"{LABEL}.jsonl").exists()


@pytest.mark.parametrize("early", [False, True], ids=["stray after", "stray before"])
def test_a_msg_id_served_with_another_content_by_another_hour_of_the_run_is_reported(
    server, tmp_path, early
):
    """An edited message in two hour files (the second keeps its send time): a run over both
    hours archived both versions without a word, where two runs, one an hour, report it."""
    sent = HOUR.end_ms + 5 if early else HOUR.start_ms + 5
    first = b'{"msg_id":"7","timestamp":%d,"chat_type":"chat","note":"sent"}' % sent
    edited = first.replace(b"sent", b"edited")
    server.hour_files = {LABEL: gzip.compress(first + b"\n"), "2026110101": gzip.compress(edited)}
    two_hours = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T02:00Z"]
    try:
        summary, findings = run_and_verify(server, tmp_path, b"", two_hours)
    finally:
        server.hour_files = None

    assert summary["records"] == 2
    (conflict,) = [finding for finding in findings if finding["rule"] == "conflicting-content"]
    assert conflict["msg_id"] == "7"
    assert conflict["message"] == (
        "msg_id 7 arrived with different contents; every variant is archived"
    )


def test_a_run_over_an_hour_served_as_two_different_broken_files_archives_both_files_records(
    server, tmp_path
):
    """The first look has a record the second lacks, each has a line that is not a record: the
    run kept the second file alone (1 of 2 records archived) and said nothing of the first."""
    other = RECORD.replace(b'"msg_id":"1"', b'"msg_id":"2"')
    first = RECORD + b"\n" + other + b"\n{cut short\n"
    second = RECORD + b"\n{cut shorter\n"
    server.turns = [gzip.compress(first)]
    try:
        summary, findings = run_and_verify(server, tmp_path, second)
    finally:
        server.turns = None

    assert summary["records"] == 2
    (differ,) = [finding for finding in findings if finding["rule"] == "hour-files-differ"]
    assert differ["severity"] == "medium"
    assert differ["details"] == {"hour": "2026-11-01T00:00:00Z", "files": 2}
    bag = Path(summary["bag"])
    kept = (bag / "data" / "unreadable" / f"{LABEL}.txt").read_bytes()
    assert kept == b"{cut shorter\n{cut short\n"


def test_a_pull_of_an_hour_served_as_two_different_broken_files_says_so_and_keeps_it(
    server, tmp_path
):
    other = RECORD.replace(b'"msg_id":"1"', b'"msg_id":"2"')
    server.turns = [gzip.compress(RECORD + b"\n" + other + b"\n{cut short\n")]
    try:
        result = pull(server, tmp_path, gzip.compress(RECORD + b"\n{cut shorter\n"))
    finally:
        server.turns = None

    assert result.exit_code == 0, result.output
    assert f"{LABEL}  pulled          2 records  (2 unreadable, 2 different files)" in result.stdout
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_bytes())
    assert checkpoint["hours"][LABEL]["files"] == 2
