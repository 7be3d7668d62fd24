"""`auditor validate` of a bag checks the records it archived, as `scan` reads them (probe30:
given a bag, it read the archived lines' wrappers, the findings and the attachment index as
records: the demo's two bags, 3,003 records, came out as 8,613 records, every one invalid, and
1,325 lines that were not records)."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import build_bag, make_keys, record_files

from auditor.cli import main
from auditor.validation import validate_files


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    key = make_keys(tmp_path_factory.mktemp("keys"))[1]
    root = tmp_path_factory.mktemp("runs")
    first = build_bag(root, key, "run-000001", 1, messages=48)
    build_bag(root, key, "run-000002", 2, first.tagmanifest_sha256, messages=48, seed=2)
    return root


def _archived(bag):
    """The records the bag archived, as a plain export of them."""
    return [
        orjson.loads(line)["record"]
        for path in record_files(bag)
        for line in path.read_bytes().splitlines()
    ]


def _export(records, path):
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def test_a_bag_is_validated_as_the_records_it_archived(runs, tmp_path):
    bag = runs / "run-000001"
    export = _export(_archived(bag), tmp_path / "export.jsonl")

    of_bag = validate_files([bag])
    of_export = validate_files([export])

    assert of_bag.unparsed == 0
    assert of_bag.records == len(_archived(bag))
    assert (of_bag.by_type, of_bag.findings) == (of_export.by_type, of_export.findings)


def test_a_folder_of_bags_and_a_record_file_named_alone_are_read_as_archived(runs, tmp_path):
    both = _archived(runs / "run-000001") + _archived(runs / "run-000002")
    export = _export(both, tmp_path / "export.jsonl")
    one_file = record_files(runs / "run-000002")[0]

    of_folder = validate_files([runs])
    of_file = validate_files([one_file])

    assert of_folder.by_type == validate_files([export]).by_type
    assert of_folder.unparsed == of_file.unparsed == 0
    assert of_file.records == len(one_file.read_bytes().splitlines())


def test_the_command_prints_the_bag_s_record_count(runs):
    result = CliRunner().invoke(main, ["validate", str(runs / "run-000001")])

    total = result.stdout.splitlines()[-1].split()
    assert total[:2] == ["total", str(len(_archived(runs / "run-000001")))], result.output
    assert "not JSON records" not in result.output


def test_a_copy_of_a_bag_in_the_folder_is_warned_of(runs, tmp_path, caplog):
    """A Finder-style `run-000002 copy` beside its bag was read as one more run without a word:
    4,505 records for the demo's 3,003 (probe30). It is still read, and named."""
    import shutil

    folder = tmp_path / "out"
    shutil.copytree(runs, folder)
    shutil.copytree(runs / "run-000002", folder / "run-000002 copy")
    records = len(_archived(runs / "run-000001")) + 2 * len(_archived(runs / "run-000002"))

    with caplog.at_level("WARNING", logger="auditor.bag_inputs"):
        summary = validate_files([folder])

    assert summary.records == records
    assert caplog.messages == [
        f"{folder / 'run-000002 copy'} is a copy of {folder / 'run-000002'} (the same "
        "tagmanifest-sha256.txt): its records are read twice"
    ]


def test_a_bag_of_the_same_run_sequence_with_other_bytes_is_warned_of(runs, tmp_path, caplog):
    """A bag of the same run that is not a byte copy (written again, edited, or another chain's
    run 2 moved in) was read as one more run without a word: its tag manifest differs, so only
    the copy check's exact match was looked for. It is still read, and both folders named."""
    import hashlib
    import shutil

    folder = tmp_path / "out"
    shutil.copytree(runs, folder)
    previous = (folder / "run-000001" / "tagmanifest-sha256.txt").read_bytes()
    build_bag(
        folder,
        make_keys(tmp_path)[1],
        "run-000002-again",
        2,
        hashlib.sha256(previous).hexdigest(),
        messages=48,
        seed=3,
    )

    with caplog.at_level("WARNING", logger="auditor.bag_inputs"):
        summary = validate_files([folder])

    assert summary.records == sum(len(_archived(bag)) for bag in folder.iterdir())
    assert caplog.messages == [
        f"{folder / 'run-000002-again'} holds Run-Sequence 2 as {folder / 'run-000002'} does "
        "(bag-info.txt), with other bytes: two bags of one run, whose records are both read"
    ]
