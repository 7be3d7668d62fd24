"""A late attempt at an hour (a Dask worker the scheduler gave up on, hung or cut off, that wakes
and finishes its task after the hour was rerun elsewhere) never touches the spool the coordinator
archives: the bag is the bag of a run without it.

The late writer is a second `PartitionProcessor` past its checkpoint check, as a task woken in the
middle of the hour is; it opens the hour's files and is held there while the coordinator archives
the hour, which is what SIGSTOP and SIGCONT do to a real worker, in milliseconds rather than the
minute the scheduler's worker-ttl takes (tests/test_dask.py covers that path itself)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import run_support
from run_support import payload

from auditor import crashpoints
from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.executors.interface import Executor
from auditor.executors.local import LocalExecutor
from auditor.partitions import HOUR_MS, Partition
from auditor.pipeline import run_audit
from auditor.stages import PartitionProcessor, StageSettings, read_outcome, spool_paths

SECRET = "late-attempt-test-secret"
HOURS = 3


emulator = run_support.emulator_fixture(SECRET, messages=2_400)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="late-attempt-test")


def settings_for(emulator, keys, folder: Path):
    return run_support.settings_for(
        emulator,
        keys,
        folder,
        SECRET,
        until_ms=DEFAULT_START_MS + HOURS * HOUR_MS,
        fail_on="none",
        attachments="skip",
    )


@contextmanager
def late_attempt_held_open(settings: StageSettings, partition: Partition) -> Iterator[None]:
    """A second attempt at `partition` that has opened its spool files and written part of
    them, held there for the body, then let finish (and its checkpoint written)."""
    opened, go_on = threading.Event(), threading.Event()
    real = crashpoints.reached
    failed: list[BaseException] = []

    def reached(name: str) -> None:
        if threading.current_thread() is late and name == "spool.record" and not opened.is_set():
            opened.set()
            go_on.wait(60)
        real(name)

    def attempt() -> None:
        try:
            processor = PartitionProcessor(settings)
            result = processor.source.fetch(partition, Path(settings.spool_dir))
            try:
                processor._spooled(partition, result, [])
            finally:
                result.close()
                processor.close()
        except BaseException as error:  # told by the test, not lost in the thread
            failed.append(error)
            opened.set()

    crashpoints.reached = reached
    late = threading.Thread(target=attempt, name="late-attempt")
    try:
        late.start()
        assert opened.wait(60) and not failed, failed
        yield
    finally:
        go_on.set()
        late.join(60)
        crashpoints.reached = real
    assert not failed, failed


class LateAttemptAtTheSecondHour(Executor):
    """One worker in this process; the second hour is archived while a late attempt at it is
    in the middle of writing."""

    name = "local"

    def run(self, partitions, settings):
        for partition, outcome in LocalExecutor(1).run(partitions, settings):
            if partition != partitions[1]:
                yield partition, outcome
                continue
            with late_attempt_held_open(settings, partition):
                yield partition, outcome


def test_a_late_attempt_writing_an_hour_as_it_is_archived_leaves_the_bag_as_without_it(
    emulator, keys, tmp_path, monkeypatch
):
    clean = run_audit(settings_for(emulator, keys, tmp_path / "clean"))
    monkeypatch.setattr(
        "auditor.pipeline.make_executor", lambda *a, **k: LateAttemptAtTheSecondHour()
    )

    late = run_audit(settings_for(emulator, keys, tmp_path / "late"))

    assert late.records == clean.records > 0
    assert payload(late.bag_path) == payload(clean.bag_path)


def spooled_records(settings: StageSettings) -> set[Path]:
    return set(Path(settings.spool_dir).rglob("*.records"))


def abandoned_attempt(settings: StageSettings, partition: Partition) -> set[Path]:
    """The files of an attempt at `partition` that stopped half way through its records, as one
    whose worker was killed or given up on does, and was never checkpointed."""
    before = set(Path(settings.spool_dir).rglob("*"))
    real = crashpoints.reached

    def reached(name: str) -> None:
        if name == "spool.record":
            raise SystemExit("the worker stops here")
        real(name)

    crashpoints.reached = reached
    processor = PartitionProcessor(settings)
    try:
        result = processor.source.fetch(partition, Path(settings.spool_dir))
        with pytest.raises(SystemExit):
            processor._spooled(partition, result, [])
        result.close()
    finally:
        crashpoints.reached = real
        processor.close()
    left = {path for path in Path(settings.spool_dir).rglob("*") if path.is_file()} - before
    assert {path.suffix for path in left} == {".records", ".jsonl", ".unreadable"}, left
    return left


def test_a_late_attempt_never_replaces_the_checkpoint_and_its_files_go(emulator, keys, tmp_path):
    """A run killed after it: its rerun reuses the hour as the first attempt wrote it, whole; the
    late attempt's own files, named by no checkpoint, are removed rather than left to the end of
    the run."""
    settings = run_support.stage_settings(tmp_path, run_support.source_of(emulator, SECRET))
    partition = Partition(DEFAULT_START_MS)
    first = PartitionProcessor(settings).process(partition)
    with late_attempt_held_open(settings, partition):
        pass

    kept = read_outcome(Path(settings.spool_dir), partition)

    assert kept is not None and (kept.attempt, kept.spool_sha256) == (
        first.attempt,
        first.spool_sha256,
    )
    first_files = spool_paths(Path(settings.spool_dir), partition, first.attempt)
    assert all(path.exists() for path in first_files.values())
    assert spooled_records(settings) == {first_files["records"]}


def test_an_attempt_abandoned_half_way_goes_when_the_hours_next_attempt_is_checkpointed(
    emulator, keys, tmp_path
):
    settings = run_support.stage_settings(tmp_path, run_support.source_of(emulator, SECRET))
    partition = Partition(DEFAULT_START_MS)
    abandoned = abandoned_attempt(settings, partition)

    outcome = PartitionProcessor(settings).process(partition)

    assert not any(path.exists() for path in abandoned)
    paths = spool_paths(Path(settings.spool_dir), partition, outcome.attempt)
    assert spooled_records(settings) == {paths["records"]}
    kept = read_outcome(Path(settings.spool_dir), partition)
    assert kept is not None and kept.attempt == outcome.attempt


def test_a_resumed_run_removes_the_attempts_the_checkpoint_it_reuses_does_not_name(
    emulator, keys, tmp_path
):
    """An attempt abandoned after the hour was checkpointed (a late worker killed half way),
    then the run killed: the resumed run's worker reuses the checkpoint and removes the rest."""
    settings = run_support.stage_settings(tmp_path, run_support.source_of(emulator, SECRET))
    partition = Partition(DEFAULT_START_MS)
    first = PartitionProcessor(settings).process(partition)
    abandoned = abandoned_attempt(settings, partition)

    reused = PartitionProcessor(settings).process(partition)

    assert (reused.attempt, reused.spool_sha256) == (first.attempt, first.spool_sha256)
    assert not any(path.exists() for path in abandoned)
    kept = spool_paths(Path(settings.spool_dir), partition, first.attempt)
    assert all(path.exists() for path in kept.values())
    assert spooled_records(settings) == {kept["records"]}


def test_an_attempt_whose_files_go_as_it_writes_them_returns_the_checkpointed_one(
    emulator, keys, tmp_path
):
    """A worker given up on, woken half way through the hour after another completed it: its
    files were removed under it, and it ends with the checkpointed outcome, not an error."""
    settings = run_support.stage_settings(tmp_path, run_support.source_of(emulator, SECRET))
    partition = Partition(DEFAULT_START_MS)
    with late_attempt_held_open(settings, partition):
        winner = PartitionProcessor(settings).process(partition)

    kept = read_outcome(Path(settings.spool_dir), partition)

    assert kept is not None and kept.attempt == winner.attempt
    assert spooled_records(settings) == {
        spool_paths(Path(settings.spool_dir), partition, winner.attempt)["records"]
    }
