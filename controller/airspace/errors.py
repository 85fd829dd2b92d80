"""Errors of the airspace planner, under `controller.errors.ControllerError`.

    ControllerError
    └── AirspaceError          root of this package's refusals
        ├── AirspaceConflict   `AirspaceBook.reserve` refused: the volumes meet another vehicle's
        └── AirspaceBusy       `fit_flight` found no launch time before its deadline (code `airspace_busy`)

Both carry the blocking `Conflict`s, so a caller can say who blocks what and until when without parsing
the message. Times stay seconds on the planner's clock: formatting them is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from controller.errors import ControllerError

if TYPE_CHECKING:
    from controller.airspace.book import Conflict

__all__ = ["AirspaceBusy", "AirspaceConflict", "AirspaceError", "describe_conflicts"]


def _seconds(t_s: float) -> str:
    return f"t={t_s:.0f} s"


def describe_conflicts(conflicts: Sequence[Conflict], fmt: Callable[[float], str] = _seconds) -> str:
    """'pad P1 in use by d3 (flight f7) until t=960 s; cruise at 30-50 m by d5 (flight f9) until t=1010 s'."""
    clauses = []
    for c in conflicts:
        pads = sorted({v.pad for v in c.reserved if v.kind == "pad" and v.pad})
        others = sorted({v.kind for v in c.reserved if v.kind != "pad" or not v.pad})
        what = [f"pad {p} in use" for p in pads]
        if others:
            lo = min(v.alt_lo_m for v in c.reserved if v.kind in others)
            hi = max(v.alt_hi_m for v in c.reserved if v.kind in others)
            what.append(f"{'/'.join(others)} at {lo:.0f}-{hi:.0f} m")
        who = f"by {c.vehicle_id} (flight {c.flight_id})"
        clauses.append(f"{', '.join(what)} {who} until {fmt(c.free_at_s)}")
    return "; ".join(clauses)


class AirspaceError(ControllerError):
    """Root of the airspace planner's refusals."""


class AirspaceConflict(AirspaceError):
    """Volumes that would meet another vehicle's reserved volumes; nothing was reserved."""

    def __init__(self, flight_id: str, conflicts: Sequence[Conflict]) -> None:
        self.flight_id = flight_id
        self.conflicts = tuple(conflicts)
        super().__init__(f"flight {flight_id} conflicts: {describe_conflicts(self.conflicts)}")


class AirspaceBusy(AirspaceError):
    """No launch time in [earliest, latest] fits; `free_at_s` is the earliest launch not yet ruled out.

    `free_at_s` is a lower bound, not a promise: at that launch time the volumes that blocked the last
    attempts have ended, but other reservations may still be in the way.
    """

    code = "airspace_busy"

    def __init__(self, free_at_s: float, blocking: Sequence[Conflict], *, flight_id: str = "") -> None:
        self.free_at_s = float(free_at_s)
        self.blocking = tuple(blocking)
        self.flight_id = flight_id
        super().__init__(self.reason())

    def reason(self, fmt: Callable[[float], str] = _seconds) -> str:
        """Human-readable: 'airspace busy until 16:42:10: pad P1 in use by d3 ...' with `fmt` for times."""
        head = f"airspace busy until {fmt(self.free_at_s)}"
        detail = describe_conflicts(self.blocking, fmt)
        return f"{head}: {detail}" if detail else head
