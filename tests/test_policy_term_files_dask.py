"""Term files on a Dask cluster: workers read them at the same path, apply the bytes the
coordinator read, and refuse a file saved after the run began rather than split the run."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import cloudpickle
import pytest
import run_support
from run_support import payload
from test_policy_term_files import ARCHIVED, VENDOR, policy_with_term_file

from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.archive.verify import verify_bag
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.errors import ConfigError
from auditor.partitions import HOUR_MS
from auditor.pipeline import Progress, run_audit

distributed = pytest.importorskip("distributed")

SECRET = "term-files-dask-secret"
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield cluster.scheduler_address, client


emulator = run_support.emulator_fixture(SECRET, messages=600)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="term-files-dask")


def settings(emulator, keys, folder: Path, policy: Path, **overrides):
    overrides.setdefault("until_ms", DEFAULT_START_MS + 6 * HOUR_MS)
    return run_support.settings_for(
        emulator, keys, folder, SECRET, policy_path=policy, fail_on="none", **overrides
    )


def on_cluster(address: str) -> dict:
    return dict(executor="dask", executor_options={"scheduler": address})


def arm(crash_at: str) -> int:
    """Runs in one worker: its next `crashpoints.reached` count SIGKILLs that process."""
    os.environ["AUDITOR_CRASH_AT"] = crash_at
    importlib.reload(importlib.import_module("auditor.crashpoints"))
    return os.getpid()


def test_a_dask_run_applies_the_term_file_and_gives_the_local_runs_bag(
    cluster, emulator, keys, tmp_path
):
    address, _ = cluster
    policy = policy_with_term_file(tmp_path / "policy")
    local = run_audit(settings(emulator, keys, tmp_path / "local", policy, workers=2))
    on_dask = run_audit(settings(emulator, keys, tmp_path / "dask", policy, **on_cluster(address)))

    assert payload(on_dask.bag_path) == payload(local.bag_path)
    assert (on_dask.bag_path / ARCHIVED).read_bytes() == VENDOR
    assert verify_bag(on_dask.bag_path, load_public_key(keys.public_key)).problems == ()


def test_a_symlinked_policy_reads_its_term_files_beside_the_link_on_dask_as_locally(
    cluster, emulator, keys, tmp_path
):
    """Term files are relative to the policy path as given, a link's folder (the shared policy
    kept elsewhere), on Dask workers as in the coordinator: a worker that resolved the link would
    look beside its target, where no list is, and refuse the run."""
    address, _ = cluster
    target = policy_with_term_file(tmp_path / "shared")
    linked = tmp_path / "linked"
    (linked / "lists").mkdir(parents=True)
    (target.parent / "lists" / "vendor.txt").rename(linked / "lists" / "vendor.txt")
    (linked / target.name).symlink_to(target)
    policy = linked / target.name
    local = run_audit(settings(emulator, keys, tmp_path / "local", policy, workers=2))
    on_dask = run_audit(settings(emulator, keys, tmp_path / "dask", policy, **on_cluster(address)))

    assert payload(on_dask.bag_path) == payload(local.bag_path)
    assert (on_dask.bag_path / ARCHIVED).read_bytes() == VENDOR


def test_workers_replaced_after_the_term_file_was_saved_anew_refuse_it(
    cluster, emulator, keys, tmp_path
):
    """The workers that replace those killed after the first hour read the term file as it is
    now: each refuses it against the digest the run began with, and no bag is written."""
    address, client = cluster
    policy = policy_with_term_file(tmp_path / "policy")
    vendor = policy.parent / "lists" / "vendor.txt"

    def saved_anew_and_workers_killed(partition, outcome):
        if vendor.read_bytes().endswith(b"# saved anew\n"):
            return
        with vendor.open("ab") as handle:
            handle.write(b"# saved anew\n")
        client.run(arm, "spool.record:1")

    run = settings(
        emulator, keys, tmp_path, policy, until_ms=DEFAULT_START_MS + 24 * HOUR_MS,
        **on_cluster(address),
    )  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        run_audit(run, Progress(partition_done=saved_anew_and_workers_killed))

    assert "the term file 'lists/vendor.txt' of keyword list vendor-zh" in str(refused.value)
    assert "changed after the run began" in str(refused.value)
    assert not list((tmp_path / "archive").glob("run-*"))
    client.wait_for_workers(2, timeout=120)  # a fail, not a hang, if a nanny gave up
