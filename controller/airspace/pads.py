"""A station's named pads: where drones take off and land, each a resource booked by its pad volumes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.airspace.volumes import XY
from controller.errors import InputError

__all__ = ["Pad"]


def _check_xy(value: object, field: str, row: str) -> XY:
    if not (isinstance(value, tuple | list) and len(value) == 2):
        raise InputError(f"{value!r} is not an (x, y) pair in metres", field=field, row=row)
    x, y = (float(v) for v in value)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InputError(f"{value!r} is not finite", field=field, row=row)
    return (x, y)


@dataclass(frozen=True)
class Pad:
    """A pad at `xy` (local metres). `hold_xy`: where drones wait for it; None: on their inbound route.

    Pads closer than two pad radii (about 64 m) share airspace: their volumes intersect, so they are used
    one after another, as the separation rules demand, however many names they have.
    """

    name: str
    xy: XY
    hold_xy: XY | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "xy", _check_xy(self.xy, "xy", self.name))
        if self.hold_xy is not None:
            object.__setattr__(self, "hold_xy", _check_xy(self.hold_xy, "hold_xy", self.name))
