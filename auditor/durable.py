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


def told(made: tuple[DurableRun, ...] | None = None) -> str:
    """What the runs `made` (by default, every run of this command) left durable, for the line
    of a failure after them: those are done, and running again would not redo them."""
    said = []
    for run in runs() if made is None else made:
        if run.earlier:
            said.append(
                f"run {run.sequence}'s bag {run.bag}, which a stopped run had recorded in the "
                "state, was published"
            )
        elif run.published:
            said.append(
                f"run {run.sequence}'s bag {run.bag} was published and recorded in the state "
                "(the run is done: running again does not redo it); what failed came after: its "
                "summary was not printed and this exit code does not tell its findings (its "
                "report does)"
            )
        else:
            said.append(
                f"run {run.sequence} is recorded in the state but its bag was not yet renamed "
                f"to {run.bag}: the next run publishes it"
            )
    return "; ".join(said)


def nothing_of_its_own(made: tuple[DurableRun, ...] | None = None) -> bool:
    """Whether none of the runs `made` was recorded by this command (an earlier run's bag may
    have been published on its behalf)."""
    return all(run.earlier for run in (runs() if made is None else made))
