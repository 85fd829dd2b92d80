"""Packages checked against the store's keys but not yet written: the first half of an intake.

Intake is split in two so a station can decide what to do with new packages before it stores them, and
then store them with that decision in one transaction (`Store.record`): one write per package instead of
an insert followed by an update, which was half of the store's time per package under batch load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.packages import Package

__all__ = ["Submission"]


@dataclass
class Submission:
    """What `Store.check_in` found for each request: an existing package, or a new one to insert.

    `stored` holds one (package, created) per request, in request order; a key repeated within the
    submission names the same new package twice, the second time with created False. `new_rows` are the
    rows `Store.record` will insert, one per new package.
    """

    stored: list[tuple[Package, bool]] = field(default_factory=list)
    new_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def new(self) -> list[Package]:
        """The packages this submission creates, oldest first (each once)."""
        return [package for package, created in self.stored if created]

    def __bool__(self) -> bool:
        return bool(self.stored)
