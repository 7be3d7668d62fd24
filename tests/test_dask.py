"""`--executor dask` on a real `distributed.LocalCluster` gives the bytes of `--executor local`."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import dask
import psutil
import pytest
import run_support
from click.testing import CliRunner
from dask.utils import parse_timedelta
from distributed import Client, LocalCluster, get_task_stream
from run_support import payload

from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.archive.verify import verify_bag
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import ConfigError, SourceError
from auditor.executors import PLAINTEXT_SCHEDULER_ENV, executor_options
from auditor.executors import dask as dask_executor
from auditor.executors.dask import LOST_WORKER_TIMEOUT_S, cluster_client, local_cluster
from auditor.executors.interface import AHEAD_PER_WORKER
from auditor.partitions import HOUR_MS
from auditor.pipeline import Progress, RunSettings, run_audit
from auditor.resources import example_policy
from auditor.sources.settings import ConnectionSettings

SECRET = "dask-test-secret"
FAULTS = dict(fail_rate=0.1, rate_limit_rate=0.1, duplicate_rate=0.02, garbage_rate=0.02)
HOURS = 6

# `arm` below runs inside a worker process, which cannot import this test module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster():
    """Two workers the tests kill and their nannies replace: a lost worker is waited for as the
    run's own cluster waits (Dask's 15 s closed the nanny of a replacement that took 17 s to
    start under load, and the module went on a worker short, or hung with none)."""
    lost = {"distributed.deploy.lost-worker-timeout": f"{LOST_WORKER_TIMEOUT_S}s"}
    with (
        dask.config.set(lost),
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield cluster.scheduler_address, client


@pytest.fixture(scope="module")
def emulator():
    options = EmulatorOptions(messages=1200, days=1, client_secret=SECRET, **FAULTS)
    with run_emulator(options) as running:
        yield running


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="dask-test")


def settings_for(emulator, keys, folder: Path, **overrides) -> RunSettings:
    overrides.setdefault("until_ms", DEFAULT_START_MS + HOURS * HOUR_MS)
    overrides.setdefault("fail_on", "none")
    return run_support.settings_for(emulator, keys, folder, SECRET, **overrides)


@pytest.fixture(scope="module")
def local_bag(emulator, keys, tmp_path_factory) -> Path:
    outcome = run_audit(settings_for(emulator, keys, tmp_path_factory.mktemp("local")))
    assert outcome.records > 0
    return outcome.bag_path


def on_cluster(address: str, **overrides) -> dict:
    return dict(executor="dask", executor_options={"scheduler": address}, **overrides)


def test_a_dask_run_gives_the_bag_of_a_local_run_byte_for_byte(
    cluster, emulator, keys, local_bag, tmp_path
):
    address, _ = cluster
    outcome = run_audit(settings_for(emulator, keys, tmp_path, **on_cluster(address)))

    assert payload(outcome.bag_path) == payload(local_bag)
    assert verify_bag(outcome.bag_path, load_public_key(keys.public_key)).problems == ()


def arm(crash_at: str) -> int:
    """Runs in one worker: its next `crashpoints.reached` count SIGKILLs that process."""
    os.environ["AUDITOR_CRASH_AT"] = crash_at
    importlib.reload(importlib.import_module("auditor.crashpoints"))
    return os.getpid()


def test_a_worker_killed_mid_partition_is_replaced_and_the_bag_is_the_same(
    cluster, emulator, keys, local_bag, tmp_path, caplog
):
    """The operator is told in one line (Dask said it at INFO, hidden without -v)."""
    address, client = cluster
    victim = sorted(client.scheduler_info()["workers"])[0]
    victim_pid = client.run(arm, "spool.record:20", workers=[victim])[victim]

    outcome = run_audit(settings_for(emulator, keys, tmp_path, **on_cluster(address)))

    assert victim_pid not in client.run(os.getpid).values()
    assert payload(outcome.bag_path) == payload(local_bag)
    warning = only_warning(caplog)
    assert re.fullmatch(
        rf"Dask worker {victim} was lost \(killed, out of memory or cut off\) while it ran "
        r"(hour \S+Z: Dask runs it|hours \S+Z(, \S+Z)+: Dask runs them) again on another worker",
        warning,
    ), warning


def only_warning(caplog) -> str:
    """The one warning the run logged (failing when there is none or more)."""
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return warning


def fail_once() -> int:
    """Runs in one worker: its next hour fails once, as an hour whose source failed after its
    own retries does, and Dask runs it again."""
    from auditor.stages import PartitionProcessor

    process = PartitionProcessor.process

    def failing(self, partition):
        PartitionProcessor.process = process
        raise SourceError(f"hour {partition.iso()}: injected failure")

    PartitionProcessor.process = failing
    return os.getpid()


def test_an_hour_dask_runs_again_after_it_failed_is_one_warning_and_the_bag_is_the_same(
    emulator, keys, local_bag, tmp_path, caplog
):
    """Dask retried a failed task without a word, whatever the log level. A cluster of its own:
    the module's, its worker patched, left the next test's killed workers unreplaced at times."""
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as own,
        Client(own, set_as_default=False) as client,
    ):
        victim = sorted(client.scheduler_info()["workers"])[0]
        client.run(fail_once, workers=[victim])
        settings = settings_for(emulator, keys, tmp_path, **on_cluster(own.scheduler_address))
        outcome = run_audit(settings)

    assert payload(outcome.bag_path) == payload(local_bag)
    warning = only_warning(caplog)
    assert re.fullmatch(
        r"hour (\S+) failed on the Dask worker on \S+ \(SourceError: hour \1: injected "
        r"failure\); Dask runs it again \(retry 1 of 1\)",
        warning,
    ), warning


def test_workers_replaced_after_the_policy_file_was_saved_anew_refuse_it_as_local_ones_do(
    cluster, emulator, keys, tmp_path
):
    """The workers that replace those killed after the first hour build their stages from the
    file as it is now: each refuses it against the digest the run began with, and the run stops
    with exit 2 and no bag (it said the worker read another file than the coordinator's)."""
    address, client = cluster
    policy = tmp_path / "policies.yaml"
    shutil.copy(example_policy(), policy)

    def saved_anew_and_workers_killed(partition, outcome):
        if policy.read_bytes().endswith(b"# saved anew\n"):
            return
        with policy.open("a", encoding="utf-8") as handle:
            handle.write("# saved anew\n")
        client.run(arm, "spool.record:1")

    settings = settings_for(
        emulator, keys, tmp_path, policy_path=policy, until_ms=DEFAULT_START_MS + 24 * HOUR_MS,
        **on_cluster(address),
    )  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        run_audit(settings, Progress(partition_done=saved_anew_and_workers_killed))

    assert f"the policy file {policy} is not the one the run began with" in str(refused.value)
    assert "it changed after the run began" in str(refused.value)
    assert not list((tmp_path / "archive").glob("run-*"))
    client.wait_for_workers(2, timeout=120)  # a fail, not a hang, if a nanny gave up


def test_auditor_run_executor_dask_scheduler_from_the_command_line(
    cluster, emulator, keys, local_bag, tmp_path
):
    address, _ = cluster
    args = run_support.run_args(
        emulator,
        keys,
        tmp_path,
        "--executor", "dask",
        "--scheduler", address,
        "--fail-on", "none",
        "--json",
        hours=HOURS,
    )  # fmt: skip
    result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert payload(Path(summary["bag"])) == payload(local_bag)


def test_without_a_scheduler_a_local_cluster_of_workers_processes_runs_it_without_its_log(
    emulator, keys, local_bag, tmp_path
):
    """Dask logs its cluster starting and stopping at INFO through the command's handler; a run
    without -v shows none of it (the command's own warnings would be lost in it)."""
    args = run_support.run_args(
        emulator, keys, tmp_path,
        "--executor", "dask", "--workers", "2", "--fail-on", "none", "--quiet", "--json",
        hours=HOURS,
    )  # fmt: skip
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, env=env
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert payload(Path(json.loads(result.stdout)["bag"])) == payload(local_bag)


def test_ctrl_c_to_the_group_stops_a_run_on_its_own_cluster_in_one_line_without_orphans(
    emulator, keys, tmp_path
):
    """A terminal's Ctrl-C reaches the run's cluster workers too: each died of it with a page of
    tracebacks on the run's stderr before the run's own line."""
    args = run_support.run_args(
        emulator, keys, tmp_path, "--executor", "dask", "--workers", "2", "--fail-on", "none",
        hours=23,
    )  # fmt: skip
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    # a program started with SIGINT ignored keeps ignoring it: the run would not see its Ctrl-C
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    run = subprocess.Popen(
        [sys.executable, "-m", "auditor", *args],
        env=env, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    lines = run_support.StderrLines(run)
    lines.wait_for_hours(1, timeout=60)
    children = psutil.Process(run.pid).children(recursive=True)
    # multiprocessing's resource tracker can end only once it reads the end of its pipe from
    # the run, so after the run's exit (a CI run failed on it); Dask's workers end before
    trackers = [each for each in children if "resource_tracker" in " ".join(each.cmdline())]
    workers = [each for each in children if each not in trackers]
    os.killpg(run.pid, signal.SIGINT)

    code = run.wait(timeout=60)
    rest = lines.rest()
    assert code == 130, "".join(lines.lines)
    assert "Traceback" not in "".join(rest), "".join(rest)
    assert rest[-1] == "auditor: interrupted\n"
    assert workers
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    _gone, alive = psutil.wait_procs(trackers, timeout=10)
    assert not alive


class _RaisesCtrlCWhenCollected:
    """A Ctrl-C whose handler runs in a finalizer, where Python only prints what it raises: one
    of Dask's `Future.__del__` ran it between hours, and the run archived every hour, exit 0,
    under a traceback that said "Exception ignored"."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_run_at_the_next_hour(
    cluster, emulator, keys, tmp_path
):
    address, _ = cluster
    archived = []

    def ctrl_c_in_a_finalizer(partition, outcome):
        archived.append(partition)
        if len(archived) == 1:
            _RaisesCtrlCWhenCollected()

    with pytest.raises(KeyboardInterrupt):
        run_audit(
            settings_for(emulator, keys, tmp_path, **on_cluster(address)),
            Progress(partition_done=ctrl_c_in_a_finalizer),
        )

    assert len(archived) == 1


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_swallowed_as_the_cluster_closes_after_the_last_hour_stops_the_run(
    cluster, emulator, keys, tmp_path, monkeypatch
):
    """Past the last hour there is no next one to raise it at: the run signed, committed and
    published its bag and exited 0 (a group Ctrl-C test exited 0 twice under load)."""
    address, _ = cluster
    opened = dask_executor.cluster_client

    @contextlib.contextmanager
    def closed_with_a_swallowed_ctrl_c(*args, **kwargs):
        with opened(*args, **kwargs) as client:
            yield client
        _RaisesCtrlCWhenCollected()

    monkeypatch.setattr(dask_executor, "cluster_client", closed_with_a_swallowed_ctrl_c)
    archived = []

    with pytest.raises(KeyboardInterrupt):
        run_audit(
            settings_for(
                emulator, keys, tmp_path, until_ms=DEFAULT_START_MS + 2 * HOUR_MS,
                **on_cluster(address),
            ),
            Progress(partition_done=lambda partition, _outcome: archived.append(partition)),
        )  # fmt: skip

    assert len(archived) == 2
    assert not [path for path in (tmp_path / "archive").iterdir() if path.name.startswith("run-")]


@pytest.mark.parametrize(("configured", "seconds"), [(None, 60), ("5 minutes", 60), ("90s", 90)])
def test_the_runs_own_cluster_takes_a_silent_workers_tasks_away_after_a_minute(configured, seconds):
    """Dask's default (5 minutes, checked every 5) held a run behind a hung worker for up to
    10 minutes; a value the configuration sets otherwise is kept."""
    settings = {} if configured is None else {"distributed.scheduler.worker-ttl": configured}
    with dask.config.set(settings), local_cluster(0) as address, Client(address) as client:
        ttl = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.worker_ttl)

    assert ttl == seconds


@pytest.mark.parametrize(("configured", "seconds"), [(None, 600), ("15s", 600), ("90s", 90)])
def test_the_runs_own_cluster_keeps_a_lost_workers_nanny_while_its_replacement_starts(
    configured, seconds
):
    """Dask closes the nanny of a worker not back within `distributed.deploy.lost-worker-timeout`
    (15 s), read as the worker is lost: a replacement spawned on a loaded machine took 17 s,
    and its nanny was closed for good. A value the configuration sets otherwise is kept."""
    settings = {} if configured is None else {"distributed.deploy.lost-worker-timeout": configured}
    with dask.config.set(settings), local_cluster(0):
        during = dask.config.get("distributed.deploy.lost-worker-timeout")

    assert parse_timedelta(during) == seconds


def test_a_local_cluster_whose_worker_dies_as_it_starts_is_one_line_and_exit_3(
    emulator, keys, tmp_path
):
    """It was an internal error (exit 70: "RuntimeError: Nanny failed to start.")."""
    args = run_support.run_args(
        emulator, keys, tmp_path, "--executor", "dask", "--workers", "1", "--quiet"
    )
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, "AUDITOR_CRASH_AT": "dask.worker-start"}
    result = subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, env=env
    )

    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("auditor: error: the local Dask cluster of 1 worker(s) did not")
    assert result.stderr.count("\n") == 1, result.stderr


def test_a_local_cluster_left_without_workers_ends_the_run_with_exit_3(
    emulator, keys, tmp_path, monkeypatch
):
    """After the first hour its worker is killed, and the one its nanny starts instead dies as
    it starts, which the nanny does not restart: the run waited for ever for a worker. Only the
    run's worker: the module's cluster, its workers this process's children too, lost both."""
    others = set(psutil.Process().children(recursive=True))

    def worker_lost_for_good(partition, outcome):
        if os.environ.get("AUDITOR_CRASH_AT"):
            return
        monkeypatch.setenv("AUDITOR_CRASH_AT", "dask.worker-start")
        for child in set(psutil.Process().children(recursive=True)) - others:
            if "spawn_main" in " ".join(child.cmdline()):
                child.kill()

    settings = settings_for(emulator, keys, tmp_path, executor="dask", workers=1)
    ended: list[BaseException | None] = []

    def run() -> None:
        try:
            run_audit(settings, Progress(partition_done=worker_lost_for_good))
            ended.append(None)
        except BaseException as error:
            ended.append(error)

    with dask.config.set({"distributed.scheduler.no-workers-timeout": "2s"}):
        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        runner.join(timeout=60)

    assert ended, "the run still waits for a worker after 60 s"
    assert isinstance(ended[0], SourceError), ended[0]
    assert "the local Dask cluster had no worker left to run it" in str(ended[0])


def test_two_apps_run_side_by_side_on_one_cluster_each_with_its_own_chain(
    cluster, emulator, keys, local_bag, tmp_path
):
    other_options = EmulatorOptions(
        seed=7, messages=600, days=1, org="org-b", app="app-b", client_secret="b-secret"
    )
    with run_emulator(other_options) as other:
        (tmp_path / "b.secret").write_text("b-secret\n")
        reference = run_audit(
            settings_for(
                other,
                keys,
                tmp_path / "reference",
                source=ConnectionSettings(
                    other.base_url, "org-b", "app-b", other.options.client_id, "b-secret"
                ),
            )
        )
        config = tmp_path / "auditor.yaml"
        config.write_text(
            "source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n"
            "run:\n"
            f"  executor: dask\n  scheduler: {cluster[0]}\n"
            f"  policies: {example_policy()}\n  key: {keys.private_key}\n"
            f"  since: '2026-11-01T00:00Z'\n  until: '2026-11-01T{HOURS:02d}:00Z'\n"
            f"  as_of: '2026-11-01T{HOURS:02d}:00Z'\n"
            "  fail_on: none\n  out: archive\n  state: state.db\n"
            "apps:\n"
            f"  - name: a\n    source: {{base_url: '{emulator.base_url}', org: demo-org,"
            f" app: demo-app, client_id: {emulator.options.client_id},"
            " client_secret_env: A_SECRET}\n"
            f"  - name: b\n    source: {{base_url: '{other.base_url}', org: org-b,"
            f" app: app-b, client_id: {other.options.client_id},"
            f" client_secret_file: '{tmp_path / 'b.secret'}'}}\n"
        )
        result = CliRunner().invoke(
            main, ["run", "--config", str(config), "--json"], env={"A_SECRET": SECRET}
        )

    assert result.exit_code == 0, result.output
    runs = {app["name"]: app["run"] for app in json.loads(result.stdout)["apps"]}
    assert payload(Path(runs["a"]["bag"])) == payload(local_bag)
    assert payload(Path(runs["b"]["bag"])) == payload(reference.bag_path)
    assert Path(runs["a"]["bag"]).parent == tmp_path / "archive" / "a"
    assert (tmp_path / "state-a.db").exists() and (tmp_path / "state-b.db").exists()


@pytest.fixture(scope="module")
def pulled(emulator, tmp_path_factory) -> Path:
    """The window pulled into a folder, hour by hour, as `auditor pull` leaves it."""
    folder = tmp_path_factory.mktemp("pulled")
    (folder / "auditor.yaml").write_text("source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n")
    result = CliRunner().invoke(
        main,
        [
            "pull", "--config", str(folder / "auditor.yaml"), "--base-url", emulator.base_url,
            "--org", emulator.options.org, "--app", emulator.options.app,
            "--client-id", emulator.options.client_id, "--out", str(folder / "hours"),
            "--since", "2026-11-01T00:00Z", "--until", f"2026-11-01T{HOURS:02d}:00Z",
        ],
        env={"EASEMOB_CLIENT_SECRET": SECRET},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder / "hours"


def run_from(keys, folder: Path, *args: str) -> Path:
    result = CliRunner().invoke(
        main,
        [
            "run", "--from", *args,
            "--policies", str(example_policy()), "--key", str(keys.private_key),
            "--out", str(folder / "archive"), "--state", str(folder / "state.db"),
            "--as-of", f"2026-11-01T{HOURS:02d}:00Z", "--fail-on", "none", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["bag"])


def test_a_run_from_a_pulled_folder_and_from_an_export_on_the_cluster_gives_the_local_bags(
    cluster, pulled, keys, tmp_path
):
    """The cluster's workers read the pulled hours where they lie, and an export's hours where
    the coordinator sorted them (under `--out`): each bag is the one a local run makes."""
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"".join(path.read_bytes() for path in sorted(pulled.glob("*.jsonl"))[::-1]))
    address, client = cluster
    dask = ("--executor", "dask", "--scheduler", address)

    for given in (pulled, export):
        local = run_from(keys, tmp_path / f"local-{given.name}", str(given))
        with get_task_stream(client) as tasks:
            remote = run_from(keys, tmp_path / f"dask-{given.name}", str(given), *dask)

        assert len(tasks.data) >= HOURS
        assert payload(remote) == payload(local)
        assert json.loads((remote / "data/report/summary.json").read_bytes())["records"]["total"]


def test_a_scheduler_lost_mid_run_is_exit_3_and_a_rerun_resumes_to_the_same_bag(
    cluster, emulator, keys, local_bag, tmp_path
):
    doomed = LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address=":0"
    )
    closes_after_one_hour = Progress(partition_done=lambda partition, outcome: doomed.close())

    with pytest.raises(
        SourceError, match=r"lost inproc://\S+ \(FutureCancelledError: .*\)"
    ) as lost:
        run_audit(
            settings_for(emulator, keys, tmp_path, **on_cluster(doomed.scheduler_address)),
            closes_after_one_hour,
        )
    rerun = run_audit(settings_for(emulator, keys, tmp_path, **on_cluster(cluster[0])))

    assert "\n" not in str(lost.value)
    assert payload(rerun.bag_path) == payload(local_bag)


def test_the_cluster_runs_a_bounded_number_of_hours_ahead_of_a_slow_coordinator(
    cluster, emulator, keys, tmp_path
):
    address, _ = cluster
    lead = []

    def slow_archiving(partition, outcome):
        spooled = len(list(tmp_path.glob("archive/**/*.done.json")))
        lead.append(spooled - (len(lead) + 1))
        time.sleep(0.25)

    outcome = run_audit(
        settings_for(emulator, keys, tmp_path, until_ms=DEFAULT_START_MS + 24 * HOUR_MS,
                     **on_cluster(address)),
        Progress(partition_done=slow_archiving),
    )  # fmt: skip

    assert outcome.records > 0 and len(lead) == 24
    assert max(lead) <= AHEAD_PER_WORKER * 2


def test_an_unreachable_scheduler_is_one_line_and_exit_3(emulator, keys, tmp_path):
    settings = settings_for(emulator, keys, tmp_path, **on_cluster("tcp://127.0.0.1:9"))

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(SourceError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    ):
        run_audit(settings)


def test_scheduler_without_executor_dask_is_refused(tmp_path):
    args = ["run", "--scheduler", "tcp://127.0.0.1:8786", "--base-url", "http://127.0.0.1:9"]
    args += ["--org", "o", "--app", "a", "--client-id", "c", "--since", "2026-11-01"]
    result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert result.exit_code == 2
    assert result.stderr == (
        "auditor: error: --scheduler is the address of a Dask scheduler: add --executor dask\n"
    )


def test_without_the_dask_extra_the_executor_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)

    with (
        pytest.raises(ConfigError, match=r"pip install 'easemob-auditor\[dask\]'"),
        cluster_client("tcp://127.0.0.1:8786"),
    ):
        pass


def test_the_core_and_the_command_line_never_import_dask():
    code = (
        "import sys, auditor.cli, auditor.pipeline, auditor.apps, auditor.executors; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout == "[]\n"


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("tcp://dask:8786", True),
        ("tcp://10.0.0.7:8786", True),
        ("ucx://dask:8786", True),
        ("tcp://127.0.0.1:8786", False),
        ("tcp://localhost:8786", False),
        ("tcp://[::1]:8786", False),
        ("tls://dask:8786", False),
    ],
)
def test_a_plaintext_scheduler_off_this_machine_is_refused(tmp_path, monkeypatch, address, refused):
    """Every task carries the client secret and the salt key (probe 18 #3: both crossed the
    network six times in 16 KB to a tcp:// scheduler)."""
    monkeypatch.delenv(PLAINTEXT_SCHEDULER_ENV, raising=False)
    if refused:
        with pytest.raises(ConfigError, match=r"is not encrypted.*use a tls:// address"):
            executor_options("dask", address)
        monkeypatch.setenv(PLAINTEXT_SCHEDULER_ENV, "1")
    assert executor_options("dask", address) == {"scheduler": address}


def test_the_run_refuses_a_plaintext_scheduler_in_one_line_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.delenv(PLAINTEXT_SCHEDULER_ENV, raising=False)
    args = ["run", "--executor", "dask", "--scheduler", "tcp://dask.example:8786"]
    args += ["--base-url", "http://127.0.0.1:9", "--org", "o", "--app", "a", "--client-id", "c"]
    args += ["--since", "2026-11-01", "--until", "2026-11-01T01:00Z", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": "s"})

    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        "auditor: error: --scheduler tcp://dask.example:8786 is not encrypted"
    )
    assert len(result.output.splitlines()) == 1
