"""Writing bags: what an intact run holds, what stock tools say about it, and how it is written."""

from __future__ import annotations

import hashlib
import math
import os
import re
import subprocess
import sys
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import bagit
import orjson
import pytest
from test_archive_support import (
    build_bag,
    make_keys,
    openssl_verify,
    record_files,
    sha256sum_check,
    ssh_verify,
)

from auditor.archive import layout
from auditor.archive.bag import BagWriter, partial_path_for, publish_bag
from auditor.archive.baginfo import parse_bag_info
from auditor.archive.chain import verify_chain
from auditor.archive.keys import derive_salt_key
from auditor.archive.lines import prepare_all
from auditor.archive.merkle import EMPTY_ROOT, leaf_hash, root_of
from auditor.archive.verify import verify_bag
from auditor.emulator.dataset import SyntheticHistory
from auditor.errors import ConfigError, InputError
from auditor.partitions import HOUR_MS, Partition


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def bag(keys, tmp_path_factory):
    return build_bag(tmp_path_factory.mktemp("runs"), keys[1])


def _info(path: Path) -> dict[str, str]:
    return parse_bag_info((path / layout.BAG_INFO).read_bytes(), layout.BAG_INFO)[0]


def test_an_untouched_bag_verifies(bag, keys):
    report = verify_bag(bag.path, keys[1].public_key())

    assert report.problems == ()
    assert report.record_count == 240
    assert report.merkle_root == bag.merkle_root


def test_an_untouched_bag_passes_sha256sum_openssl_and_ssh_keygen(bag, keys):
    files = keys[0]

    results = {
        "tagmanifest": sha256sum_check(bag.path, layout.TAGMANIFEST),
        "manifest": sha256sum_check(bag.path, layout.MANIFEST),
        "openssl": openssl_verify(bag.path, files.public_key),
        "ssh-keygen": ssh_verify(bag.path, files.allowed_signers),
    }

    assert {name: result.returncode for name, result in results.items()} == dict.fromkeys(
        results, 0
    )
    assert b"FAILED" not in results["manifest"].stdout


def test_an_untouched_bag_validates_with_the_bagit_package(bag):
    bagit.Bag(str(bag.path)).validate()


def test_the_commands_in_verify_txt_succeed_as_written(bag, keys):
    text = (bag.path / layout.VERIFY_TXT).read_text()
    commands = [
        re.sub(r"\\\n\s*", "", block).strip()
        for block in re.findall(
            r"^ {5}((?:openssl|ssh-keygen|sha256sum) (?:.*\\\n)*.*)$", text, flags=re.M
        )
    ]
    environment = {"PUBKEY": str(keys[0].public_key), "SIGNERS": str(keys[0].allowed_signers)}

    results = [
        subprocess.run(
            ["bash", "-c", command],
            cwd=bag.path,
            capture_output=True,
            env={**os.environ, **environment},
            check=False,
        )
        for command in commands
    ]

    assert len(commands) == 5
    assert [result.returncode for result in results] == [0] * 5, [r.stderr for r in results]
    assert keys[0].fingerprint in results[0].stdout.decode()  # step 0: `ssh-keygen -lf`
    assert f"Archive: {bag.name} (run 1, 240 records, Merkle root {bag.merkle_root})" in text


def test_bag_info_records_counts_the_root_the_chain_and_the_source(bag, keys):
    info = _info(bag.path)

    assert {
        label: info[label]
        for label in (
            layout.SEQUENCE,
            layout.PREVIOUS,
            layout.RECORD_COUNT,
            layout.PARTITION_COUNT,
            layout.TREE_SIZE,
            layout.MERKLE_ROOT,
            layout.ATTACHMENTS_MODE,
            layout.ATTACHMENT_COUNT,
            layout.FINDINGS_COUNT,
            layout.FINGERPRINT,
            "Source-API",
            "Window-Since",
            "Schema-SHA256-body-txt.json",
        )
    } == {
        layout.SEQUENCE: "1",
        layout.PREVIOUS: "0" * 64,
        layout.RECORD_COUNT: "240",
        layout.PARTITION_COUNT: "24",
        layout.TREE_SIZE: "240",
        layout.MERKLE_ROOT: bag.merkle_root,
        layout.ATTACHMENTS_MODE: "included",
        layout.ATTACHMENT_COUNT: str(bag.attachment_count),
        layout.FINDINGS_COUNT: "2",
        layout.FINGERPRINT: keys[0].fingerprint,
        "Source-API": "emulator",
        "Window-Since": "2026-11-01T00:00:00Z",
        "Schema-SHA256-body-txt.json": "ab" * 32,
    }
    assert bag.attachment_count > 50


def test_each_line_is_the_record_as_received_with_its_salt_and_leaf_index(bag, keys):
    history = SyntheticHistory(messages=240)
    lines = [line for path in record_files(bag.path) for line in path.read_bytes().splitlines()]
    parsed = [orjson.loads(line) for line in lines]

    assert [value["record"] for value in parsed] == list(history)
    assert [value["seq"] for value in parsed] == list(range(240))
    assert root_of(leaf_hash(line) for line in lines).hex() == bag.merkle_root
    assert all(re.fullmatch(r"[0-9a-f]{32}", value["salt"]) for value in parsed)


def test_attachments_are_stored_once_by_content_hash_and_indexed(bag):
    index = [orjson.loads(line) for line in (bag.path / layout.ATTACHMENT_INDEX).open("rb")]
    stored = sorted(path.name for path in (bag.path / layout.ATTACHMENTS).iterdir())

    assert sorted({entry["sha256"] for entry in index}) == stored
    assert all(
        (bag.path / layout.ATTACHMENTS / entry["sha256"]).stat().st_size == entry["size"]
        for entry in index
    )
    assert set(index[0]) == {"msg_id", "uuid", "sha256", "size"}


def test_an_attachment_given_as_a_file_is_copied_in_pieces_and_stored_once(keys, tmp_path):
    """An attachment may be as large as the client's cap (1 GiB): the coordinator copies it from
    the spool in pieces instead of reading it whole, and a file the bag holds is not copied."""
    data = os.urandom(1 << 20) * 24
    digest = hashlib.sha256(data).hexdigest()
    spooled = tmp_path / "spool" / digest
    spooled.parent.mkdir()
    spooled.write_bytes(data)
    writer = BagWriter(tmp_path / "out", "run-000001", keys[1], "0" * 64, 1, {})

    tracemalloc.start()
    try:
        first = writer.add_attachment(spooled, {"msg_id": "1"})
        second = writer.add_attachment(spooled, {"msg_id": "2"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    summary = writer.finish()

    assert first == second == digest
    assert peak < 4 << 20
    assert (summary.path / layout.ATTACHMENTS / digest).read_bytes() == data
    assert sorted(p.name for p in (summary.path / layout.ATTACHMENTS).iterdir()) == [digest]
    index = [orjson.loads(line) for line in (summary.path / layout.ATTACHMENT_INDEX).open("rb")]
    assert [(entry["msg_id"], entry["size"]) for entry in index] == [
        ("1", 24 << 20),
        ("2", 24 << 20),
    ]
    assert verify_bag(summary.path, keys[1].public_key()).problems == ()


def test_an_empty_run_verifies_and_validates(keys, tmp_path):
    summary = build_bag(tmp_path, keys[1], messages=0)

    report = verify_bag(summary.path, keys[1].public_key())

    assert report.problems == ()
    assert summary.merkle_root == EMPTY_ROOT.hex()
    assert len(record_files(summary.path)) == 24
    bagit.Bag(str(summary.path)).validate()


def test_a_run_with_no_partition_at_all_verifies(keys, tmp_path):
    summary = BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {}).finish()

    assert verify_bag(summary.path, keys[1].public_key()).problems == ()
    assert summary.record_count == 0


def test_a_run_without_attachments_verifies_and_says_so(keys, tmp_path):
    summary = build_bag(tmp_path, keys[1], attachments=False)

    report = verify_bag(summary.path, keys[1].public_key())

    assert report.problems == ()
    info = _info(summary.path)
    assert (info[layout.ATTACHMENTS_MODE], info[layout.ATTACHMENTS_SKIPPED]) == (
        "skipped",
        "--attachments skip",
    )
    assert list((summary.path / layout.ATTACHMENTS).iterdir()) == []
    bagit.Bag(str(summary.path)).validate()


def test_a_run_killed_half_way_leaves_nothing_that_looks_like_a_finished_bag(keys, tmp_path):
    writer = BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {})
    writer.add_partition("2026110100", SyntheticHistory(messages=20))
    del writer  # the process dies here: nothing is finished, signed or renamed

    assert [path.name for path in tmp_path.iterdir()] == [".run-000001.partial"]
    with pytest.raises(InputError, match="holds no bag"):
        verify_chain(tmp_path, keys[1].public_key())


def test_the_next_attempt_replaces_a_killed_runs_partial_folder(keys, tmp_path):
    BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {}).add_partition(
        "2026110100", SyntheticHistory(messages=20)
    )

    summary = build_bag(tmp_path, keys[1])

    assert sorted(path.name for path in tmp_path.iterdir()) == ["run-000001"]
    assert verify_bag(summary.path, keys[1].public_key()).problems == ()


def test_an_error_inside_the_writer_context_removes_the_partial_bag(keys, tmp_path):
    with (
        pytest.raises(RuntimeError),
        BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {}) as writer,
    ):
        writer.add_partition("2026110100", SyntheticHistory(messages=5))
        raise RuntimeError("source failed")

    assert list(tmp_path.iterdir()) == []


def test_a_finished_bag_can_wait_under_its_partial_name_until_published(keys, tmp_path):
    writer = BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {})
    writer.add_partition("2026110100", SyntheticHistory(messages=5))

    summary = writer.finish(publish=False)
    final = publish_bag(summary.path, tmp_path / "run-000001")

    assert summary.path == partial_path_for(tmp_path, "run-000001")
    assert publish_bag(summary.path, final) == final
    assert [path.name for path in tmp_path.iterdir()] == ["run-000001"]
    assert verify_bag(final, keys[1].public_key()).problems == ()


def test_an_existing_bag_is_never_replaced(keys, bag):
    with pytest.raises(ConfigError, match="a bag of that name already exists"):
        BagWriter(bag.path.parent, bag.name, keys[1], "0" * 64, 1, {})


def test_partitions_must_be_added_in_order(keys, tmp_path):
    writer = BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {})
    writer.add_partition("2026110101", [])

    with pytest.raises(ValueError, match="comes after '2026110101'"):
        writer.add_partition("2026110100", [])
    writer.abort()


def test_a_record_holding_an_integer_beyond_a_double_is_archived_exactly(keys, tmp_path):
    big = {"msg_id": 2**70 + 1, "timestamp": 1_793_491_200_000, "payload": {"n": -(2**64) - 5}}

    summary = build_bag(tmp_path, keys[1], messages=10, extra_records=[big])

    first = record_files(summary.path)[0].read_bytes()
    assert b'"msg_id":1180591620717411303425' in first
    assert b'"n":-18446744073709551621' in first
    assert verify_bag(summary.path, keys[1].public_key()).problems == ()


@pytest.mark.parametrize(
    "info",
    [{"Merkle-Root": "00"}, {"Bad Label": "x"}, {"Note": "two\nlines"}, {"Run-Sequence": "9"}],
)
def test_bag_info_from_the_caller_cannot_forge_or_break_the_auditors_fields(keys, tmp_path, info):
    with pytest.raises(ConfigError, match="bag-info"):
        BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, info)


def test_a_record_that_is_not_json_is_refused_naming_its_partition(keys, tmp_path):
    writer = BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {})

    with pytest.raises(InputError, match="partition 2026110100: record 2 cannot be archived"):
        writer.add_partition("2026110100", [{"lat": 1.5}, {"lat": math.nan}])
    writer.abort()


def _prepare_hour(arguments):
    start, salt_key = arguments
    history = SyntheticHistory(messages=240)
    return list(prepare_all(history.records_between(start, start + HOUR_MS), salt_key))


def test_lines_prepared_by_parallel_workers_make_the_same_bag(keys, bag, tmp_path):
    history = SyntheticHistory(messages=240)
    starts = list(range(history.start_ms, history.end_ms, HOUR_MS))
    salt_key = derive_salt_key(keys[1])
    writer = BagWriter(tmp_path, "run-000001", keys[1], "0" * 64, 1, {})

    with ProcessPoolExecutor(max_workers=2) as pool:
        prepared = list(pool.map(_prepare_hour, [(start, salt_key) for start in starts]))
    for start, lines in zip(starts, prepared, strict=True):
        writer.add_partition_lines(Partition(start).label(), lines)
    summary = writer.finish()

    assert summary.merkle_root == bag.merkle_root
    assert [path.read_bytes() for path in record_files(summary.path)] == [
        path.read_bytes() for path in record_files(bag.path)
    ]


def _peak_bytes(out: Path, key, count: int) -> int:
    base = SyntheticHistory(messages=4).record(1)

    def records():
        for number in range(count):
            yield {**base, "msg_id": str(number), "timestamp": number}

    writer = BagWriter(out, f"run-{count}", key, "0" * 64, 1, {})
    tracemalloc.start()
    writer.add_partition("2026110100", records())
    writer.finish()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_peak_memory_does_not_grow_with_the_number_of_records(keys, tmp_path):
    """7,500 records more: anything kept a record (a pointer and an object, 40 bytes or more)
    would be 300 KB and more, far past the margin."""
    small = _peak_bytes(tmp_path, keys[1], 2_500)
    large = _peak_bytes(tmp_path, keys[1], 10_000)

    assert large - small < 64 * 1024, (small, large)


def test_the_bag_holds_no_secret(keys, bag):
    secret = keys[0].private_key.read_bytes()
    salt_key = derive_salt_key(keys[1])
    blobs = [path.read_bytes() for path in bag.path.rglob("*") if path.is_file()]

    assert not any(salt_key in blob or salt_key.hex().encode() in blob for blob in blobs)
    assert not any(b"PRIVATE KEY" in blob or secret in blob for blob in blobs)


def test_the_verifier_loads_no_writer_code():
    code = (
        "import sys, auditor.archive.verify, auditor.archive.chain, auditor.archive.proof\n"
        "writer = ['bag', 'keys', 'lines', 'signing', 'instructions']\n"
        "print(sorted(m for m in writer if f'auditor.archive.{m}' in sys.modules))\n"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)

    assert result.stdout == b"[]\n"
