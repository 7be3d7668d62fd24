"""Many Easemob apps audited by one `auditor run --config`: each with its own chain and state.

The config file lists them under `apps:`. An entry has its own `source:` (org, app, client id, and
its secret by `client_secret_file` or `client_secret_env`, the name of an environment variable) and
may set any setting of `run:` for itself but `executor`, `scheduler`, `parallel_apps` and
`file_access`, which the apps share. The top-level `source:` and `run:` sections are what every app
shares, the app's own keys win over them, and flags on the command line win over both, but for
`out` and `state`: there the flag (or `run:`) is a base each app's bag folder (`<out>/<name>`) and
state database (`<state>` with `-<name>` before its suffix) is named from, unless the app sets its
own. So each app keeps its own hash chain and lock, and one app's failure stops no other.

Apps run one after another with the local executor (its process pool already fills the
machine), and side by side on a Dask cluster, whose scheduler shares the workers among them.
The exit code of the command is the worst of the apps' exit codes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from auditor import durable
from auditor.archive.keys import PASSPHRASE_ENV
from auditor.config import check_run_keys, load_run_section, read_config
from auditor.errors import EXIT_INTERNAL, EXIT_OK, EXIT_SOURCE, AuditorError, ConfigError
from auditor.executors import executor_options
from auditor.hidden_env import secrets_hidden
from auditor.partitions import parse_instant
from auditor.pipeline import Progress, RunOutcome, RunSettings, run_audit
from auditor.sources.settings import CONFIG_KEYS, load_settings, path_in_config, read_secret_file

SHARED_ONLY = frozenset({"executor", "scheduler", "parallel_apps", "file_access"})
ONE_APP_FLAGS = ("org", "app", "client_id")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppRun:
    """One app of the config file and the settings of its run."""

    name: str
    settings: RunSettings


@dataclass(frozen=True, slots=True)
class AppsPlan:
    """The apps of a config file, and how many of them may run at once."""

    apps: tuple[AppRun, ...]
    parallel: int


@dataclass(frozen=True, slots=True)
class AppResult:
    """How one app's run ended: its outcome (None when already up to date) or its error."""

    name: str
    outcome: RunOutcome | None
    error: str | None = None
    exit_code: int = EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"name": self.name, "exit_code": self.exit_code}
        if self.error is not None:
            result["error"] = self.error
        elif self.outcome is None:
            result["status"] = "up-to-date"
        else:
            result["run"] = self.outcome.to_dict()
        return result


@dataclass(frozen=True, slots=True)
class AppsOutcome:
    """Every app's result, in the order of the config file."""

    results: tuple[AppResult, ...]

    @property
    def exit_code(self) -> int:
        return max((result.exit_code for result in self.results), default=EXIT_OK)

    def to_dict(self) -> dict[str, Any]:
        return {
            "apps": [result.to_dict() for result in self.results],
            "exit_code": self.exit_code,
        }


def has_apps(config_path: Path | None) -> bool:
    """Whether a config file lists `apps:` (then `auditor run` audits each of them)."""
    if config_path is None:
        return False
    return "apps" in read_config(config_path)


def load_apps(
    config_path: Path,
    flags: Mapping[str, Any],
    source_flags: Mapping[str, Any],
    defaults: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> AppsPlan:
    """The checked apps of a config file; `flags` and `source_flags` are the command line's
    (None when not given), `defaults` the values of settings given nowhere."""
    environ = os.environ if environ is None else environ
    shared = load_run_section(config_path)
    given = {key: value for key, value in flags.items() if value is not None}
    source_given = {key: value for key, value in source_flags.items() if value is not None}
    for key in ONE_APP_FLAGS:
        if key in source_given:
            raise ConfigError(
                f"--{key.replace('_', '-')} names one app, but {config_path} lists apps: "
                "set it in each app's source: instead"
            )
    base = {**defaults, **shared, **given}
    entries = read_config(config_path)["apps"]
    if not isinstance(entries, list):
        raise ConfigError(f"{config_path}: apps: must be a list of apps, each with a source:")
    apps = tuple(
        _app(config_path, index, entry, base, given, source_given, environ)
        for index, entry in enumerate(entries)
    )
    _refuse_shared(config_path, apps)
    executor = base.get("executor", "local")
    parallel = base.get("parallel_apps")
    if parallel is None:
        parallel = len(apps) if executor != "local" else 1
    if parallel < 1:
        raise ConfigError(f"{config_path}: run.parallel_apps must be at least 1")
    return AppsPlan(apps, min(parallel, len(apps)))


def run_apps(plan: AppsPlan, progress_for: Callable[[str], Progress] | None = None) -> AppsOutcome:
    """Audits every app of the plan; an app that fails is reported and stops no other.

    Apps that run side by side each get a process of their own (spawned, so nothing of this
    one's threads is inherited): the coordinator's share of a run (ordering, Merkle tree, bag,
    report, state) is CPU work that threads of one interpreter would take turns at. Per-hour
    progress (`progress_for`) is reported only for apps run one after another.

    The secrets are read by now (each app's client secret is in its settings): they are out of
    the environment while the apps run, so that neither a shared Dask cluster's workers nor an
    app's spawned process inherit them; the key's passphrase is handed to each app's run.
    """
    progress_for = progress_for or (lambda name: Progress())
    passphrase = os.environ.get(PASSPHRASE_ENV)
    secrets = [app.settings.source.client_secret for app in plan.apps]
    with ExitStack() as stack:
        stack.enter_context(secrets_hidden(secrets))
        apps = _sharing_one_local_cluster(plan.apps, stack)
        if plan.parallel == 1:
            results = [_run_app(app, passphrase, progress_for(app.name)) for app in apps]
        else:
            with ThreadPoolExecutor(plan.parallel, thread_name_prefix="app") as pool:
                results = list(pool.map(partial(_run_in_own_process, passphrase=passphrase), apps))
    return AppsOutcome(tuple(results))


def _run_app(app: AppRun, passphrase: str | None, progress: Progress | None = None) -> AppResult:
    """One app's run, given the key's passphrase for as long as it loads the key (the run
    takes it out of the environment again once read)."""
    if passphrase:
        os.environ[PASSPHRASE_ENV] = passphrase
    before = len(durable.runs())
    try:
        outcome = run_audit(app.settings, progress)
    except AuditorError as error:
        made = durable.told(durable.runs()[before:])
        return AppResult(app.name, None, f"{error}{made and f'; {made}'}", error.exit_code)
    except Exception as error:  # a bug in one app's run stops no other
        log.debug("internal error in app %s", app.name, exc_info=True)
        return AppResult(app.name, None, _bug(error, durable.runs()[before:]), EXIT_INTERNAL)
    finally:
        os.environ.pop(PASSPHRASE_ENV, None)
    return AppResult(app.name, outcome, None, outcome.exit_code if outcome else EXIT_OK)


def _bug(error: Exception, made: tuple[durable.DurableRun, ...]) -> str:
    """An app's internal error as its one line, with what its run left durable."""
    reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
    kept = durable.told(made) or "nothing was published, progress is kept"
    if made and durable.nothing_of_its_own(made):
        kept += "; this run published nothing, progress is kept"
    return (
        f"internal error ({reason}); this is a bug in the auditor: {kept}; run with -vv for "
        "the traceback and report it"
    )


def _run_in_own_process(app: AppRun, passphrase: str | None) -> AppResult:
    """One app in a process of its own, so that one app's death (OOM, kill) is its alone; the
    passphrase travels in the pool's pipe, not in the process's environment."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            return pool.submit(_run_app, _portable(app), passphrase).result()
        except BrokenProcessPool:
            return AppResult(
                app.name,
                None,
                "its process died (killed, or out of memory); the hours finished so far are "
                "kept: run again to resume",
                EXIT_SOURCE,
            )
        except Exception as error:  # sending it there or its result back: this app's alone
            log.debug("internal error in app %s", app.name, exc_info=True)
            return AppResult(app.name, None, _bug(error, ()), EXIT_INTERNAL)


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _portable(app: AppRun) -> AppRun:
    """The app with its settings picklable for another process: the default clock is a lambda."""
    if app.settings.now_ms is not RunSettings.__dataclass_fields__["now_ms"].default:
        return app
    return replace(app, settings=replace(app.settings, now_ms=_wall_clock_ms))


def run_settings(values: Mapping[str, Any], source: Any) -> RunSettings:
    """The settings of one run from merged flag/config/default values and its source."""
    return RunSettings(
        source=source,
        policy_path=Path(values["policies"]),
        key_path=Path(values["key"]),
        out_dir=Path(values["out"]),
        state_path=Path(values["state"]),
        since_ms=_instant(values.get("since"), "since"),
        until_ms=_instant(values.get("until"), "until"),
        incremental=values["incremental"],
        attachments=values["attachments"],
        fail_on=values["fail_on"],
        workers=values["workers"],
        executor=values.get("executor", "local"),
        executor_options=executor_options(
            values.get("executor", "local"), values.get("scheduler"), values.get("hour_timeout")
        ),
        profile=values["profile"],
        recheck=values["recheck"],
        ready_delay_hours=values["ready_delay_hours"],
        late_hours=values["late_hours"],
        as_of_ms=_instant(values.get("as_of"), "as-of"),
        namespace=values["namespace"],
        report_lang=values.get("report_lang", "en"),
    )


def _app(
    config_path: Path,
    index: int,
    entry: object,
    base: dict[str, Any],
    given: dict[str, Any],
    source_given: dict[str, Any],
    environ: Mapping[str, str],
) -> AppRun:
    where = f"apps[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), dict):
        raise ConfigError(f"{config_path}: {where} must be a mapping with its own source:")
    entry = dict(entry)
    source_section = entry.pop("source")
    name = entry.pop("name", None)
    shared_only = sorted(SHARED_ONLY & {str(key).replace("-", "_") for key in entry})
    if shared_only:
        raise ConfigError(
            f"{config_path}: {where}.{shared_only[0]} is shared by all apps: set it in run:"
        )
    own = check_run_keys(config_path, entry, where)
    try:
        source = load_settings(
            {**_source_values(config_path, where, source_section), **source_given},
            config_file=config_path,
            environ=_environ_for(config_path, where, source_section, environ),
        )
    except ConfigError as error:
        message = str(error)
        if not message.startswith(str(config_path)):
            message = f"{config_path}: {where}: {message}"
        raise ConfigError(message) from None
    name = str(name) if name is not None else f"{source.org}-{source.app}"
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{config_path}: {where}.name {name!r} must be letters, digits, '.', '_' or '-' "
            "(it names the app's folder and state database)"
        )
    values = {**base, **own, **given}
    values["out"] = own.get("out") or str(Path(base["out"]) / name)
    state = Path(base["state"])
    values["state"] = own.get("state") or str(
        state.with_name(f"{state.stem}-{name}{state.suffix or '.db'}")
    )
    try:
        settings = run_settings(values, source)
    except ConfigError as error:
        raise ConfigError(f"{config_path}: {where} ({name}): {error}") from None
    return AppRun(name, settings)


def _source_values(config_path: Path, where: str, section: dict[str, Any]) -> dict[str, Any]:
    if "client_secret" in section:
        raise ConfigError(
            f"{config_path}: {where}.source.client_secret is not read from a config file; name "
            "a file with client_secret_file or an environment variable with client_secret_env"
        )
    unknown = sorted(set(section) - CONFIG_KEYS - {"client_secret_env"}, key=str)
    if unknown:
        raise ConfigError(f"{config_path}: unknown key {where}.source.{unknown[0]}")
    return {
        key: value
        for key, value in section.items()
        if key not in ("client_secret_file", "client_secret_env") and value is not None
    }


def _environ_for(
    config_path: Path, where: str, section: dict[str, Any], environ: Mapping[str, str]
) -> Mapping[str, str]:
    """The environment as this app's settings see it: its own secret wins over the shared one."""
    if section.get("client_secret_env"):
        variable = str(section["client_secret_env"])
        secret = environ.get(variable)
        if not secret:
            # A name in the usual shape is shown; anything else may be the secret itself.
            named = variable if re.fullmatch(r"[A-Z_][A-Z0-9_]{0,63}", variable) else None
            raise ConfigError(
                f"{config_path}: {where}.source.client_secret_env names {named}, which is not set"
                if named
                else f"{config_path}: {where}.source.client_secret_env names no variable that "
                "is set (the name is not shown: it is not in the usual shape of one, and may be "
                "the secret itself)"
            )
    elif section.get("client_secret_file"):
        secret = read_secret_file(
            path_in_config(config_path, section["client_secret_file"]),
            f"{where}.source.client_secret_file in {config_path}",
        )
    else:
        return environ
    own = {key: value for key, value in environ.items() if key != "EASEMOB_CLIENT_SECRET_FILE"}
    return own | {"EASEMOB_CLIENT_SECRET": secret}


def _instant(text: object, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return parse_instant(str(text))
    except ConfigError as error:
        raise ConfigError(f"--{name}: {error}") from None


def _refuse_shared(config_path: Path, apps: tuple[AppRun, ...]) -> None:
    """Two apps writing one folder or state would mix their chains: refuse it by name."""
    if not apps:
        raise ConfigError(f"{config_path}: apps: lists no app")
    for what, of in (
        ("name", lambda app: app.name),
        ("bag folder", lambda app: app.settings.out_dir.resolve()),
        ("state database", lambda app: app.settings.state_path.resolve()),
    ):
        owners: dict[object, str] = {}
        for app in apps:
            value = of(app)
            if value in owners:
                raise ConfigError(
                    f"{config_path}: apps {owners[value]} and {app.name} share the {what} "
                    f"{value}: each app needs its own"
                )
            owners[value] = app.name


def _sharing_one_local_cluster(apps: tuple[AppRun, ...], stack: ExitStack) -> tuple[AppRun, ...]:
    """Dask apps without a scheduler share one local cluster instead of starting one each."""
    local = [
        app
        for app in apps
        if app.settings.executor == "dask" and "scheduler" not in app.settings.executor_options
    ]
    names = {app.name for app in local}
    if len(local) < 2:
        return apps
    from auditor.executors.dask import local_cluster

    workers = max(app.settings.workers for app in local)
    address = stack.enter_context(local_cluster(workers))
    return tuple(
        replace(
            app,
            settings=replace(
                app.settings,
                executor_options={**app.settings.executor_options, "scheduler": address},
            ),
        )
        if app.name in names
        else app
        for app in apps
    )
