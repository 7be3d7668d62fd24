"""`auditor demo`: the whole audit against the built-in emulator, as a newcomer's first command.

It starts the emulator on a free loopback port with a seeded week of history and a few faults
switched on, makes a throwaway signing key, audits the week in two chained runs (the first days,
then an incremental run for the rest) with `policies.example.yaml`, verifies both bags and the
chain, and says where everything is and which stock commands legal would run.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.archive.chain import verify_chain
from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import ConfigError
from auditor.partitions import DAY_MS, HOUR_MS
from auditor.pipeline import RunOutcome, RunSettings, run_audit
from auditor.resources import example_policy
from auditor.sources.settings import ConnectionSettings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MARKER = ".auditor-demo"


def _fresh_folder(out_dir: Path) -> None:
    """Recreates the demo folder, refusing to delete anything the demo did not make."""
    if out_dir.exists():
        if not (out_dir / MARKER).exists():
            raise ConfigError(f"{out_dir}: exists and was not made by auditor demo; pick --out")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / MARKER).write_text("made by auditor demo; deleted by the next demo run\n")


def run_demo(
    out_dir: Path,
    *,
    messages: int = 30_000,
    days: int = 7,
    workers: int = 2,
    report_lang: str = "en",
    echo: Callable[[str], None] = print,
) -> int:
    """Runs the demo; returns the number of problems `verify` found (0 when all is well)."""
    _fresh_folder(out_dir)
    keys = generate_key_files(out_dir / "keys", identity="demo-auditor")
    options = EmulatorOptions(
        messages=messages,
        days=days,
        fail_rate=0.02,
        rate_limit_rate=0.02,
        duplicate_rate=0.01,
        conflict_rate=0.001,
    )
    end = DEFAULT_START_MS + days * DAY_MS
    with run_emulator(options) as emulator:
        echo(f"emulator: {emulator.base_url} ({messages:,} messages over {days} days)")
        source = ConnectionSettings(
            base_url=emulator.base_url,
            org=options.org,
            app=options.app,
            client_id=options.client_id,
            client_secret=options.client_secret,
            backoff_base=0.01,
            backoff_cap=0.05,
        )

        def settings(**window) -> RunSettings:
            return RunSettings(
                source=source,
                policy_path=example_policy(),
                key_path=keys.private_key,
                out_dir=out_dir / "archive",
                state_path=out_dir / "state.db",
                workers=workers,
                fail_on="high",
                ready_delay_hours=0,
                now_ms=lambda: end + HOUR_MS,
                report_lang=report_lang,
                **window,
            )

        first = run_audit(settings(since_ms=DEFAULT_START_MS, until_ms=end - DAY_MS))
        second = run_audit(settings(incremental=True, until_ms=end))
    problems = verify_runs(
        out_dir / "archive", load_public_key(keys.public_key), [first, second], echo
    )
    echo("")
    echo(f"archive:    {second.bag_path}")
    echo(f"report:     {second.bag_path / 'data' / 'report' / 'report.html'}")
    echo(f"public key: {keys.public_key}  (fingerprint {keys.fingerprint})")
    verify = ["verify", str(second.bag_path), "--pubkey", str(keys.public_key)]
    verify += ["--previous", str(first.bag_path)]
    echo(f"verify:     {auditor_command()} {shlex.join(verify)}")
    echo(f"stock tools: see {second.bag_path / 'data' / 'VERIFY.txt'}")
    return problems


def verify_runs(
    archive: Path,
    public_key: Ed25519PublicKey,
    outcomes: list[RunOutcome],
    echo: Callable[[str], None],
) -> int:
    """Verifies the chain in `archive` and says each run's verdict and the chain's; returns the
    number of problems. Each bag is verified once, by the chain, whose report of each bag is
    the one `auditor verify BAG` gives: verifying each alone first read every record twice."""
    chain = verify_chain(archive, public_key)
    bags = {report.path.name: report for report in chain.bags}
    problems = len(chain.problems)
    for outcome in outcomes:
        assert outcome.bag_path is not None
        report = bags[outcome.bag_path.name]
        problems += len(report.problems)
        verified = "intact" if not report.problems else f"{len(report.problems):,} problems"
        echo(f"{run_line(outcome)}, verify: {verified}")
    echo(f"chain of {len(chain.bags)} runs: " + ("intact" if not chain.problems else "BROKEN"))
    return problems


def run_line(outcome: RunOutcome) -> str:
    """A run in one line: its counts, each with thousands separators, and its verdict, as
    `auditor run` would give it."""
    severities = ", ".join(
        f"{outcome.by_severity[name]:,} {name}"
        for name in ("high", "medium", "low", "info")
        if outcome.by_severity.get(name)
    )
    verdict = (
        f"FAIL: {outcome.failing:,} at or above '{outcome.fail_on}'"
        if outcome.failing
        else f"PASS: nothing at or above '{outcome.fail_on}'"
    )
    return (
        f"run {outcome.sequence}: {outcome.records:,} records, {outcome.findings:,} findings "
        f"({severities or 'none'}), {verdict}"
    )


def auditor_command() -> str:
    """The auditor as a new shell calls it: `auditor` when that name finds this one, else its
    path. `make demo` runs `.venv/bin/auditor`, which a shell without the venv activated (and
    cron) does not find by name; the path is relative when it lies in the current folder, as
    the bags' paths printed beside it are."""
    script = Path(sys.executable).parent / "auditor"
    if not script.is_file():
        return shlex.join([sys.executable, "-m", "auditor"])
    found = shutil.which("auditor")
    if found is not None and Path(found).resolve() == script.resolve():
        return "auditor"
    if script.absolute().is_relative_to(Path.cwd()):
        return shlex.quote(str(script.absolute().relative_to(Path.cwd())))
    return shlex.quote(str(script.absolute()))
