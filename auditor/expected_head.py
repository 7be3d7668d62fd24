"""`--expect-head HEX`: the chain head the officer recorded, checked against a chain or a state.

Deleting a chain's newest bags leaves a shorter chain that still verifies: each remaining bag
links to the one before it, and nothing in them says that more followed. Only a head recorded
outside the archive (the tagmanifest sha256 a run printed, or `auditor state show` showed)
tells the chain was cut: the run that had it must still be in the chain (a chain that grew since
holds it, a cut one does not). When it is not: exit 1, as a chain that does not verify.
"""

from __future__ import annotations

import re
import sqlite3

import click

from auditor.errors import EXIT_FINDINGS, AuditorError, ConfigError

_HEX = re.compile(r"[0-9a-f]{64}")

OPTION = click.option(
    "--expect-head",
    "expect_head",
    metavar="HEX",
    help="A chain head recorded earlier (the tagmanifest sha256 of the newest run then): exit 1 "
    "when no run of the chain has it, as when its newest bags were deleted.",
)


class HeadMismatch(AuditorError):
    """The chain's head is not the one recorded (exit 1)."""

    exit_code = EXIT_FINDINGS


def parse(text: str | None) -> str | None:
    """The expected head as 64 lowercase hex digits (None when not given)."""
    if text is None:
        return None
    value = text.strip().lower()
    if not _HEX.fullmatch(value):
        raise ConfigError("--expect-head: not a sha256 (64 hex digits)")
    return value


def check(expected: str | None, runs: dict[str, int], head_run: int | None, where: str) -> None:
    """Raises `HeadMismatch` unless the run whose tagmanifest sha256 is `expected` is in the
    chain (`runs`: each run's tagmanifest sha256 to its number). A chain that grew since the
    head was recorded holds it still; one cut before it does not."""
    if expected is None or expected in runs:
        return
    at = f"run {head_run}" if head_run else "no run"
    raise HeadMismatch(
        f"{where}: the recorded head {expected} is not in the chain, which ends at {at}: the "
        "runs after it are missing (their bags deleted or moved), or this is another chain"
    )


def check_state(db: sqlite3.Connection, expected: str | None, where: str) -> None:
    """`check` against the completed runs a state database records."""
    if expected is None:
        return
    rows = db.execute(
        "SELECT tagmanifest_sha256, sequence FROM runs WHERE status = 'completed'"
        " AND tagmanifest_sha256 IS NOT NULL ORDER BY sequence"
    ).fetchall()
    check(expected, dict(rows), rows[-1][1] if rows else None, where)
