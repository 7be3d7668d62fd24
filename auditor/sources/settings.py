"""Connection settings for Easemob, gathered from flags, the environment and a config file.

Precedence: a flag, then the environment (`EASEMOB_BASE_URL`, `EASEMOB_ORG`, `EASEMOB_APP`,
`EASEMOB_CLIENT_ID`, `EASEMOB_API`, `EASEMOB_HOUR_TIMEZONE`, `EASEMOB_RETENTION_DAYS`), then the
`source:` section of a YAML config file, then the defaults. The client secret comes only from
`EASEMOB_CLIENT_SECRET` or a file (`EASEMOB_CLIENT_SECRET_FILE`, or `client_secret_file:` in the
config file): never from a flag, which would land in shell history and process lists, nor inline
in a config file that is likely to be shared.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor.config import beside, read_config
from auditor.errors import ConfigError
from auditor.partitions import parse_hour_timezone
from auditor.sources.easemob import EasemobClient, RetryPolicy, redact_url_text
from auditor.sources.folder import LocalHoursSource, PreparedInputs, prepared_inputs
from auditor.sources.hourfiles import RETENTION_DAYS, HourFileSource
from auditor.sources.interface import Source
from auditor.sources.legacy import LegacyQuerySource
from auditor.sources.options import (
    APIS,
    ATTACHMENT_DOWNLOADS,
    MAX_ATTACHMENT_DOWNLOADS,
    is_loopback,
    read_secret_file,
)
from auditor.sources.pacing import EASEMOB_HOUR_FILES_PER_MINUTE, Pacer, machine_slots

_ENV = {
    "base_url": "EASEMOB_BASE_URL",
    "org": "EASEMOB_ORG",
    "app": "EASEMOB_APP",
    "client_id": "EASEMOB_CLIENT_ID",
    "api": "EASEMOB_API",
    "hour_timezone": "EASEMOB_HOUR_TIMEZONE",
    "retention_days": "EASEMOB_RETENTION_DAYS",
}
_HOW = {
    "base_url": "--base-url or EASEMOB_BASE_URL",
    "org": "--org or EASEMOB_ORG",
    "app": "--app or EASEMOB_APP",
    "client_id": "--client-id or EASEMOB_CLIENT_ID",
    "client_secret": "EASEMOB_CLIENT_SECRET or EASEMOB_CLIENT_SECRET_FILE",
}

_NUMBERS = {
    "timeout": float,
    "max_retries": int,
    "backoff_base": float,
    "backoff_cap": float,
    "hour_files_per_minute": float,
    "attachment_downloads": int,
    "retention_days": float,
}
# Hour files a minute the client may be paced to, besides 0 (unpaced). At one in 100 minutes a
# month's backfill already takes 50 days, and far below it the wait overflows the clock (1e-300
# crashed the pacer); at 100 a second, pacing no longer holds back what a server could serve.
HOUR_FILES_PER_MINUTE_RANGE = (0.01, 6000.0)
# Below a day, an hour the source has not generated yet (Easemob advises fetching an hour a day
# after it ends) could be taken for one it deleted; Easemob keeps them 3 days at the least.
LEAST_RETENTION_DAYS = 1.0
CONFIG_KEYS = frozenset({*_ENV, "client_secret_file", *_NUMBERS})


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Everything needed to reach one Easemob app; `client_secret` is kept out of the repr."""

    base_url: str
    org: str
    app: str
    client_id: str
    client_secret: str = field(repr=False)
    api: str = "hourfiles"
    hour_timezone: str = "UTC"
    timeout: float = 30.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    hour_files_per_minute: float | None = None
    attachment_downloads: int = ATTACHMENT_DOWNLOADS
    retention_days: float = RETENTION_DAYS

    @property
    def tz(self) -> timezone:
        return parse_hour_timezone(self.hour_timezone)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_base, self.backoff_cap)

    @property
    def hour_file_rate(self) -> float:
        """Hour-file requests a minute the client allows itself (0: unpaced): as set, else
        Easemob's documented 10 for a remote server and none for one on this machine (the
        emulator), which has no such limit unless it is asked to."""
        if self.hour_files_per_minute is not None:
            return self.hour_files_per_minute
        host = urlsplit(self.base_url).hostname or ""
        return 0.0 if is_loopback(host) else EASEMOB_HOUR_FILES_PER_MINUTE


@dataclass(frozen=True, slots=True)
class LocalSettings(ConnectionSettings):
    """Local files as a run's source (`auditor run --from`), as `folder.prepared_inputs`
    prepared them: where the workers read the hours. `base_url` is what the inputs are known by
    (`PreparedInputs.description`), which the run's settings digest and its bag-info hold in
    place of a URL; `org` and `app` are as given, else `-`."""

    folder: str = ""
    pulled: bool = False
    stamps: str = ""


def _config_section(path: str | Path) -> dict[str, Any]:
    """The `source:` mapping of a YAML config file, its keys checked."""
    path = Path(path)
    document = read_config(path)
    section = document.get("source") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: `source` must be a mapping")
    if "client_secret" in section:
        raise ConfigError(
            f"{path}: source.client_secret is not read from a config file; set "
            "EASEMOB_CLIENT_SECRET, or put the secret alone in a file named by client_secret_file"
        )
    unknown = sorted(set(section) - CONFIG_KEYS, key=str)  # a YAML key may be 1 or !!binary
    if unknown:
        raise ConfigError(
            f"{path}: unknown key source.{unknown[0]}; known keys: {', '.join(sorted(CONFIG_KEYS))}"
        )
    return section


def path_in_config(config_file: str | Path, value: Any) -> str:
    """A path in the config file, `~` expanded and a relative one taken from the file's folder,
    as `run:` paths are."""
    return beside(Path(config_file), str(value))


def load_settings(
    flags: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """Settings from flags (None values ignored), environment and config file, checked."""
    flags = {key: value for key, value in (flags or {}).items() if value is not None}
    if "client_secret" in flags:
        raise ConfigError("the client secret is never taken from a flag; use EASEMOB_CLIENT_SECRET")
    environ = os.environ if environ is None else environ
    section = _config_section(config_file) if config_file else {}
    values: dict[str, Any] = {}
    for key in dict.fromkeys((*_ENV, *_NUMBERS)):
        if key in flags:
            values[key] = flags[key]
        elif key in _ENV and environ.get(_ENV[key]):
            values[key] = environ[_ENV[key]]
        elif section.get(key) is not None:
            values[key] = section[key]
    if environ.get("EASEMOB_CLIENT_SECRET"):
        values["client_secret"] = environ["EASEMOB_CLIENT_SECRET"]
    elif environ.get("EASEMOB_CLIENT_SECRET_FILE"):
        values["client_secret"] = read_secret_file(
            environ["EASEMOB_CLIENT_SECRET_FILE"], "EASEMOB_CLIENT_SECRET_FILE"
        )
    elif section.get("client_secret_file"):
        values["client_secret"] = read_secret_file(
            path_in_config(config_file, section["client_secret_file"]),
            f"source.client_secret_file in {config_file}",
        )
    missing = [how for key, how in _HOW.items() if not values.get(key)]
    if missing:
        raise ConfigError("missing connection settings: " + "; ".join(missing))
    return _checked(values)


def _checked(values: dict[str, Any]) -> ConnectionSettings:
    for key in ("base_url", "org", "app", "client_id", "api", "hour_timezone"):
        if key in values:
            if isinstance(values[key], list | dict | bool):
                raise ConfigError(f"{key} must be text, not {values[key]!r}")
            values[key] = str(values[key]).strip()
    base_url = values["base_url"].rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"base URL {redact_url_text(base_url)!r} must start with http:// or https://"
        )
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError as error:
        shown = redact_url_text(base_url)
        raise ConfigError(f"base URL {shown!r} is not a URL ({error})") from None
    if "@" in parts.netloc:
        # requests would send them as Basic auth in place of the app's token
        raise ConfigError(
            f"base URL {redact_url_text(base_url)} holds a user name or password: give the "
            "cluster's address alone (the app signs in with its client id and secret)"
        )
    values["base_url"] = base_url
    api = values.get("api", "hourfiles")
    if api not in APIS:
        raise ConfigError(f"api {api!r} is not one of {', '.join(APIS)}")
    parse_hour_timezone(values.get("hour_timezone", "UTC"))
    for key, kind in _NUMBERS.items():
        if key in values:
            given = values[key]
            try:
                if isinstance(given, bool) or (kind is int and isinstance(given, float)):
                    raise ValueError
                values[key] = kind(given)
            except (TypeError, ValueError, OverflowError):
                what = "a whole number" if kind is int else "a number"
                raise ConfigError(f"{key} must be {what}, not {given!r}") from None
            if not math.isfinite(values[key]):
                raise ConfigError(f"{key} must be a finite number, not {values[key]!r}")
            if key == "retention_days" and values[key] < LEAST_RETENTION_DAYS:
                raise ConfigError(
                    f"retention_days must be at least {LEAST_RETENTION_DAYS:g} (the days the "
                    f"source keeps hour files: 3 unless a contract says 7, 90 or 180), "
                    f"not {values[key]:g}"
                )
            if values[key] < 0 or (key == "timeout" and values[key] == 0):
                raise ConfigError(f"{key} must be {'above' if key == 'timeout' else 'at least'} 0")
    _check_pace(values.get("hour_files_per_minute"))
    downloads = values.get("attachment_downloads", ATTACHMENT_DOWNLOADS)
    if not 1 <= downloads <= MAX_ATTACHMENT_DOWNLOADS:
        raise ConfigError(
            f"attachment_downloads must be 1-{MAX_ATTACHMENT_DOWNLOADS}, not {downloads}"
        )
    return ConnectionSettings(**values)


def _check_pace(rate: float | None) -> None:
    least, most = HOUR_FILES_PER_MINUTE_RANGE
    if rate and not least <= rate <= most:
        raise ConfigError(
            f"hour_files_per_minute must be 0 (unpaced) or from {least:g} to {most:g}, not {rate:g}"
        )


def make_client(settings: ConnectionSettings, pace_slots: Path | None = None) -> EasemobClient:
    """The client of the settings; `pace_slots` is the file through which every process of a
    run shares the hour-file pace (`pacing.Pacer`), None for a pace of this process alone; every
    process on this machine calling the app shares it as well (`pacing.machine_slots`)."""
    rate = settings.hour_file_rate
    machine = machine_slots(settings.base_url, settings.org, settings.app) if rate > 0 else None
    return EasemobClient(
        settings.base_url,
        settings.org,
        settings.app,
        settings.client_id,
        settings.client_secret,
        timeout=settings.timeout,
        retry=settings.retry_policy(),
        hour_file_pacer=Pacer(rate, pace_slots, machine=machine) if rate > 0 else None,
    )


@contextmanager
def local_settings(
    inputs: Sequence[str | Path],
    flags: Mapping[str, Any] | None,
    config_file: str | Path | None,
    work_parent: Path,
    environ: Mapping[str, str] | None = None,
) -> Iterator[tuple[LocalSettings, PreparedInputs]]:
    """Settings of a run from local files, prepared under `work_parent` for as long as the
    block lasts; org, app and hour zone as `load_settings` finds them, the rest of the source's
    settings unused. A flag naming an Easemob server (`--base-url`, `--api`) is refused: it
    says the run was meant to read it."""
    flags = {key: value for key, value in (flags or {}).items() if value is not None}
    for key in ("base_url", "api"):
        if key in flags:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"--from reads local files, not an Easemob server: drop {flag}")
    environ = os.environ if environ is None else environ
    section = _config_section(config_file) if config_file else {}
    given: dict[str, str] = {}
    for key in ("org", "app", "hour_timezone"):
        value = flags.get(key) or environ.get(_ENV[key]) or section.get(key)
        if value is not None:
            if isinstance(value, list | dict | bool):
                raise ConfigError(f"{key} must be text, not {value!r}")
            given[key] = str(value).strip()
    zone = given.get("hour_timezone") or None
    if zone is not None:
        parse_hour_timezone(zone)
    with prepared_inputs(inputs, zone, work_parent) as prepared:
        settings = LocalSettings(
            base_url=prepared.description,
            org=given.get("org") or "-",
            app=given.get("app") or "-",
            client_id="",
            client_secret="",
            api=LocalHoursSource.name,
            hour_timezone=prepared.hour_timezone,
            folder=str(prepared.folder),
            pulled=prepared.pulled,
            stamps=str(prepared.stamps or ""),
        )
        yield settings, prepared


def find_machine_pace(settings: ConnectionSettings) -> None:
    """Looks for the machine's slot file as `make_client` will in each worker, in the run's own
    process before they are forked: a pace that cannot be shared is said once here (once a
    process, `pacing`), not by every worker."""
    if not isinstance(settings, LocalSettings) and settings.hour_file_rate > 0:
        machine_slots(settings.base_url, settings.org, settings.app)


def strays_cause(settings: ConnectionSettings) -> str:
    """Why the source the settings name would serve mostly records of other hours."""
    if settings.api == "legacy" and not isinstance(settings, LocalSettings):
        return LegacyQuerySource.strays_cause
    return Source.strays_cause


def make_source(settings: ConnectionSettings, pace_slots: Path | None = None) -> Source:
    """The source the settings name: Easemob's hour files or its legacy `ql` API, or the
    local files of `LocalSettings`."""
    if isinstance(settings, LocalSettings):
        stamps = Path(settings.stamps) if settings.stamps else None
        return LocalHoursSource(Path(settings.folder), settings.tz, settings.pulled, stamps)
    client = make_client(settings, pace_slots)
    if settings.api == "legacy":
        return LegacyQuerySource(client, hour_timezone=settings.tz)
    return HourFileSource(client, hour_timezone=settings.tz, retention_days=settings.retention_days)
