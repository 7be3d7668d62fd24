"""Several Easemob apps in one config: one `auditor run` audits each into its own chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_support import payload, settings_for

from auditor.apps import load_apps
from auditor.archive.chain import verify_chain
from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.cli import main
from auditor.cli.run import DEFAULTS
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit
from auditor.resources import example_policy

SECRETS = {"shop": "shop-secret", "support": "support-secret"}


@pytest.fixture(scope="module")
def emulators():
    shop = EmulatorOptions(
        messages=600, org="acme", app="shop", client_id="shop-id", client_secret=SECRETS["shop"]
    )
    support = EmulatorOptions(
        seed=11,
        messages=500,
        org="acme",
        app="support",
        client_id="support-id",
        client_secret=SECRETS["support"],
        garbage_rate=0.02,
    )
    with run_emulator(shop) as first, run_emulator(support) as second:
        yield {"shop": first, "support": second}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="apps-test")


def app_entry(name: str, emulator, source: dict | None = None, **run: str) -> str:
    """One item of `apps:`; its secret comes from the variable <NAME>_SECRET unless `source`
    says otherwise."""
    options = emulator.options
    keys = {
        "base_url": emulator.base_url,
        "org": options.org,
        "app": options.app,
        "client_id": options.client_id,
        "client_secret_env": f"{name.upper()}_SECRET",
        **(source or {}),
    }
    lines = [f"  - name: {name}", "    source:"]
    lines += [f"      {key}: {value}" for key, value in keys.items()]
    lines += [f"    {key}: {value}" for key, value in run.items()]
    return "\n".join(lines) + "\n"


def write_config(folder: Path, keys, apps: str, **run: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "policies": str(example_policy()),
        "key": str(keys.private_key),
        "out": "archive",
        "state": "state.db",
        "fail_on": "none",
        **run,
    }
    config = folder / "auditor.yaml"
    config.write_text(
        "source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\nrun:\n"
        + "".join(f"  {key}: '{value}'\n" for key, value in settings.items())
        + "apps:\n"
        + apps
    )
    return config


def invoke(config: Path, *extra: str, crash_at: str | None = None):
    env = {f"{name.upper()}_SECRET": secret for name, secret in SECRETS.items()}
    env["AUDITOR_CRASH_AT"] = crash_at  # None: unset; read by the apps' own processes only
    return CliRunner().invoke(main, ["run", "--config", str(config), *extra], env=env)


def window(start_hour: int, end_hour: int) -> list[str]:
    """Flags for hours `start_hour` to `end_hour`, judged as of its end as `settings_for` does."""
    return [
        "--since",
        f"2026-11-01T{start_hour:02d}:00Z",
        "--until",
        f"2026-11-01T{end_hour:02d}:00Z",
        "--as-of",
        f"2026-11-01T{end_hour:02d}:00Z",
    ]


@pytest.fixture(scope="module")
def alone(emulators, keys, tmp_path_factory):
    """The bag of auditing one app by itself, hours 0-3, by its name: made once for the tests
    that compare with it."""
    bags: dict[str, Path] = {}

    def bag(name: str) -> Path:
        if name not in bags:
            folder = tmp_path_factory.mktemp(f"alone-{name}")
            until_ms = DEFAULT_START_MS + 3 * HOUR_MS
            settings = settings_for(
                emulators[name], keys, folder, SECRETS[name], until_ms=until_ms, fail_on="none"
            )
            bags[name] = run_audit(settings).bag_path
        return bags[name]

    return bag


def test_each_app_is_audited_into_its_own_chain_as_if_it_were_alone(
    emulators, keys, alone, tmp_path
):
    apps = app_entry("shop", emulators["shop"]) + app_entry("support", emulators["support"])
    config = write_config(tmp_path / "both", keys, apps)

    first = invoke(config, *window(0, 3), "--json")
    second = invoke(config, *window(3, 6), "--json")

    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    runs = {app["name"]: app["run"] for app in json.loads(first.stdout)["apps"]}
    public_key = load_public_key(keys.public_key)
    for name in ("shop", "support"):
        reference = alone(name)
        assert payload(Path(runs[name]["bag"])) == payload(reference)
        chain = verify_chain(tmp_path / "both" / "archive" / name, public_key)
        assert chain.problems == () and len(chain.bags) == 2
        assert (tmp_path / "both" / f"state-{name}.db").exists()
    assert not any(secret in first.output + second.output for secret in SECRETS.values())


def test_the_exit_code_is_the_worst_of_the_apps_and_a_failed_app_stops_no_other(
    emulators, keys, tmp_path
):
    class Closed:
        base_url = "http://127.0.0.1:9"
        options = EmulatorOptions(client_id="gone-id")

    gone = {"client_secret_env": "SHOP_SECRET", "max_retries": 0, "timeout": 2}
    apps = (
        app_entry("shop", emulators["shop"])
        + app_entry("support", emulators["support"], fail_on="high")
        + app_entry("gone", Closed, source=gone)
    )
    config = write_config(tmp_path, keys, apps)

    result = invoke(config, *window(0, 3), "--json")

    summary = json.loads(result.stdout)
    assert result.exit_code == 3
    assert [(app["name"], app["exit_code"]) for app in summary["apps"]] == [
        ("shop", 0),
        ("support", 1),
        ("gone", 3),
    ]
    assert summary["exit_code"] == 3
    assert result.stderr.startswith("auditor: error: app gone: ") and "127.0.0.1:9" in result.stderr
    assert Path(summary["apps"][1]["run"]["bag"]).is_dir()


def test_apps_side_by_side_each_in_its_own_process_so_one_killed_stops_no_other(
    emulators, keys, alone, tmp_path
):
    apps = app_entry(
        "shop",
        emulators["shop"],
        since="'2026-11-01T00:00Z'",
        until="'2026-11-01T03:00Z'",
        as_of="'2026-11-01T03:00Z'",
    ) + app_entry(
        "support", emulators["support"], since="'2026-11-01T00:00Z'", until="'2026-11-01T01:00Z'"
    )
    config = write_config(tmp_path, keys, apps, parallel_apps="2")
    config.write_text(config.read_text().replace("parallel_apps: '2'", "parallel_apps: 2"))

    killed = invoke(config, "--json", crash_at="archive.record:50")  # shop has ~75, support ~20
    rerun = invoke(config, "--json")

    assert killed.exit_code == 3
    shop, support = json.loads(killed.stdout)["apps"]
    assert (shop["exit_code"], support["exit_code"]) == (3, 0)
    assert "its process died" in shop["error"] and Path(support["run"]["bag"]).is_dir()
    assert rerun.exit_code == 0, rerun.output
    shop, support = json.loads(rerun.stdout)["apps"]
    reference = alone("shop")
    assert payload(Path(shop["run"]["bag"])) == payload(reference)
    assert support["run"]["already_done"] is True


def test_a_bug_in_one_app_run_after_another_stops_no_other_and_tells_what_it_published(
    emulators, keys, tmp_path, monkeypatch
):
    """Only an `AuditorError` was one app's failure: a plain exception (a bug) in the first app
    ended the command, exit 70, the second never audited and the first's bag not told."""
    import auditor.apps

    def a_bug_once_shop_is_published(settings, progress=None):
        outcome = run_audit(settings, progress)
        if settings.source.app == "shop":
            raise RuntimeError("a bug after publishing")
        return outcome

    monkeypatch.setattr(auditor.apps, "run_audit", a_bug_once_shop_is_published)
    apps = app_entry("shop", emulators["shop"]) + app_entry("support", emulators["support"])
    config = write_config(tmp_path, keys, apps)

    result = invoke(config, *window(0, 3), "--json")

    assert result.exit_code == 70, result.output
    shop, support = json.loads(result.stdout)["apps"]
    assert shop["exit_code"] == 70 and "RuntimeError: a bug after publishing" in shop["error"]
    (bag,) = (tmp_path / "archive" / "shop").glob("run-*")
    assert f"run 1's bag {bag} was published and recorded in the state" in shop["error"]
    assert support["exit_code"] == 0 and Path(support["run"]["bag"]).is_dir()


def test_a_bug_in_one_app_side_by_side_keeps_the_others_results(emulators, keys, tmp_path):
    """`pool.map` raised at the first app whose process raised: the command ended in exit 70
    and the results of the apps that had finished, and published, were dropped."""
    apps = app_entry(
        "shop", emulators["shop"], since="'2026-11-01T00:00Z'", until="'2026-11-01T03:00Z'"
    ) + app_entry(
        "support", emulators["support"], since="'2026-11-01T00:00Z'", until="'2026-11-01T01:00Z'"
    )
    config = write_config(tmp_path, keys, apps, parallel_apps="2")
    config.write_text(config.read_text().replace("parallel_apps: '2'", "parallel_apps: 2"))

    # shop archives ~75 records, support ~20: a bug in shop's process alone
    result = invoke(config, "--json", crash_at="archive.record:50:raise")

    assert result.exit_code == 70, result.output
    shop, support = json.loads(result.stdout)["apps"]
    assert shop["exit_code"] == 70 and "crash point archive.record reached" in shop["error"]
    assert "nothing was published, progress is kept" in shop["error"]
    assert support["exit_code"] == 0 and Path(support["run"]["bag"]).is_dir()


BAD_CONFIGS = [
    (
        "two apps with one name",
        lambda shop, support: shop(None) + shop(None),
        [],
        "apps shop and shop share the name shop: each app needs its own",
    ),
    (
        "two apps writing one bag folder",
        lambda shop, support: shop(None, out="shared") + support(None, out="shared"),
        [],
        "apps shop and support share the bag folder",
    ),
    (
        "a cluster setting inside an app",
        lambda shop, support: shop(None, executor="dask"),
        [],
        "apps[0].executor is shared by all apps: set it in run:",
    ),
    (
        "a misspelt setting inside an app",
        lambda shop, support: shop(None, **{"fail-onn": "high"}),
        [],
        "apps[0].fail-onn is not a setting of auditor run",
    ),
    (
        "a secret written into the config file",
        lambda shop, support: shop({"client_secret": "hunter2"}),
        [],
        "apps[0].source.client_secret is not read from a config file",
    ),
    (
        "an unknown source key",
        lambda shop, support: shop({"colour": "red"}),
        [],
        "unknown key apps[0].source.colour",
    ),
    (
        "a secret variable that is not set",
        lambda shop, support: shop({"client_secret_env": "NOPE_SECRET"}),
        [],
        "apps[0].source.client_secret_env names NOPE_SECRET, which is not set",
    ),
    (
        "--org on the command line",
        lambda shop, support: shop(None),
        ["--org", "acme"],
        "--org names one app, but",
    ),
]


@pytest.mark.parametrize(
    ("apps", "flags", "message"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_a_bad_apps_config_is_refused_in_one_line_before_any_run(
    emulators, keys, tmp_path, apps, flags, message
):
    def entry(name):
        return lambda source, **run: app_entry(name, emulators[name], source, **run)

    config = write_config(tmp_path, keys, apps(entry("shop"), entry("support")))

    result = invoke(config, *window(0, 3), *flags)

    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "archive").exists() and not (tmp_path / "shared").exists()


@pytest.mark.parametrize(
    ("run", "parallel"),
    [({}, 1), ({"executor": "dask"}, 2), ({"executor": "dask", "parallel_apps": "1"}, 1)],
    ids=["local: one app after another", "dask: side by side", "dask, parallel_apps: 1"],
)
def test_apps_run_side_by_side_only_where_the_executor_allows(
    emulators, keys, tmp_path, run, parallel
):
    apps = app_entry("shop", emulators["shop"]) + app_entry("support", emulators["support"])
    config = write_config(tmp_path, keys, apps, **run)
    config.write_text(config.read_text().replace("parallel_apps: '1'", "parallel_apps: 1"))

    plan = load_apps(config, {}, {}, DEFAULTS, environ={"SHOP_SECRET": "s", "SUPPORT_SECRET": "t"})

    assert plan.parallel == parallel
    assert [app.settings.out_dir for app in plan.apps] == [
        tmp_path / "archive" / "shop",
        tmp_path / "archive" / "support",
    ]
