"""What a verification found wrong: one line per problem, naming its file and, if known, line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a bag, a chain or a proof; `str()` is the line the CLI prints.
    `transit` marks damage a copy does without touching what is signed (`archive.transit`)."""

    file: str
    message: str
    line: int | None = None
    transit: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"
