"""Verifying a series of runs: every bag, sequence numbers without gaps or repeats, every link.

Runs are ordered by the signed `Run-Sequence` in their bag-info, not by folder name, so renaming a
folder cannot reorder history. Deleting a run leaves a gap and a broken link; replaying an older
run leaves a repeated number (or, if its bag-info is edited, a failed signature). What no chain
check can see is the newest runs removed from the end: keep the latest sequence number and
tagmanifest SHA-256 somewhere else too (the run ledger, a ticket, an e-mail to legal).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from auditor.archive import layout
from auditor.archive.problems import Problem
from auditor.archive.publickey import PublicKeys, key_tuple
from auditor.archive.untrusted import shown
from auditor.archive.verify import BagReport, verify_bag
from auditor.errors import InputError


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Each bag's report in sequence order, the chain's own problems, unfinished runs seen, and
    other hidden entries skipped (names escaped)."""

    bags: tuple[BagReport, ...]
    problems: tuple[Problem, ...]
    unfinished: tuple[str, ...]
    hidden: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and all(report.ok for report in self.bags)

    def all_problems(self) -> list[Problem]:
        return [problem for report in self.bags for problem in report.problems] + list(
            self.problems
        )

    def signers(self) -> list[tuple[int, int, str]]:
        """`(first run, last run, fingerprint)` for each stretch of runs one key signed, in run
        order: a rotation shows as a new stretch, an old key signing again as a third."""
        stretches: list[tuple[int, int, str]] = []
        numbered = sorted(
            (report.sequence, report.signer)
            for report in self.bags
            if report.sequence is not None and report.signer is not None
        )
        for sequence, signer in numbered:
            if stretches and stretches[-1][2] == signer:
                stretches[-1] = (stretches[-1][0], sequence, signer)
            else:
                stretches.append((sequence, sequence, signer))
        return stretches

    def sources(self) -> list[tuple[int, int, str]]:
        """`(first run, last run, app and window)` for each stretch of runs of one app, the
        window from the first run's start to the last run's end: legal reads which app and
        hours the chain holds, and a run of another app shows as a stretch of its own."""
        stretches: list[tuple[int, int, str | None, str, str]] = []
        for report in sorted(self.bags, key=lambda report: report.sequence or 0):
            if report.sequence is None or report.window is None:
                continue
            since, until = report.window
            if stretches and stretches[-1][2] == report.app:
                first, _last, app, start, _end = stretches[-1]
                stretches[-1] = (first, report.sequence, app, start, until)
            else:
                stretches.append((report.sequence, report.sequence, report.app, since, until))
        return [
            (first, last, ", ".join(part for part in (app, f"{since} to {until}") if part))
            for first, last, app, since, until in stretches
        ]


def _is_bag(path: Path) -> bool:
    return path.is_dir() and any(
        os.path.lexists(path / name) for name in (layout.BAGIT_TXT, layout.TAGMANIFEST)
    )


def _looks_like_a_run(path: Path) -> bool:
    """A folder that is not a bag yet holds a run's payload or tag files: a damaged run."""
    return path.is_dir() and any(
        os.path.lexists(path / name) for name in (layout.DATA, *layout.ROOT_FILES)
    )


def nested_bags(folder: Path) -> list[Path]:
    """Bags one folder below `folder` (an unzip that made `x/x/`, a bag moved into a subfolder),
    by name; hidden folders are skipped, as the chain skips them."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        found.extend(
            inner
            for inner in sorted(entry.iterdir())
            if not inner.name.startswith(".") and not inner.is_symlink() and _is_bag(inner)
        )
    return found


def verify_chain(folder: str | Path, public_keys: PublicKeys) -> ChainReport:
    """Verifies every bag in `folder` and the chain they form, starting at run 1. Each bag may be
    signed by any of `public_keys`, so a chain verifies across key rotations; `signers` says
    which key signed which runs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of runs")
    entries = sorted(folder.iterdir())
    unfinished = tuple(
        shown(entry.name)
        for entry in entries
        if entry.name.startswith(layout.PARTIAL_PREFIX)
        and entry.name.endswith(layout.PARTIAL_SUFFIX)
    )
    hidden = tuple(
        shown(entry.name)
        for entry in entries
        if entry.name.startswith(".")
        and not entry.name.endswith(layout.PARTIAL_SUFFIX)
        and entry.name != layout.SPOOL_FOLDER
        and entry.is_dir()
    )
    visible = [entry for entry in entries if not entry.name.startswith(".")]
    bags = [entry for entry in visible if _is_bag(entry)]
    problems: list[Problem] = [
        Problem(
            shown(entry.name),
            f"holds a run's files but is not a bag (no {layout.BAGIT_TXT}, no "
            f"{layout.TAGMANIFEST}): a damaged run, not checked",
        )
        for entry in visible
        if not _is_bag(entry) and _looks_like_a_run(entry)
    ]
    nested = nested_bags(folder)
    if not bags and not problems and nested:
        parents = sorted({shown(bag.parent) for bag in nested})
        raise InputError(
            f"{shown(folder)}: holds no bag, but {', '.join(parents)} "
            f"{'holds' if len(parents) == 1 else 'hold'} {len(nested)}: verify-chain "
            f"{'that folder' if len(parents) == 1 else 'each of them'}"
        )
    problems += [
        Problem(
            shown(bag.relative_to(folder).as_posix()),
            "a bag one folder deeper than the others, so not checked in this chain: move it "
            "beside them (did a copy or unzip nest it?) and verify again",
        )
        for bag in nested
    ]
    if not bags:
        if problems:
            return ChainReport((), tuple(problems), unfinished, hidden)
        raise InputError(f"{shown(folder)}: holds no bag")
    keys = key_tuple(public_keys)
    reports = [verify_bag(bag, keys) for bag in bags]
    numbered = []
    for report in reports:
        if report.sequence is None:
            problems.append(
                Problem(
                    shown(report.path.name),
                    f"has no {layout.SEQUENCE}; cannot place it in the chain",
                )
            )
        else:
            numbered.append(report)
    numbered.sort(key=lambda report: (report.sequence, report.path.name))
    if numbered and numbered[0].sequence != 1:
        problems.append(
            Problem(
                shown(numbered[0].path.name),
                f"the chain starts at run {numbered[0].sequence}: runs 1 to "
                f"{numbered[0].sequence - 1} are missing",
            )
        )
    for earlier, later in pairwise(numbered):
        problems.extend(_link_problems(earlier, later))
    return ChainReport(tuple(reports), tuple(problems), unfinished, hidden)


def _link_problems(earlier: BagReport, later: BagReport) -> list[Problem]:
    assert earlier.sequence is not None and later.sequence is not None
    name, earlier_name = shown(later.path.name), shown(earlier.path.name)
    if later.sequence == earlier.sequence:
        return [
            Problem(
                name,
                f"run {later.sequence} appears twice ({earlier_name} and {name}): "
                "an older run replayed?",
            )
        ]
    problems = []
    if later.sequence != earlier.sequence + 1:
        missing = (
            f"run {earlier.sequence + 1} is"
            if later.sequence == earlier.sequence + 2
            else f"runs {earlier.sequence + 1} to {later.sequence - 1} are"
        )
        problems.append(Problem(name, f"{missing} missing between {earlier_name} and {name}"))
    if later.previous_tagmanifest_sha256 != earlier.tagmanifest_sha256:
        problems.append(
            Problem(
                f"{name}/{layout.BAG_INFO}",
                f"{layout.PREVIOUS} {later.previous_tagmanifest_sha256} is not the SHA-256 of "
                f"{earlier_name}/{layout.TAGMANIFEST} ({earlier.tagmanifest_sha256})",
            )
        )
    return problems
