"""The `run:` section of `auditor.yaml`: every setting of `auditor run`, which flags override.

The same file's `source:` section is read by `auditor.sources.settings`, and its `apps:` list
(several Easemob apps audited by one command) by `auditor.apps`. Unknown keys are refused
by name, so a misspelt setting is not silently ignored in a scheduled job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from auditor.errors import ConfigError
from auditor.file_access import ACCESS
from auditor.findings import FAIL_ON_LEVELS
from auditor.operator_files import home_expanded, read_operator_file
from auditor.validation import PROFILES
from auditor.yamlsafe import located_problem, safe_load

RUN_KEYS = {
    "since": str,
    "until": str,
    "incremental": bool,
    "policies": str,
    "key": str,
    "out": str,
    "state": str,
    "attachments": str,
    "fail_on": str,
    "workers": int,
    "profile": str,
    "recheck": bool,
    "ready_delay_hours": int,
    "late_hours": int,
    "as_of": str,
    "namespace": str,
    "executor": str,
    "scheduler": str,
    "hour_timeout": str,
    "parallel_apps": int,
    "report_lang": str,
    "file_access": str,
}
# Settings the command line takes from a fixed set or range: the config file is held to the same.
# Checked here, not only by the run, whose error named `--fail-on` to an operator who set no flag.
RUN_CHOICES = {
    "attachments": ("fetch", "skip"),
    "fail_on": FAIL_ON_LEVELS,
    "profile": PROFILES,
    "executor": ("local", "dask"),  # executors.EXECUTORS, whose modules import this one
    "report_lang": ("en", "zh-CN"),  # report.catalogue.LANGUAGES, kept out of this light module
    "file_access": ACCESS,
}
RUN_LEAST = {"ready_delay_hours": 0, "late_hours": 0, "workers": 1, "parallel_apps": 1}


def read_config(path: str | Path) -> dict[str, Any]:
    """The whole config file: a mapping of `source:`, `run:` and `apps:`, or a one-line error.

    Every reader of the file (`sources.settings`, `apps`, `load_run_section`) goes through here,
    so a broken file is reported the same way whichever section is read first.
    """
    path = Path(path)
    raw = read_operator_file(path, "config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
    try:
        document = safe_load(text) or {}
    except yaml.YAMLError as error:
        line, problem = located_problem(error, text)
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with source: and run:")
    unknown_sections = sorted(map(str, set(document) - {"source", "run", "apps"}))
    if unknown_sections:  # as text: a YAML key may be 1 or !!binary, which text does not sort with
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown_sections)}")
    return document


def load_run_section(path: Path | None) -> dict[str, Any]:
    """The checked `run:` mapping of a config file, with relative paths made relative to it."""
    if path is None:
        return {}
    section = read_config(path).get("run") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: run: must be a mapping")
    return check_run_keys(path, section, "run")


def check_run_keys(path: Path, section: dict, where: str) -> dict[str, Any]:
    """Settings of `auditor run` in a mapping of the config file (`where` names it in errors),
    checked by name and kind, with relative paths made relative to the file."""
    checked: dict[str, Any] = {}
    for key, value in section.items():
        name = str(key).replace("-", "_")
        if name not in RUN_KEYS:
            raise ConfigError(f"{path}: {where}.{key} is not a setting of auditor run")
        kind = RUN_KEYS[name]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{path}: {where}.{key} must be a whole number, not {value!r}")
        if kind is bool and not isinstance(value, bool):
            raise ConfigError(f"{path}: {where}.{key} must be true or false, not {value!r}")
        if kind is str:
            if value is None or str(value).strip() == "":
                raise ConfigError(f"{path}: {where}.{key} is empty: give it a value or remove it")
            value = str(value)
        if name in RUN_CHOICES and value not in RUN_CHOICES[name]:
            raise ConfigError(
                f"{path}: {where}.{key} must be one of {', '.join(RUN_CHOICES[name])}, "
                f"not {value!r}"
            )
        if name in RUN_LEAST and value < RUN_LEAST[name]:
            raise ConfigError(
                f"{path}: {where}.{key} must be at least {RUN_LEAST[name]}, not {value!r}"
            )
        if name in ("policies", "key", "out", "state"):
            value = beside(path, value)
        checked[name] = value
    return checked


def beside(config: Path, value: str) -> str:
    """A path written in the config file `config` as the file means it: `~` expanded as a shell
    would, and a relative one taken from the file's folder, not from wherever the command runs
    (cron and systemd start it elsewhere)."""
    value = str(home_expanded(value))
    return value if Path(value).is_absolute() else str(Path(config).parent / value)
