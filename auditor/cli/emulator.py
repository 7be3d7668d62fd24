"""`auditor emulator`: serve the Easemob-compatible emulator until SIGTERM or Ctrl-C.

It imports the server when it starts serving, and nothing of the auditor's own client: the
tests start it dozens of times, each a fresh interpreter.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from auditor.emulator.dataset import DEFAULT_SEED, DEFAULT_START_MS, MSG_ID_ORDERS
from auditor.errors import ConfigError, os_reason
from auditor.partitions import DAY_MS, HOUR_MS, format_instant, parse_hour_timezone, parse_instant
from auditor.sources.options import is_loopback, read_secret_file

if TYPE_CHECKING:
    from auditor.emulator.server import Emulator

SECRET_ENV = "EASEMOB_CLIENT_SECRET"
DEFAULT_SECRET = "demo-secret"
_RATE = click.FloatRange(0.0, 1.0)
_FAULTS = (
    ("fail", "Share of requests answered 500, 502 or 503."),
    ("chatfile-fail", "Share of attachment downloads answered 500, 502 or 503."),
    ("rate-limit", "Share of requests answered 429 reach_limit."),
    ("legacy-503", "Share of legacy ql requests answered 503."),
    ("slow", "Share of requests answered after --slow-seconds."),
    ("duplicate", "Share of records repeated in hour files; of legacy pages repeated."),
    ("conflict", "Share of records with a second version: same msg_id, another body."),
    ("late", "Share of records missing from an hour's first download."),
    ("mangled", "Share of records followed, in hour files, by a cut-off line that is not JSON."),
    ("shifting", "Share of hours whose file differs on each download: another record cut off."),
    ("truncate", "Share of downloads cut short."),
    ("garbage", "Share of API answers that are 200 with a body that is not JSON."),
    ("short-page", "Share of legacy pages shorter than limit while more rows exist."),
)


def _fault_options(command):
    for name, help_text in reversed(_FAULTS):
        command = click.option(
            f"--{name}-rate", type=_RATE, default=0.0, show_default=True, help=help_text
        )(command)
    return command


def read_secret(secret_file: Path | None) -> str:
    """The client secret from a file, else the environment, else the emulator's demo secret."""
    if secret_file is not None:
        return read_secret_file(str(secret_file), "--client-secret-file")
    return os.environ.get(SECRET_ENV) or DEFAULT_SECRET


# Far past any history, and before the dates Python can write (year 9999) run out.
_YEAR_9000_MS = 221_845_392_000_000


@click.command("emulator")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="History seed.")
@click.option("--messages", type=click.IntRange(min=0), default=10_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--msg-id-order",
    type=click.Choice(MSG_ID_ORDERS),
    default="ordered",
    show_default=True,
    help="msg_ids growing with the send time, snowflake-style (several servers' clocks, "
    "interleaved within an hour, as Easemob's), or in random order (a legacy export).",
)
@click.option(
    "--defect-rate",
    type=_RATE,
    default=0.02,
    show_default=True,
    help="Share of records planted with a schema defect (each fails its schema).",
)
@click.option(
    "--keyword-rate",
    type=_RATE,
    default=0.06,
    show_default=True,
    help="Share of text bodies planted with a keyword term (1 for a finding-heavy history).",
)
@click.option(
    "--pii-rate",
    type=_RATE,
    default=0.04,
    show_default=True,
    help="Share of text bodies planted with PII (a phone, ID or card number, email, IP, URL).",
)
@click.option(
    "--start",
    default=format_instant(DEFAULT_START_MS),
    show_default=True,
    help="First hour of the history: ISO 8601 (UTC unless a zone is given) or epoch ms.",
)
@click.option("--org", default="demo-org", show_default=True)
@click.option("--app", default="demo-app", show_default=True)
@click.option("--client-id", default="demo-client", show_default=True)
@click.option(
    "--client-secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File holding the client secret (else ${SECRET_ENV}, else {DEFAULT_SECRET!r}).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="0 picks a free port.",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not loopback.")
@click.option(
    "--hour-timezone",
    default="UTC",
    show_default=True,
    help="Zone that names hour files: UTC (overseas clusters) or +8 (China).",
)
@click.option("--url-ttl", type=click.IntRange(min=1), default=1800, show_default=True)
@click.option("--token-ttl", type=click.IntRange(min=1), help="Cap on token lifetime (s).")
@click.option("--token-expire-early", type=click.FloatRange(min=0), help="Tokens die after N s.")
@click.option(
    "--token-requests",
    type=click.IntRange(min=1),
    help="Tokens die once N requests presented them (failed ones too): a short life in requests.",
)
@click.option("--ready-delay-hours", type=click.FloatRange(min=0), default=2.0, show_default=True)
@click.option("--retention-days", type=click.FloatRange(min=0), help="Refuse older hours.")
@click.option("--clock-start", help="Emulator time at start (ISO 8601 or epoch ms); default now.")
@_fault_options
@click.option(
    "--hour-file-limit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Hour-file requests allowed a minute, as Easemob's 10; more get 429. 0: no limit.",
)
@click.option(
    "--legacy-hostile",
    default="",
    metavar="SPEC",
    help="Legacy pages that lie, e.g. overlap=3,drop=1,cursor_ttl=2 (see emulator/hostile.py).",
)
@click.option("--slow-seconds", type=click.FloatRange(min=0), default=0.5, show_default=True)
@click.option("--max-consecutive-faults", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--warm", is_flag=True, help="Build every hour file before announcing, on all cores.")
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the base URL to this file once listening.",
)
def emulator_command(
    start: str,
    client_secret_file: Path | None,
    allow_remote: bool,
    clock_start: str | None,
    ready_file: Path | None,
    warm: bool,
    **settings,
) -> None:
    """Serve a local Easemob-compatible server with a synthetic history, until SIGTERM."""
    from auditor.emulator.hostile import parse_spec
    from auditor.emulator.server import EmulatorOptions, serve

    if not is_loopback(settings["host"]) and not allow_remote:
        raise ConfigError(
            f"--host {settings['host']} is not a loopback address; the emulator has no real "
            "security, so pass --allow-remote to expose it anyway"
        )
    start_ms = parse_instant(start)
    if start_ms % HOUR_MS:
        raise ConfigError(f"--start {start} is not on a whole hour")
    if start_ms + settings["days"] * DAY_MS >= _YEAR_9000_MS:
        raise ConfigError(f"--start {start} and --days {settings['days']} reach past the year 9000")
    parse_hour_timezone(settings["hour_timezone"])
    try:
        parse_spec(settings["legacy_hostile"])
    except ValueError as error:
        raise ConfigError(f"--legacy-hostile: {error}") from None
    options = EmulatorOptions(
        start_ms=start_ms,
        client_secret=read_secret(client_secret_file),
        clock_start=None if clock_start is None else parse_instant(clock_start) / 1000,
        **settings,
    )
    stop = threading.Event()
    previous = {
        number: signal.signal(number, lambda *_: stop.set())
        for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        serve(options, stop, on_ready=lambda emulator: _announce(emulator, ready_file, warm))
    except OSError as error:
        raise ConfigError(
            f"cannot listen on {options.host}:{options.port}: {os_reason(error)}"
        ) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _announce(emulator: Emulator, ready_file: Path | None, warm: bool) -> None:
    history, options = emulator.history, emulator.options
    if warm:
        emulator.warm()
    click.echo(
        f"emulator listening on {emulator.base_url} ({options.org}/{options.app}, "
        f"{len(history)} messages from {format_instant(history.start_ms)} "
        f"to {format_instant(history.end_ms)})"
    )
    sys.stdout.flush()
    if ready_file is not None:
        partial = ready_file.with_name(ready_file.name + ".partial")
        try:
            partial.write_text(emulator.base_url + "\n", encoding="utf-8")
            partial.replace(ready_file)
        except OSError as error:
            raise ConfigError(
                f"cannot write --ready-file {ready_file}: {os_reason(error)}"
            ) from None


COMMANDS: list[click.Command] = [emulator_command]
