"""Errors raised by the controller; see `geofences.errors` for the whole tree."""

from __future__ import annotations

from geofences.errors import LastmileError


class ControllerError(LastmileError):
    """Root of the controller's own errors."""


class InputError(ControllerError):
    """Bad input: names where (row, field) and why. Raising it means nothing was changed."""

    def __init__(self, reason: str, *, field: str | None = None, row: int | str | None = None) -> None:
        self.reason = reason
        self.field = field
        self.row = row
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class InfeasibleError(ControllerError):
    """A plan that the safety rules refuse (zone crossing, energy below reserve, ...)."""
