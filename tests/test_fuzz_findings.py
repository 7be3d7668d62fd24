"""What the first fuzzing session (fuzz25, atheris) found, each as the smallest input that showed
it: every one stopped a command as an internal error (exit 70) where bad input must be one
clear line and a documented exit code, or stopped a run over one record it should archive.

Most share a root: CPython refuses to turn text of more than 4,300 digits into an `int`
(ValueError, CVE-2020-10735), so every `int(text)` on outside data needs a length bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import build_bag, make_keys, ssh_verify

from auditor.archive import layout
from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.archive.verify import verify_bag
from auditor.cli import main
from auditor.errors import SourceError
from auditor.partitions import HOUR_MS, Partition
from auditor.resources import example_policy
from auditor.sources.easemob import EasemobClient, RetryPolicy
from auditor.sources.legacy import LegacyQuerySource
from auditor.yamlsafe import SafeLoader

DIGITS_5000 = "1" * 5000  # past CPython's 4,300-digit limit on int(text)
HOUR = Partition(1_793_491_200_000)


def invoke(*args: object):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def one_error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor: error: "), result.stderr
    return lines[0].removeprefix("auditor: error: ")


# -- YAML a tag or a number cannot be read as: policy and config files -------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("!!int abc", "'abc' cannot be read as int"),
        ("!!int ''", "'' cannot be read as int"),
        ("!!float abc", "'abc' cannot be read as float"),
        ("!!float ''", "'' cannot be read as float"),
        ("!!bool maybe", "'maybe' cannot be read as bool"),
        ("!!timestamp x", "'x' cannot be read as timestamp"),
        ("!!timestamp 2026-02-30", "'2026-02-30' cannot be read as timestamp"),
        (DIGITS_5000, "cannot be read as int"),
        ("!!set [1]", "expected a mapping node, but found sequence"),
        ("!!map [1]", "expected a mapping node, but found sequence"),
    ],
)
def test_a_policy_value_its_tag_cannot_read_is_one_line_and_exit_2(tmp_path, value, said):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: {value}\n")
    message = one_error_line(invoke("policy", "check", policy))
    assert message.startswith(f"{policy}:1: not valid YAML: ") and said in message


def test_a_bug_while_yaml_builds_a_value_is_an_internal_error_not_the_files_fault(
    tmp_path, monkeypatch
):
    """yamlsafe took any ValueError, KeyError, AttributeError, IndexError or TypeError raised
    while a value was built for the file's fault ("cannot be read as str", exit 2): a bug, here
    a str constructor that fails, must stop the command as one (exit 70)."""

    def broken(loader, node):
        raise AttributeError("'NoneType' object has no attribute 'value'")

    monkeypatch.setitem(SafeLoader.yaml_constructors, "tag:yaml.org,2002:str", broken)
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\n")
    result = invoke("policy", "check", policy)
    assert result.exit_code == 70, result.output
    assert "internal error" in result.stderr and "cannot be read" not in result.stderr


def test_a_config_number_of_5000_digits_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text(f"source:\n  base_url: http://127.0.0.1:9\n  timeout: {DIGITS_5000}\n")
    message = one_error_line(invoke("run", "--config", config))
    assert message.startswith(f"{config}:3: not valid YAML") and "cannot be read as int" in message


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ("1: x\nsource: {}\n", "unknown section(s) 1"),
        ("source:\n  1: x\n  foo: y\n", "unknown key source.1;"),
        ("source:\n  !!binary em9uZQ==: x\n  foo: y\n", "unknown key source.b'zone';"),
        ("apps:\n  - source: {org: o, app: a, 1: x, foo: y}\n", "unknown key apps[0].source.1"),
    ],
)
def test_a_config_key_that_is_not_text_is_one_line_and_exit_2(tmp_path, document, said):
    """Unknown keys were sorted to name the first, and 1 or b'zone' beside text cannot be."""
    config = tmp_path / "auditor.yaml"
    config.write_text(document)
    result = CliRunner().invoke(
        main, ["run", "--config", str(config)], env={"EASEMOB_CLIENT_SECRET": "fuzz-secret"}
    )
    assert said in one_error_line(result)


# -- a record whose timestamp is text of 5,000 digits: archived, not a stopped run -------------


def test_a_timestamp_of_5000_digits_is_archived_with_its_finding(tmp_path):
    keys = generate_key_files(tmp_path / "keys", "fuzz@test")
    odd = {"msg_id": "1", "timestamp": DIGITS_5000, "from": "a", "to": "b", "chat_type": "chat",
           "payload": {"bodies": [{"type": "txt", "msg": "hi"}]}}  # fmt: skip
    fine = {**odd, "msg_id": "2", "timestamp": HOUR.start_ms + 5}
    export = tmp_path / f"{HOUR.label()}.jsonl"  # the odd record stays in the file's hour
    export.write_bytes(orjson.dumps(odd) + b"\n" + orjson.dumps(fine) + b"\n")
    out = tmp_path / "archive"
    ran = invoke(
        "run", "--from", export, "--policies", example_policy(), "--key", keys.private_key,
        "--out", out, "--state", tmp_path / "state.db", "--fail-on", "none", "--quiet",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    (bag,) = out.glob("run-*")
    archived = [
        orjson.loads(line)["record"]
        for path in (bag / "data" / "records").glob("*.jsonl")
        for line in path.read_bytes().splitlines()
    ]
    assert sorted(record["msg_id"] for record in archived) == ["1", "2"]
    findings = (bag / "data" / "findings.jsonl").read_text()
    assert '"msg_id":"1"' in findings.replace(" ", "") and "timestamp" in findings
    assert verify_bag(bag, (load_public_key(keys.public_key),)).ok


# -- a server that lies: over real HTTP on loopback --------------------------------------------


@contextmanager
def server(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A loopback server giving a token to every POST and `answer` to every GET."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"access_token":"fuzz-token","expires_in":3600}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            answer(self)

        def log_message(self, *args):
            pass

    running = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    running.daemon_threads = True
    threading.Thread(target=running.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{running.server_address[1]}"
    finally:
        running.shutdown()
        running.server_close()


def client(url: str) -> EasemobClient:
    return EasemobClient(url, "o", "a", "id", "fuzz-secret", retry=RetryPolicy(max_retries=0))


def test_a_content_length_of_5000_digits_is_a_source_error(tmp_path):
    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "9" * 5000)
        handler.end_headers()
        handler.wfile.write(b'{"entities":[]}')
        handler.close_connection = True

    with server(answer) as url, pytest.raises(SourceError, match="a length of 5,000 digits"):
        client(url).legacy_page("select *", 10)


def test_a_legacy_entity_beyond_what_orjson_writes_is_archived_like_any_record():
    stamp = HOUR.start_ms + 1
    big = b'{"msg_id":"1","timestamp":%d,"n":123456789012345678901234}' % stamp
    deep = b'{"msg_id":"2","timestamp":%d,"ext":%s1%s}' % (stamp + 1, b"[" * 300, b"]" * 300)
    page = b'{"entities":[%s,%s,{"msg_id":"3","timestamp":%d}]}' % (big, deep, stamp + 2)

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.write(page)

    with server(answer) as url:
        result = LegacyQuerySource(client(url)).fetch(HOUR)
    assert [record["msg_id"] for record in result.records] == ["1", "2", "3"]
    assert result.records[0]["n"] == 123456789012345678901234 and not result.unreadable
    assert HOUR.start_ms <= stamp < HOUR.start_ms + HOUR_MS


# -- a damaged bag: a problem (exit 1), never an internal error --------------------------------


def test_verify_reports_a_run_sequence_of_5000_digits(tmp_path):
    files, key = make_keys(tmp_path / "keys")
    bag = build_bag(tmp_path / "runs", key, messages=24).path
    info = bag / layout.BAG_INFO
    lines = info.read_text().splitlines()
    info.write_text(
        "\n".join(
            f"{layout.SEQUENCE}: {DIGITS_5000}" if line.startswith(layout.SEQUENCE) else line
            for line in lines
        )
        + "\n"
    )
    report = verify_bag(bag, (load_public_key(files.public_key),))
    assert not report.ok and report.sequence is None
    shown = [problem.message for problem in report.problems]
    assert f"{layout.SEQUENCE} is not a positive integer" in shown
    result = invoke("verify", "--pubkey", files.public_key, bag)
    assert result.exit_code == 1 and "internal error" not in result.output
    assert Path(bag).is_dir()


# -- a record with a lone surrogate: said so, not "nested too deeply" --------------------------


def test_validate_names_a_lone_surrogate_as_what_kept_the_record_unchecked(tmp_path):
    export = tmp_path / "export.jsonl"  # a 20-digit run sends the line to the exact parser
    export.write_bytes(b'{"msg_id":"1","timestamp":1,"s":"\\ud800","n":12345678901234567890}\n')
    found = tmp_path / "findings.jsonl"
    result = invoke("validate", export, "--findings", found)
    assert result.exit_code in (0, 1) and "internal error" not in result.output, result.output
    (finding,) = [orjson.loads(line) for line in found.read_bytes().splitlines()]
    assert "lone surrogate" in finding["message"] and "nested" not in finding["message"]


@pytest.mark.parametrize("label", ["Attachments-Skipped", "Record-Count"])
def test_report_renders_a_bag_whose_count_has_5000_digits(tmp_path, label):
    _files, key = make_keys(tmp_path / "keys")
    window = {"Window-Until": "2026-11-02T00:00:00Z"}
    bag = build_bag(tmp_path / "runs", key, messages=24, info=window).path
    info = bag / layout.BAG_INFO
    kept = [line for line in info.read_text().splitlines() if not line.startswith(f"{label}:")]
    info.write_text("\n".join([*kept, f"{label}: {DIGITS_5000}"]) + "\n")
    result = invoke("report", bag, "--out", tmp_path / "report")
    assert result.exit_code == 1, result.output  # the bag's high finding, as --fail-on says
    assert "internal error" not in result.output
    assert (tmp_path / "report" / "report.html").is_file()


@pytest.mark.parametrize(
    ("change", "stock_reads_it", "said"),
    [
        (lambda text: "\n" + text, False, "ssh-keygen cannot read it"),  # "missing header"
        (lambda text: text.replace("\n", "\r\n"), False, "changed to CRLF in transit"),  # too
        (lambda text: text.replace("\n", "\n  ", 1), True, ""),  # an indented base64 line
        (lambda text: text, True, ""),
    ],
)
def test_verify_reads_the_ssh_signature_as_ssh_keygen_does(tmp_path, change, stock_reads_it, said):
    """verify passed a signature file with a blank line first, which `ssh-keygen -Y verify`,
    the stock check VERIFY.txt gives legal, refuses."""
    files, key = make_keys(tmp_path / "keys")
    bag = build_bag(tmp_path / "runs", key, messages=24).path
    signature = bag / layout.SSH_SIGNATURE
    signature.write_bytes(change(signature.read_text()).encode())
    assert (ssh_verify(bag, files.allowed_signers).returncode == 0) is stock_reads_it
    report = verify_bag(bag, (load_public_key(files.public_key),))
    assert report.ok is stock_reads_it
    if not stock_reads_it:
        (problem,) = report.problems
        assert problem.file.endswith(layout.SSH_SIGNATURE)
        assert said in problem.message
