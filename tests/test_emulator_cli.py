"""`auditor emulator` as a command: its start line, its ready file, a clean exit on SIGTERM."""

import gzip
import os
import re
import signal
import subprocess
import sys
import time

import orjson
import requests
from click.testing import CliRunner

from auditor.cli import main
from auditor.emulator.dataset import SyntheticHistory

LINE = re.compile(
    r"emulator listening on (http://127\.0\.0\.1:\d+) \(acme/chat, 50 messages "
    r"from 2026-11-01T00:00:00Z to 2026-11-03T00:00:00Z\)\n"
)


def start(*args, env=None):
    command = [sys.executable, "-c", "from auditor.cli import main; main()", "emulator"]
    return subprocess.Popen(
        [*command, "--messages", "50", "--days", "2", "--org", "acme", "--app", "chat", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def token_answer(base_url: str, secret: str) -> requests.Response:
    """The emulator's answer to a token request with `secret`."""
    return requests.post(
        f"{base_url}/acme/chat/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "demo-client",
            "client_secret": secret,
        },
        timeout=10,
    )


def test_the_command_prints_its_line_serves_and_exits_0_on_sigterm(tmp_path):
    ready = tmp_path / "ready"
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t-from-file\n")
    process = start("--ready-file", str(ready), "--client-secret-file", str(secret_file))
    try:
        line = process.stdout.readline()
        base_url = LINE.fullmatch(line).group(1)
        answer = token_answer(base_url, "s3cr3t-from-file")
        assert ready.read_text() == base_url + "\n"
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "s3cr3t" not in line + stdout + stderr


def test_the_client_secret_comes_from_the_environment():
    process = start(env={"EASEMOB_CLIENT_SECRET": "from-env"})
    try:
        base_url = LINE.fullmatch(process.stdout.readline()).group(1)
        statuses = [
            token_answer(base_url, secret).status_code for secret in ("from-env", "demo-secret")
        ]
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert statuses == [200, 400]
    assert process.returncode == 0


def test_a_host_that_is_not_loopback_is_refused_without_allow_remote():
    result = CliRunner().invoke(main, ["emulator", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert result.output.startswith("auditor: error: --host 0.0.0.0 is not a loopback address")


def test_a_start_off_the_hour_is_refused():
    result = CliRunner().invoke(main, ["emulator", "--start", "2026-11-01T00:30"])
    assert result.exit_code == 2
    assert "is not on a whole hour" in result.output


def test_an_hour_zone_of_some_minutes_is_refused():
    result = CliRunner().invoke(main, ["emulator", "--hour-timezone", "+05:45"])
    assert result.exit_code == 2
    assert "hour time zone '+05:45' is not a whole number of hours" in result.output


def test_a_port_in_use_is_one_clear_line():
    process = start()
    try:
        port = LINE.fullmatch(process.stdout.readline()).group(1).rsplit(":", 1)[1]
        began = time.monotonic()
        result = CliRunner().invoke(main, ["emulator", "--port", port])
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert result.exit_code == 2
    assert result.output.startswith(f"auditor: error: cannot listen on 127.0.0.1:{port}")
    assert time.monotonic() - began < 5


def test_a_history_reaching_past_the_year_9000_is_refused():
    result = CliRunner().invoke(main, ["emulator", "--start", "9999-12-31T23:00Z", "--days", "5"])
    assert result.exit_code == 2
    assert result.output == (
        "auditor: error: --start 9999-12-31T23:00Z and --days 5 reach past the year 9000\n"
    )


def test_the_dataset_rates_plant_what_they_say_in_the_served_history():
    """`--defect-rate 1 --keyword-rate 1 --pii-rate 0`: every record served breaks its schema
    and every text body holds a term, as the history's truth with those rates says; so a run
    with a finding a record needs no special policy."""
    process = start("--defect-rate", "1", "--keyword-rate", "1", "--pii-rate", "0")
    try:
        base_url = LINE.fullmatch(process.stdout.readline()).group(1)
        token = token_answer(base_url, "demo-secret").json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        served = []
        for hour in range(48):
            label = f"{2026110100 + (hour // 24) * 100 + hour % 24}"
            answer = requests.get(
                f"{base_url}/acme/chat/chatmessages/{label}", headers=headers, timeout=10
            )
            if answer.status_code == 200:
                data = requests.get(answer.json()["data"][0]["url"], timeout=10).content
                served += [orjson.loads(line) for line in gzip.decompress(data).splitlines()]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    history = SyntheticHistory(
        messages=50, days=2, org="acme", app="chat", defect_rate=1, keyword_rate=1, pii_rate=0
    )
    truths = [history.truth(index) for index in range(len(history))]
    assert sorted(served, key=orjson.dumps) == sorted(
        (truth.record for truth in truths), key=orjson.dumps
    )
    assert all(truth.defect is not None for truth in truths)
    assert all(truth.pii == () for truth in truths)
    texts = [t for t in truths if any(b.get("type") == "txt" for b in _bodies(t.record))]
    assert texts and all(truth.keywords for truth in texts)


def _bodies(record):
    payload = record.get("payload")
    bodies = payload.get("bodies") if isinstance(payload, dict) else None
    return [body for body in bodies if isinstance(body, dict)] if isinstance(bodies, list) else []
