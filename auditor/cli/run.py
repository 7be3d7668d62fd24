"""`auditor run`, the scheduled audit, and `auditor demo`, the same run against the emulator.

The options need only names and bounds; the pipeline, the source's HTTP client, the schemas and
the config reader are imported where the run begins, so `run --help` and an option refused
(a bad --since in a crontab) cost a few hundredths of a second of CPU, not a second.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from auditor import file_access
from auditor.cli.access import file_access_option, given_here
from auditor.cli.exit_codes import EXIT_CODES_HELP
from auditor.cli.pull import _connection_options, _instant
from auditor.errors import ConfigError
from auditor.executors import EXECUTORS, MAX_WORKERS
from auditor.findings import FAIL_ON_LEVELS
from auditor.partitions import Partition, check_window
from auditor.report.catalogue import LANGUAGES
from auditor.sources.options import APIS, ATTACHMENT_DOWNLOADS, MAX_ATTACHMENT_DOWNLOADS

if TYPE_CHECKING:
    from auditor.apps import AppsOutcome
    from auditor.pipeline import Progress, RunOutcome, RunSettings
    from auditor.sources.settings import ConnectionSettings
    from auditor.stages import PartitionOutcome

RUN_HELP = f"""Audit a window of history: pull every hour, validate, apply the policies, write
one signed, hash-chained bag with its findings and report, and record the run.

Every option may also be set in the `run:` section of --config; flags win. With `apps:` in
--config, every app listed is audited into its own chain of bags, and the exit code is the worst
of theirs (see docs/scaling.md). A relative path is taken from the current folder, or, in
--config, from the config file's folder.

Exit codes:

{EXIT_CODES_HELP}"""

DEFAULTS = {
    "policies": "policies.yaml",
    "key": "auditor-signing-key.pem",
    "out": "archive",
    "state": "state.db",
    "attachments": "fetch",
    "fail_on": "high",
    "workers": 1,
    "profile": "loose",
    "ready_delay_hours": 24,
    "late_hours": 48,
    "namespace": "easemob-auditor",
    "incremental": False,
    "recheck": False,
    "executor": "local",
    "report_lang": "en",
}


def _merged(flags: dict, section: dict) -> dict:
    """Flags given on the command line win over the config file, which wins over defaults."""
    merged = dict(DEFAULTS)
    merged.update(section)
    merged.update({key: value for key, value in flags.items() if value is not None})
    return merged


class _Reporter:
    """Progress for people on a terminal, plain lines for cron, nothing when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.total = 0
        self.done = 0
        self.records = 0
        self.started_at = time.monotonic()

    def progress(self) -> Progress:
        from auditor.pipeline import Progress

        return Progress(started=self.started, partition_done=self.partition_done, phase=self.phase)

    def started(self, total: int) -> None:
        self.total = total
        self.started_at = time.monotonic()

    def partition_done(self, partition: Partition, outcome: PartitionOutcome) -> None:
        self.done += 1
        self.records += outcome.records
        if self.quiet:
            return
        elapsed = max(time.monotonic() - self.started_at, 1e-6)
        rate = self.records / elapsed
        left = (self.total - self.done) * elapsed / self.done
        if self.tty:
            click.echo(
                f"\r[{self.done}/{self.total} hours] {self.records:,} records "
                f"{rate:,.0f}/s, about {left:,.0f}s left ",
                err=True,
                nl=False,
            )
        else:
            click.echo(
                f"hour {partition.iso()}: {outcome.records} records, {outcome.findings} findings, "
                f"{outcome.duplicates} duplicates dropped",
                err=True,
            )

    def phase(self, name: str) -> None:
        if not self.quiet:
            click.echo(("\n" if self.tty else "") + f"{name}: writing the signed bag", err=True)


def _print_outcome(outcome: RunOutcome | None, as_json: bool, quiet: bool) -> None:
    if outcome is None:
        message = "nothing to do: no complete hour since the last run"
        click.echo(json.dumps({"status": "up-to-date"}) if as_json else message)
        return
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=2))
        return
    if quiet:
        return
    data = outcome.to_dict()
    if outcome.already_done:
        click.echo(f"already done: run {outcome.sequence} audited this window with these settings")
    severities = (
        ", ".join(f"{n} {name}" for name, n in sorted(outcome.by_severity.items())) or "none"
    )
    click.echo(f"run {outcome.sequence}: {data['window']['since']} .. {data['window']['until']}")
    click.echo(
        f"  records archived: {outcome.records:,} ({outcome.skipped_duplicates:,} "
        "already archived, skipped)"
    )
    if outcome.relooked:
        click.echo(
            f"  fetched again for late records: {outcome.relooked:,} archived before, skipped"
        )
    if outcome.lost_hours:
        click.echo(
            f"  hours lost: {outcome.lost_hours:,} (the source no longer serves them: see the "
            "report's hour-expired findings)"
        )
    if outcome.policy_changed_from:
        click.echo(
            f"  policy changed since the previous run (its digest was "
            f"{outcome.policy_changed_from[:12]}): see the report's policy-changed finding"
        )
    click.echo(f"  findings: {outcome.findings:,} ({severities})")
    click.echo(f"  merkle root: {outcome.merkle_root}")
    click.echo(f"  bag: {outcome.bag_path}")
    click.echo(f"  report: {data['report']}")
    verdict = (
        f"FAIL: {outcome.failing} findings at or above '{outcome.fail_on}'"
        if outcome.failing
        else f"PASS: nothing at or above '{outcome.fail_on}'"
    )
    click.echo(f"  {verdict}")


def _app_progress(name: str, quiet: bool) -> Progress:
    """Progress of one of several apps: a line a finished hour, named by its app."""
    from auditor.pipeline import Progress

    def partition_done(partition: Partition, outcome: PartitionOutcome) -> None:
        if not quiet:
            click.echo(
                f"{name}: hour {partition.iso()}: {outcome.records} records, "
                f"{outcome.findings} findings",
                err=True,
            )

    return Progress(partition_done=partition_done)


def _print_apps(outcome: AppsOutcome, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=2))
    for result in outcome.results:
        if result.error is not None:
            click.echo(f"auditor: error: app {result.name}: {result.error}", err=True)
        elif not as_json:
            if not quiet:
                click.echo(f"app {result.name}:")
            _print_outcome(result.outcome, False, quiet)


def _run_apps(
    config_file: Path, flags: dict, source_flags: dict, as_json: bool, quiet: bool
) -> None:
    """`auditor run --config` of a file with `apps:`: every app, each with its own chain."""
    from auditor.apps import load_apps, run_apps

    plan = load_apps(config_file, flags, source_flags, DEFAULTS)
    for app in plan.apps:
        _refuse_inside_bags({"out": app.settings.out_dir, "state": app.settings.state_path})
    outcome = run_apps(plan, lambda name: _app_progress(name, quiet or as_json))
    _print_apps(outcome, as_json, quiet)
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


def _refuse_inside_bags(values: dict) -> None:
    """A run's bags and state never go inside a bag (an `out:` naming a run's folder): what it
    wrote there would break that signed archive."""
    from auditor.fsutil import refuse_inside_any_bag

    refuse_inside_any_bag(values["out"], "bags")
    refuse_inside_any_bag(values["state"], "the state database")


def _window(values: dict) -> tuple[int | None, int | None]:
    """--since and --until, refused before anything starts when no run could mean them. An
    incremental run starts where the last one ended, so only its instants are checked here; its
    window is checked once the state tells it (`pipeline._window`)."""
    since_ms = _instant(values["since"], "--since") if values.get("since") else None
    until_ms = _instant(values["until"], "--until") if values.get("until") else None
    if values["incremental"]:
        check_window(since_ms, None)
        check_window(None, until_ms)
    else:
        check_window(since_ms, until_ms)
    return since_ms, until_ms


@click.command("run", help=RUN_HELP)
@click.option("--since", help="Window start: ISO 8601 (UTC unless a zone is given) or epoch ms.")
@click.option("--until", help="Window end (exclusive), as --since.")
@click.option(
    "--incremental",
    is_flag=True,
    default=None,
    help="From where the last run ended (a chain's first run: the oldest hour the source "
    "keeps, or --since) to the newest hour the source has ready.",
)
@click.option(
    "--policies", type=click.Path(dir_okay=False), help="Policy file [default: policies.yaml]."
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False),
    help="Ed25519 signing key (PEM) from `auditor keygen` [default: auditor-signing-key.pem]; "
    "its passphrase from AUDITOR_KEY_PASSPHRASE, or the file AUDITOR_KEY_PASSPHRASE_FILE names.",
)
@click.option("--out", type=click.Path(file_okay=False), help="Folder of bags [default: archive].")
@click.option(
    "--state", type=click.Path(dir_okay=False), help="State database [default: state.db]."
)
@click.option(
    "--attachments",
    type=click.Choice(["fetch", "skip"]),
    help="[default: fetch; skip with --from]",
)
@click.option(
    "--attachment-downloads",
    type=click.IntRange(min=1, max=MAX_ATTACHMENT_DOWNLOADS),
    help=f"Attachment files each worker downloads at once [default: {ATTACHMENT_DOWNLOADS}].",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON_LEVELS),
    help="Exit 1 when findings at or above this severity exist [default: high].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_WORKERS),
    help="Partitions (hours) processed in parallel [default: 1].",
)
@click.option(
    "--profile",
    type=click.Choice(["loose", "strict"]),
    help="Schema profile: loose accepts what Easemob really sends; strict also flags each loose "
    "encoding [default: loose].",
)
@click.option(
    "--recheck",
    is_flag=True,
    default=None,
    help="Re-pull an archived window: report messages changed or gone at the source.",
)
@click.option(
    "--ready-delay-hours",
    type=click.IntRange(min=0),
    help="Hours after its end before an hour counts as ready [default: 24].",
)
@click.option(
    "--late-hours",
    type=click.IntRange(min=0),
    help="With --incremental, fetch an hour again once it is this old, for records Easemob "
    "wrote late (0: never) [default: 48].",
)
@click.option(
    "--as-of",
    help="Judge retention and legal holds as of this instant (as --since) instead of when the "
    "run begins: to re-audit a window reproducibly.",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    help="Where partitions run: local processes or a Dask cluster [default: local].",
)
@click.option(
    "--scheduler",
    metavar="tls://HOST:8786",
    help="Dask scheduler of --executor dask; without it, a local cluster of --workers processes. "
    "Tasks carry secrets: tcp:// is refused off this machine, use tls://.",
)
@click.option(
    "--hour-timeout",
    metavar="DURATION",
    help="Stop (exit 3, finished hours kept) when the next hour in order is not done this long "
    "after the run began waiting for it: a hung worker is killed, or left to its Dask cluster. "
    "A number of s, m, h or d (a bare number is seconds), from 1s to 7d "
    "[default: 1h; e.g. 30m, 3600s].",
)
@click.option(
    "--api",
    type=click.Choice(APIS),
    help="hourfiles (current) or legacy (ql pages) [env: EASEMOB_API; default: hourfiles].",
)
@click.option(
    "--from",
    "from_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Audit local .jsonl/.gz files or folders, or a folder `auditor pull` wrote, instead of "
    "Easemob (repeatable); the window defaults to the hours they hold.",
)
@click.option(
    "--hour-timezone",
    help="Zone the source names hours in: UTC or +8 [env: EASEMOB_HOUR_TIMEZONE; default: UTC, "
    "or with --from the zone of the folder `auditor pull` wrote].",
)
@click.option(
    "--report-lang",
    type=click.Choice(LANGUAGES),
    help="Language of the bag's report.html: en or zh-CN (Simplified Chinese) [default: en].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@file_access_option(", or by `file_access:` in the `run:` section of --config")
@_connection_options
def run_command(config_file, as_json, quiet, from_paths, **flags) -> None:
    source_flags = {
        name: flags.pop(name)
        for name in (
            "base_url",
            "org",
            "app",
            "client_id",
            "max_retries",
            "timeout",
            "attachment_downloads",
            "retention_days",
            "api",
            "hour_timezone",
        )
    }
    section = _run_section(config_file)
    _file_access_of(section)
    values = _merged(flags, section)
    _refuse_inside_bags(values)
    since_ms, until_ms = _window(values)
    from auditor.apps import has_apps
    from auditor.sources.settings import load_settings

    if from_paths:
        chosen = flags["attachments"] or section.get("attachments")
        window = (since_ms, until_ms)
        _run_files(from_paths, config_file, values, source_flags, chosen, window, as_json, quiet)
        return
    if has_apps(config_file):
        _run_apps(config_file, flags, source_flags, as_json, quiet)
        return
    source = load_settings(source_flags, config_file=config_file)
    _audit(_settings(values, source, since_ms, until_ms), as_json, quiet)


def _file_access_of(section: dict) -> None:
    """The config's `file_access:`, unless `--file-access` (before or after `run`) or its
    variable chose (flags win)."""
    ctx = click.get_current_context()
    above = ctx.find_root().get_parameter_source("file_access")
    chosen = given_here(ctx) or above is not click.core.ParameterSource.DEFAULT
    if "file_access" in section and not chosen:
        file_access.restrict(section["file_access"])


def _run_section(config_file: Path | None) -> dict:
    """The config file's `run:` section; without --config, no file to read, and neither YAML
    nor the schemas its check uses are imported."""
    if config_file is None:
        return {}
    from auditor.config import load_run_section

    return load_run_section(config_file)


def _run_files(paths, config_file, values, source_flags, chosen, window, as_json, quiet) -> None:
    """`auditor run --from`: the run over local files, prepared once before it starts
    (`sources.folder`), offline: attachments are not fetched."""
    from auditor.apps import has_apps
    from auditor.archive import layout
    from auditor.sources.settings import local_settings

    if has_apps(config_file):
        raise ConfigError(
            "--from audits one set of files, and the config lists apps: (Easemob apps, each "
            "audited from the network); give --from a config without apps:"
        )
    if values["incremental"]:
        raise ConfigError(
            "--incremental runs up to the newest hour Easemob has ready; with --from, give "
            "--since and --until, or neither for the hours the files hold"
        )
    if chosen == "fetch":
        raise ConfigError(
            "--attachments fetch downloads from Easemob, and --from audits files offline: "
            "use --attachments skip (the default with --from)"
        )
    values = {**values, "attachments": "skip"}
    work = Path(values["out"]) / layout.SPOOL_FOLDER
    with local_settings(paths, source_flags, config_file, work) as (source, prepared):
        since_ms, until_ms = prepared.window(*window)
        _audit(_settings(values, source, since_ms, until_ms), as_json, quiet)


def _settings(
    values: dict, source: ConnectionSettings, since_ms: int | None, until_ms: int | None
) -> RunSettings:
    from auditor.executors import executor_options
    from auditor.pipeline import RunSettings

    return RunSettings(
        source=source,
        policy_path=Path(values["policies"]),
        key_path=Path(values["key"]),
        out_dir=Path(values["out"]),
        state_path=Path(values["state"]),
        since_ms=since_ms,
        until_ms=until_ms,
        incremental=values["incremental"],
        attachments=values["attachments"],
        fail_on=values["fail_on"],
        workers=values["workers"],
        executor=values["executor"],
        executor_options=executor_options(
            values["executor"], values.get("scheduler"), values.get("hour_timeout")
        ),
        profile=values["profile"],
        recheck=values["recheck"],
        ready_delay_hours=values["ready_delay_hours"],
        late_hours=values["late_hours"],
        as_of_ms=_instant(values["as_of"], "--as-of") if values.get("as_of") else None,
        namespace=values["namespace"],
        report_lang=values["report_lang"],
    )


def _audit(settings: RunSettings, as_json: bool, quiet: bool) -> None:
    from auditor.pipeline import run_audit

    reporter = _Reporter(quiet or as_json)
    outcome = run_audit(settings, reporter.progress())
    _print_outcome(outcome, as_json, quiet)
    if outcome is not None and outcome.exit_code:
        sys.exit(outcome.exit_code)


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for the demo's keys, state, bags and report (recreated each time).",
)
@click.option("--messages", type=click.IntRange(min=0), default=30_000, show_default=True)
@click.option("--days", type=click.IntRange(min=2), default=7, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=2, show_default=True
)
@click.option(
    "--report-lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language of the bags' report.html: en or zh-CN (Simplified Chinese).",
)
@file_access_option()
def demo_command(out_dir: Path, messages: int, days: int, workers: int, report_lang: str) -> None:
    """Audit a seeded week of history from the built-in emulator, end to end."""
    from auditor.demo import run_demo

    run_demo(
        out_dir,
        messages=messages,
        days=days,
        workers=workers,
        report_lang=report_lang,
        echo=click.echo,
    )


COMMANDS: list[click.Command] = [run_command, demo_command]
