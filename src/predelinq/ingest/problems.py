"""What a rejected file is told: each :class:`Problem` names the file, the 1-based data row
and the column; an :class:`IngestError` carries them all."""

from __future__ import annotations

from dataclasses import dataclass

from predelinq.errors import PredelinqError

MAX_PROBLEMS_PER_FILE = 20


SHOWN_CHARS = 60  # an offending value or name is shown up to this length, then "..."


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with "..." when cut: a 1 MB value is
    shown by its start, not whole."""
    return text if len(text) <= limit else f"{text[:limit]}..."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    file: str
    message: str
    row: int | None = None  # 1-based data row, header excluded
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{clip(self.column)}'")
        return f"{', '.join(where)}: {self.message}"


class IngestError(PredelinqError):
    """Input rejected; nothing was written. Carries every problem found (up to a limit)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))
