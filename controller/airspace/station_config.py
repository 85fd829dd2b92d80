"""The `[airspace]` table of a station file: pads, cruise layers, rally points, margins and waiting limits.

```toml
[airspace]
layers_m = [40, 65, 90, 115]   # above the station's ground; split among heading sectors
max_hold_s = 180               # longest wait at the holding point
max_delay_s = 60               # longest launch delay before airspace_busy
[[airspace.pads]]
name = "P1"
lat = 33.44
lon = -112.256
[[airspace.rally]]
name = "school field"
lat = 33.452
lon = -112.249
alt_m = 30
```

No pads means one pad named P1 at the station's centre, so station files written before pads existed
keep working. Checks that need the station's position and ceiling (how far the pads are, whether a layer
fits) are in `AirspaceConfig.check_station`, which `StationAirspace` calls and a station loader should too.
"""

from __future__ import annotations

import itertools
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.airspace.layers import LayerPlan
from controller.airspace.margins import Margins
from controller.errors import InputError
from geofences import geodesic_distance_m

__all__ = ["AirspaceConfig", "MarginsConfig", "PadConfig", "RallyConfig"]

MAX_PAD_DISTANCE_M = 500.0  # a pad further out is another station, or a typo in a coordinate
MAX_HOLD_DISTANCE_M = 2000.0  # a holding point must be near its pad: the approach from it is booked late
MAX_RALLY_DISTANCE_M = 20000.0  # beyond a delivery drone's range (10 mi) and then some
MIN_PAD_SPACING_M = 3.0  # two pads closer than a drone's span are one pad


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(geodesic_distance_m(lon1, lat1, lon2, lat2))


class PadConfig(BaseModel):
    """A named pad; `hold_lat`/`hold_lon`: where drones wait for it (default: on their inbound route)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=32)
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    hold_lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    hold_lon: float | None = Field(default=None, ge=-180.0, le=180.0)

    @model_validator(mode="after")
    def _hold_both_or_neither(self) -> Self:
        if (self.hold_lat is None) != (self.hold_lon is None):
            raise ValueError(f"pad '{self.name}': give both hold_lat and hold_lon, or neither")
        return self


class RallyConfig(BaseModel):
    """An alternate landing site (a MAVLink rally point); `alt_m` above the station's ground, as ArduPilot's
    rally points are relative to home."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=32)
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    alt_m: float = Field(gt=0.0, le=500.0)


class MarginsConfig(BaseModel):
    """Overrides of `Margins` a station may measure for itself; the separation minima are not among them."""

    model_config = ConfigDict(extra="forbid")

    nav_error_m: float | None = Field(default=None, ge=0.0, le=50.0)
    alt_error_m: float | None = Field(default=None, ge=0.0, le=20.0)
    time_min_s: float | None = Field(default=None, ge=0.0, le=120.0)
    time_fraction: float | None = Field(default=None, ge=0.0, lt=1.0)
    pad_clear_s: float | None = Field(default=None, ge=0.0, le=600.0)
    hold_distance_m: float | None = Field(default=None, gt=0.0, le=MAX_HOLD_DISTANCE_M)
    vertical_slice_m: float | None = Field(default=None, gt=0.0, le=100.0)

    def to_margins(self) -> Margins:
        """The library's `Margins` with these overrides."""
        return Margins(**self.model_dump(exclude_none=True))


class AirspaceConfig(BaseModel):
    """How a station shares its airspace among its drones (see docs/airspace.md)."""

    model_config = ConfigDict(extra="forbid")

    pads: list[PadConfig] = Field(default_factory=list, description="empty: one pad P1 at the station")
    layers_m: list[float] = Field(
        default_factory=lambda: [40.0, 65.0, 90.0, 115.0],
        description="cruise altitudes above the station's ground; more than 20 m apart",
    )
    sectors: int = Field(default=2, ge=2, le=8, description="heading sectors sharing the layers (even)")
    rally: list[RallyConfig] = Field(default_factory=list, description="alternate landing sites")
    max_hold_s: float = Field(
        default=180.0,
        ge=0.0,
        le=1800.0,
        description="longest wait at the holding point a flight books at launch (its battery must cover it)",
    )
    max_delay_s: float = Field(
        default=60.0,
        ge=0.0,
        le=1800.0,
        description="longest launch delay before airspace_busy; short, so landings get the pads first",
    )
    step_s: float = Field(default=15.0, gt=0.0, le=300.0, description="launch times are tried on this grid")
    landing_book_m: float = Field(
        default=300.0,
        gt=0.0,
        description="the approach and pad are booked once the drone is past its drop and this close to home",
    )
    rebook_after_s: float = Field(
        default=2.0, gt=0.0, description="a drone this far off its schedule is booked again from its position"
    )
    pad_prep_s: float = Field(default=60.0, ge=0.0, description="a drone stands on its pad this long before")
    margins: MarginsConfig = Field(default_factory=MarginsConfig)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for key, what, items in (("pads", "pad", self.pads), ("rally", "rally point", self.rally)):
            names = [i.name for i in items]
            for name in sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"{key}: {what} name '{name}' appears twice")
        if self.sectors % 2:
            raise ValueError(
                f"sectors: must be even (opposite headings in different sectors), not {self.sectors}"
            )
        margins = self.margins.to_margins()
        try:  # spacing and transition altitude; the ceiling is the station's, checked in check_station
            LayerPlan(tuple(self.layers_m), ceiling_m=1e6, sectors=self.sectors, margins=margins)
        except InputError as exc:
            raise ValueError(f"layers_m: {exc.reason}") from None
        return self

    def check_station(
        self, lat: float, lon: float, ceiling_m: float, vehicle_max_alt_m: float | None = None
    ) -> None:
        """Refuse pads, holding points, rally points or layers that do not fit this station (`InputError`)."""
        for i, pad in enumerate(self.pads):
            far = _distance_m(lat, lon, pad.lat, pad.lon)
            if far > MAX_PAD_DISTANCE_M:
                raise InputError(
                    f"pad '{pad.name}' is {far:.0f} m from the station, more than {MAX_PAD_DISTANCE_M:.0f} m",
                    field=f"airspace.pads.{i}",
                )
            if pad.hold_lat is not None and pad.hold_lon is not None:
                self._check_hold(i, pad)
        for a, b in itertools.combinations(self.pads, 2):
            gap = _distance_m(a.lat, a.lon, b.lat, b.lon)
            if gap < MIN_PAD_SPACING_M:
                raise InputError(
                    f"pads '{a.name}' and '{b.name}' are {gap:.1f} m apart "
                    f"(at least {MIN_PAD_SPACING_M:.0f} m)",
                    field="airspace.pads",
                )
        for i, point in enumerate(self.rally):
            far = _distance_m(lat, lon, point.lat, point.lon)
            if far > MAX_RALLY_DISTANCE_M:
                raise InputError(
                    f"rally point '{point.name}' is {far / 1000:.1f} km from the station, more than "
                    f"{MAX_RALLY_DISTANCE_M / 1000:.0f} km",
                    field=f"airspace.rally.{i}",
                )
            if point.alt_m > ceiling_m:
                raise InputError(
                    f"rally point '{point.name}' at {point.alt_m} m is above the ceiling {ceiling_m} m",
                    field=f"airspace.rally.{i}.alt_m",
                )
        try:
            LayerPlan(
                tuple(self.layers_m),
                ceiling_m=ceiling_m,
                vehicle_max_alt_m=vehicle_max_alt_m,
                sectors=self.sectors,
                margins=self.margins.to_margins(),
            )
        except InputError as exc:
            raise InputError(exc.reason, field="airspace.layers_m") from None

    def _check_hold(self, i: int, pad: PadConfig) -> None:
        assert pad.hold_lat is not None and pad.hold_lon is not None
        clear = 2 * self.margins.to_margins().pad_buffer_m
        far = _distance_m(pad.lat, pad.lon, pad.hold_lat, pad.hold_lon)
        if far > MAX_HOLD_DISTANCE_M:
            raise InputError(
                f"pad '{pad.name}': holding point {far:.0f} m away, more than {MAX_HOLD_DISTANCE_M:.0f} m",
                field=f"airspace.pads.{i}.hold_lat",
            )
        for other in self.pads:
            gap = _distance_m(other.lat, other.lon, pad.hold_lat, pad.hold_lon)
            if gap <= clear:
                raise InputError(
                    f"pad '{pad.name}': holding point {gap:.0f} m from pad '{other.name}', inside its column "
                    f"(more than {clear:.0f} m needed)",
                    field=f"airspace.pads.{i}.hold_lat",
                )
