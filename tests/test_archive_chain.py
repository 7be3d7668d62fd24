"""A series of runs: links and sequence numbers catch a deleted run and a replayed one."""

from __future__ import annotations

import shutil

import pytest
from test_archive_support import build_bag, make_keys, problem_lines, signature_checks

from auditor.archive import layout
from auditor.archive.chain import verify_chain
from auditor.archive.verify import verify_bag
from auditor.errors import InputError


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def series(keys, tmp_path_factory):
    """Three chained runs, each linked to its predecessor's tag manifest."""
    root = tmp_path_factory.mktemp("series")
    previous = layout.ZERO_HASH
    for sequence in (1, 2, 3):
        summary = build_bag(
            root, keys[1], f"run-00000{sequence}", sequence, previous, messages=48, seed=sequence
        )
        previous = summary.tagmanifest_sha256
    return root


@pytest.fixture
def runs(series, tmp_path):
    target = tmp_path / "runs"
    shutil.copytree(series, target)
    return target


def _chain_problems(folder, keys) -> list[str]:
    return [str(problem) for problem in verify_chain(folder, keys[1].public_key()).all_problems()]


def test_an_intact_chain_verifies(runs, keys):
    report = verify_chain(runs, keys[1].public_key())

    assert report.ok
    assert [bag.sequence for bag in report.bags] == [1, 2, 3]


def test_a_chain_checks_each_bags_two_signatures_once(runs, keys):
    """Its raw signature and its SSH signature, one Ed25519 verification each: a bag is
    verified once as itself, and its link is checked from that, not by verifying it again."""
    with signature_checks() as checks:
        report = verify_chain(runs, keys[1].public_key())

    assert report.ok
    assert checks == ["Ed25519PublicKey"] * 2 * 3


def test_each_run_verifies_against_its_predecessor(runs, keys):
    report = verify_bag(runs / "run-000003", keys[1].public_key(), previous=runs / "run-000002")

    assert report.problems == ()


def test_an_intermediate_run_deleted_from_the_chain(runs, keys):
    tag_1 = verify_bag(runs / "run-000001", keys[1].public_key()).tagmanifest_sha256
    link = verify_bag(runs / "run-000003", keys[1].public_key()).previous_tagmanifest_sha256
    shutil.rmtree(runs / "run-000002")

    problems = _chain_problems(runs, keys)

    assert problems == [
        "run-000003: run 2 is missing between run-000001 and run-000003",
        f"run-000003/bag-info.txt: Previous-Tagmanifest-SHA256 {link} is not the SHA-256 of "
        f"run-000001/tagmanifest-sha256.txt ({tag_1})",
    ]


def test_a_deleted_run_is_caught_when_verifying_one_bag_against_its_previous(runs, keys):
    problems = problem_lines(
        verify_bag(runs / "run-000003", keys[1].public_key(), previous=runs / "run-000001")
    )

    assert len(problems) == 2
    assert problems[0].startswith("run-000003/bag-info.txt: Previous-Tagmanifest-SHA256 is ")
    assert problems[0].endswith(": not the previous run")
    assert problems[1] == (
        "run-000003/bag-info.txt: Run-Sequence is 3, but the previous run run-000001 is number 1, "
        "so 2 was expected"
    )


def test_an_older_run_replayed_as_the_newest(runs, keys):
    shutil.copytree(runs / "run-000002", runs / "run-000004")

    problems = _chain_problems(runs, keys)

    assert problems == [
        "run-000004: run 2 appears twice (run-000002 and run-000004): an older run replayed?"
    ]


def test_an_older_run_renumbered_as_newer_fails_its_signature(runs, keys):
    replay = runs / "run-000004"
    shutil.copytree(runs / "run-000002", replay)
    info = (replay / layout.BAG_INFO).read_text()
    (replay / layout.BAG_INFO).write_text(info.replace("Run-Sequence: 2", "Run-Sequence: 4"))

    problems = _chain_problems(runs, keys)

    assert (
        "run-000004/bag-info.txt: its SHA-256 does not match tagmanifest-sha256.txt (changed)"
        in problems
    )
    assert any(
        p.startswith("run-000004/bag-info.txt: Previous-Tagmanifest-SHA256") for p in problems
    )


def test_an_older_run_offered_as_the_successor_of_a_newer_one(runs, keys):
    problems = problem_lines(
        verify_bag(runs / "run-000002", keys[1].public_key(), previous=runs / "run-000003")
    )

    assert problems[-1] == (
        "run-000002/bag-info.txt: Run-Sequence is 2, but the previous run run-000003 is number 3, "
        "so 4 was expected"
    )


def test_a_chain_that_does_not_start_at_run_1_is_reported(runs, keys):
    shutil.rmtree(runs / "run-000001")

    problems = _chain_problems(runs, keys)

    assert problems == ["run-000002: the chain starts at run 2: runs 1 to 1 are missing"]


def test_unfinished_runs_are_listed_and_ignored(runs, keys):
    (runs / ".run-000004.partial" / "data").mkdir(parents=True)

    report = verify_chain(runs, keys[1].public_key())

    assert report.ok
    assert report.unfinished == (".run-000004.partial",)


def test_a_folder_without_bags_is_a_usage_error(tmp_path, keys):
    with pytest.raises(InputError, match="holds no bag"):
        verify_chain(tmp_path, keys[1].public_key())
