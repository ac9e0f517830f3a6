"""The feature registry: every feature declared once, with its family, window and meaning.

Family modules declare their ``FEATURES`` with ``feature(...)``; ``FEATURES`` here collects
them in output order. ``docs/features.md`` documents each one (a test keeps them in step).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FAMILIES = ("payments", "salary", "balance", "spending", "cash", "activity", "profile")


@dataclass(frozen=True)
class Feature:
    name: str
    family: str
    window: str
    meaning: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def feature(name: str, family: str, window: str, meaning: str) -> Feature:
    if family not in FAMILIES:
        raise ValueError(f"unknown feature family {family!r}")
    return Feature(name, family, window, meaning)
