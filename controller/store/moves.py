"""A state change asked of the store (`Move`), checked before any write, and how it is applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.packages import PackageState, StateMismatch, check_transition
from controller.store import checks

__all__ = ["Move", "Prepared", "prepare"]


# Each state's text by a dict lookup: `.value` is a property written in Python (enum's), and every move
# asked for it three times.
_TEXT = {state: state.value for state in PackageState}


@dataclass(frozen=True)
class Move:
    """One transition for `Store.transition_many`; the same arguments as `Store.transition`."""

    package_id: str
    to_state: PackageState | str
    reason: str
    detail: Mapping[str, Any] | None = None
    expect: PackageState | str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """A checked move: what to write to the package row and what to record as its event."""

    package_id: str
    target: PackageState
    expected: PackageState | None
    reason: str
    values: dict[str, Any]
    event_detail: dict[str, Any]

    def apply(self, current: PackageState, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """(row values, event row) for moving from `current`; raises if the move is not allowed now."""
        if self.expected is not None and current is not self.expected:
            raise StateMismatch(self.package_id, self.expected, current, self.target)
        check_transition(self.package_id, current, self.target)
        target = _TEXT[self.target]
        values = {**self.values, "state": target, "updated_at": now}
        event = {
            "package_id": self.package_id,
            "at": now,
            "from_state": _TEXT[current],
            "to_state": target,
            "reason": self.reason,
            "detail": self.event_detail,
        }
        return values, event


def prepare(move: Move) -> Prepared:
    """Check every argument of a move (nothing is read or written yet).

    Fields not given keep their value, except: back to RECEIVED clears the assignment (vehicle_id, mode,
    eta, energy_margin_wh), because a package on the shelf has no vehicle; VAN sets mode "van" and
    clears vehicle_id, so "who carries it" is never stale.
    """
    target = checks.state("to_state", move.to_state)
    expected = None if move.expect is None else checks.state("expect", move.expect)
    checks.text("reason", move.reason, limit=200)
    values = checks.check_fields(move.fields)
    event_detail = checks.json_dict("detail", move.detail)
    if move.detail is not None:
        values["detail"] = event_detail
    if target is PackageState.RECEIVED:
        for name in ("vehicle_id", "mode", "eta", "energy_margin_wh"):
            values.setdefault(name, None)
    elif target is PackageState.VAN:
        values.setdefault("mode", "van")
        values.setdefault("vehicle_id", None)
    return Prepared(move.package_id, target, expected, move.reason, values, event_detail)
