"""How much room each volume leaves around the planned path, and why each number is what it is.

The separation we must keep between two of our drones is issue 16's loss-of-separation threshold:
50 m horizontally OR 15 m vertically. Each volume therefore reaches half of it around its own vehicle, plus
that vehicle's own errors: two volumes that do not intersect then keep their vehicles more than
25 + 25 = 50 m apart horizontally, or more than 7.5 + 7.5 = 15 m apart vertically (docs/airspace.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.errors import InputError

__all__ = ["Margins"]


@dataclass(frozen=True)
class Margins:
    """Buffers in space and time around a flight's nominal path; defaults are explained field by field."""

    # Loss-of-separation thresholds (issue 16): a pair closer than both at once is a loss of separation.
    separation_h_m: float = 50.0
    separation_v_m: float = 15.0
    # Horizontal navigation error: single-frequency GNSS with SBAS (u-blox M8/M9 class, about 2.5 m CEP,
    # 4-5 m at 95 %) plus position-controller tracking in gusts (1-2 m); 5 m keeps both at 95 %+.
    nav_error_m: float = 5.0
    # SCurve corner cutting is bounded by WPNAV_RADIUS (ArduPilot PR #25928 raised WPNAV_ACCEL_C so the
    # radius is the limit); its default is 2 m, and a drone inside it is within 2 m of both legs.
    corner_cut_m: float = 2.0
    # Altitude error: barometric drift over a 30 min flight (1-2 m with temperature) plus altitude-hold
    # error (under 1 m); 2.5 m.
    alt_error_m: float = 2.5
    # Time error, either way, at elapsed flight time tau: max(time_min_s, time_fraction * tau). 5 % covers
    # ground-speed shortfall in headwind near the speed limit and longer drops; 5 s covers a launch that
    # is commanded on time but lifts off a few seconds early or late.
    time_min_s: float = 5.0
    time_fraction: float = 0.05
    # Pad cylinder radius; None: the horizontal buffer (it must not be smaller, or separation breaks).
    pad_radius_m: float | None = None
    # Pad transition altitude: below it the drone is taking off or landing (ground effect, the 0.5 m/s
    # LAND_SPEED final stage below ArduCopter's LAND_ALT_LOW of 10 m), and the volume is the pad's.
    pad_transition_alt_m: float = 10.0
    # A landed drone keeps its pad this long after touchdown: landing detection and disarm take a few
    # seconds, and the next drone must not descend onto spinning rotors.
    pad_clear_s: float = 10.0
    # Default holding point: this far before the landing pad along the inbound route, so a holding drone
    # sits clear of the pads' climb and descent columns (2 x 32 m buffers need 64 m).
    hold_distance_m: float = 150.0
    # Cruise legs longer than this are cut into several volumes (about 45 s at 22 m/s): a long leg as one
    # volume would hold its whole corridor for the whole leg.
    max_cruise_volume_m: float = 1000.0
    # The first outbound leg is cut this far from the pad: a drone leaves the pad's column (and its
    # neighbours', pads a few metres apart) within 64 m plus the pads' spread, and without the cut the first
    # kilometre's volume would hold the column for a minute after the drone has left it. 0: no cut.
    column_exit_m: float = 100.0
    # Climbs and descents over a pad are cut into slices this tall, so the next drone can lift off as soon
    # as the previous one is a slice clear above it rather than when it reaches its layer.
    vertical_slice_m: float = 20.0
    # Segments per quarter circle of the buffers: shapely's buffer is inscribed in the true circle, so the
    # radius is divided by cos(pi / (4 quad_segs)) to keep the whole circle inside.
    quad_segs: int = 8

    def __post_init__(self) -> None:
        for name in (
            "separation_h_m", "separation_v_m", "max_cruise_volume_m", "vertical_slice_m", "hold_distance_m"
        ):  # fmt: skip
            if not getattr(self, name) > 0:
                raise InputError(f"{getattr(self, name)!r} must be positive", field=name)
        for name in (
            "nav_error_m", "corner_cut_m", "alt_error_m", "time_min_s", "time_fraction",
            "pad_transition_alt_m", "pad_clear_s", "column_exit_m",
        ):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{value!r} must be finite and not negative", field=name)
        if self.time_fraction >= 1:
            raise InputError(f"{self.time_fraction} must be below 1", field="time_fraction")
        if self.quad_segs < 1:
            raise InputError(f"{self.quad_segs} must be at least 1", field="quad_segs")
        if self.pad_radius_m is not None and self.pad_radius_m < self.horizontal_buffer_m:
            raise InputError(
                f"{self.pad_radius_m} m is below the horizontal buffer {self.horizontal_buffer_m} m",
                field="pad_radius_m",
            )

    @property
    def horizontal_buffer_m(self) -> float:
        """Half the horizontal separation plus the vehicle's horizontal errors: 25 + 5 + 2 = 32 m."""
        return self.separation_h_m / 2 + self.nav_error_m + self.corner_cut_m

    @property
    def vertical_buffer_m(self) -> float:
        """Half the vertical separation plus the altitude error: 7.5 + 2.5 = 10 m."""
        return self.separation_v_m / 2 + self.alt_error_m

    @property
    def pad_buffer_m(self) -> float:
        """Radius of the pad cylinder."""
        return self.horizontal_buffer_m if self.pad_radius_m is None else self.pad_radius_m

    def polygon_radius(self, radius_m: float) -> float:
        """The buffer distance whose inscribed polygon still contains the circle of `radius_m`."""
        return radius_m / math.cos(math.pi / (4 * self.quad_segs))

    def early_s(self, tau_s: float) -> float:
        """How much earlier than planned the drone may be at elapsed time `tau_s`."""
        return max(self.time_min_s, self.time_fraction * tau_s)

    def late_s(self, tau_s: float, lag_s: float) -> float:
        """How much later than planned the drone may be at `tau_s`, `lag_s` being its acceleration losses.

        The plan assumes instant speed changes; `FlightPath` counts what starting and stopping each leg
        costs (`Segment.lag_s`), and only the late side needs it: accelerating never makes a drone early.
        """
        return max(self.time_min_s, self.time_fraction * tau_s) + lag_s
