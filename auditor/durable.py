"""The runs this command has made durable so far (recorded in the state, their bag published),
kept for the line a later failure prints: an internal error after a bag was published said
"nothing was published", and an operator would run again for a run that was done."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class DurableRun:
    sequence: int
    bag: Path
    published: bool = False
    earlier: bool = False  # committed by an earlier run that was stopped before publishing


_runs: list[DurableRun] = []


def forget() -> None:
    """At the start of each command (tests and programs run several in one process)."""
    _runs.clear()


def committed(sequence: int, bag: Path) -> None:
    """Run `sequence` is recorded in the state; its bag `bag` is not published yet."""
    _runs.append(DurableRun(sequence, bag))


def published(sequence: int, bag: Path) -> None:
    for run in _runs:
        if run.sequence == sequence and run.bag == bag:
            run.published = True
            return
    _runs.append(DurableRun(sequence, bag, published=True))


def finished(sequence: int, bag: Path) -> None:
    """The bag of run `sequence`, committed by an earlier run that was stopped before it
    renamed it, is published now."""
    _runs.append(DurableRun(sequence, bag, published=True, earlier=True))


def runs() -> tuple[DurableRun, ...]:
    return tuple(_runs)
