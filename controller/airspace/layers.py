"""Cruise altitude layers chosen by heading, so opposite directions never share a layer.

A semicircular rule, as in manned aviation: with `sectors=2`, headings in [0, 180) take the 1st, 3rd, ...
layer from the bottom and headings in [180, 360) the 2nd, 4th, ... With any even number of sectors, two
headings 180 degrees apart fall in different sectors, so a drone flying out along a line and one coming
back along it are always on different layers. Layers further apart than two vertical buffers have bands
that cannot overlap, so such traffic never conflicts at cruise, whatever the times.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from controller.airspace.margins import Margins
from controller.errors import InputError

__all__ = ["LayerPlan"]


@dataclass(frozen=True)
class LayerPlan:
    """Cruise layers (metres above the station's ground) under a ceiling, split among heading sectors.

    Defaults: 40, 65, 90 and 115 m. 40 m clears trees and low buildings; 25 m apart is more than the
    20 m two vertical buffers need (2 x (7.5 + 2.5)); 115 m plus 2.5 m of altitude error stays under the
    120 m (Part 107 400 ft) ceiling.
    """

    altitudes_m: tuple[float, ...] = (40.0, 65.0, 90.0, 115.0)
    ceiling_m: float = 120.0
    vehicle_max_alt_m: float | None = None
    sectors: int = 2
    margins: Margins = field(default_factory=Margins)

    def __post_init__(self) -> None:
        alts = tuple(sorted(float(a) for a in self.altitudes_m))
        object.__setattr__(self, "altitudes_m", alts)
        if not alts or not all(math.isfinite(a) and a > 0 for a in alts):
            raise InputError(
                f"{self.altitudes_m!r} must be positive altitudes in metres", field="altitudes_m"
            )
        if self.sectors < 2 or self.sectors % 2:
            raise InputError(
                f"{self.sectors} must be even and at least 2 (opposite headings in different sectors)",
                field="sectors",
            )
        spacing = 2 * self.margins.vertical_buffer_m
        for a, b in itertools.pairwise(alts):
            if b - a <= spacing:
                raise InputError(
                    f"layers {a} m and {b} m are {b - a} m apart; their bands overlap unless more than "
                    f"{spacing} m (2 x vertical buffer {self.margins.vertical_buffer_m} m)",
                    field="altitudes_m",
                )
        low = self.margins.pad_transition_alt_m
        if alts[0] <= low:
            raise InputError(
                f"{alts[0]} m is not above the pad transition altitude {low} m", field="altitudes_m"
            )
        for sector in range(self.sectors):
            if not self.for_sector(sector):
                lo, hi = sector * 360 / self.sectors, (sector + 1) * 360 / self.sectors
                raise InputError(
                    f"no layer for headings {lo:.0f}-{hi:.0f} deg fits under {self.limit_m:.1f} m "
                    f"(ceiling {self.ceiling_m} m, vehicle max {self.vehicle_max_alt_m} m, altitude error "
                    f"{self.margins.alt_error_m} m); the sector's layers are "
                    f"{list(self.altitudes_m[sector :: self.sectors])}",
                    field="altitudes_m",
                )

    @property
    def limit_m(self) -> float:
        """Highest nominal layer: the ceiling (or the vehicle's maximum) less the altitude error."""
        top = (
            self.ceiling_m if self.vehicle_max_alt_m is None else min(self.ceiling_m, self.vehicle_max_alt_m)
        )
        return top - self.margins.alt_error_m

    def sector(self, heading_deg: float) -> int:
        """Sector of a heading (degrees clockwise from north)."""
        return int((heading_deg % 360.0) // (360.0 / self.sectors)) % self.sectors

    def for_sector(self, sector: int) -> tuple[float, ...]:
        """The sector's layers under the limit, lowest (cheapest to reach) first."""
        return tuple(a for a in self.altitudes_m[sector :: self.sectors] if a <= self.limit_m)

    def for_heading(self, heading_deg: float) -> tuple[float, ...]:
        """Layers a leg on this heading may use, in order of preference."""
        return self.for_sector(self.sector(heading_deg))

    def choices(self, heading_out_deg: float, heading_back_deg: float) -> list[tuple[float, float]]:
        """(outbound, inbound) layer pairs to try, lowest total climb first."""
        pairs = itertools.product(self.for_heading(heading_out_deg), self.for_heading(heading_back_deg))
        return sorted(pairs, key=lambda p: (p[0] + p[1], p[0]))
