"""The service's side of the station's airspace: book each drone flight before it is released, and steer it
home through its holding point.

`StationAirspace` (controller.airspace) plans in seconds on one clock; this module gives it the drones'
clock. Simulated drones run `vehicle_speedup` times faster than the wall clock, and a plan timed in wall
seconds would see every simulated drone hopelessly early; so the airspace's seconds are the drones' own
seconds since the service started (wall seconds for real drones, whose speed-up is 1). Times shown to
people (`GET /v1/airspace/intents`) are that clock's seconds after the service's start, as ISO times.

A flight is booked at release (`book`): its pad (the one the drone stands on), its launch time (a little
later when the pad's column is busy), its cruise layers and its holding point. A flight that does not fit
within `[airspace] max_delay_s` is refused with `AirspaceBusy` (reason code `airspace_busy`, with the time
the airspace frees): the package stays queued for a later pass. In flight, `FlightControl` reports the
drone's position to the book (which books its landing late, re-books a late drone, and makes later
flights give way) and tells the mission when the drone may leave its holding point for its pad.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from controller.airspace import AirspaceBusy, AirspacePlan, StationAirspace, to_geojson
from controller.errors import InputError
from controller.missions.drone import LaunchCancelled, WayHome
from controller.station import StationConfig
from vehicles.spec import VehicleSpec

log = logging.getLogger("lastmile.service.airspace")

__all__ = ["AirspaceBusy", "FlightControl", "ServiceAirspace"]

ON_PAD_M = 5.0  # a drone this close to a pad stands on it
HOLD_ALONE_MIN_S = 30.0  # the shortest timed wait at a holding point (drone seconds): renewals stay sparse
PROGRESS_EVERY_S = 1.0  # positions reported to the book at most this often (drone seconds)


class ServiceAirspace:
    """The station's airspace on the drones' clock (see the module docstring)."""

    def __init__(
        self,
        config: StationConfig,
        *,
        epoch: datetime,
        speedup: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.speedup = speedup
        self.epoch = epoch
        # Why an operator closed the station (None: open). Closed, no drone lifts off and none is cleared
        # to a pad: drones on their way home are diverted to the nearest rally point (`FlightControl`).
        self.closed: str | None = None
        self._t0 = time.monotonic()
        # The drones' clock in seconds. A simulator that cannot keep up slips behind speed-up x wall time,
        # and a plan timed on the wall would then see its drones late all the time: give its clock here.
        self._clock = clock
        self.station = StationAirspace(
            config.airspace,
            config.lat,
            config.lon,
            ceiling_m=config.altitude_ceiling_m,
            frame=config.frame,
        )

    def now_s(self) -> float:
        """Drone seconds (since the service started, or on the simulator's `clock`)."""
        if self._clock is not None:
            return self._clock()
        return (time.monotonic() - self._t0) * self.speedup

    def at(self, t_s: float) -> datetime:
        """The wall-clock time at which the drones' clock reads `t_s`."""
        return self.epoch + timedelta(seconds=t_s / self.speedup)

    @property
    def hold_alone_s(self) -> float:
        """How long a drone waits at its holding point with no word from its controller before it lands on
        its booked pad by itself (`controller.missions.drone.hold_item`): the wait every flight books at
        launch (`max_hold_s`, which its battery is planned to cover), at least `HOLD_ALONE_MIN_S`."""
        return max(self.station.config.max_hold_s, HOLD_ALONE_MIN_S)

    def planning_spec(self, spec: VehicleSpec) -> VehicleSpec:
        """What the planner must assume of a drone flying through this airspace: its highest cruise layer
        (climb energy and time) and the longest wait at the holding point the book reserves."""
        layers = self.station.config.layers_m
        return spec.model_copy(
            update={
                "cruise_altitude_m": max(max(layers), spec.cruise_altitude_m or 0.0),
                "holding_s": self.station.config.max_hold_s,
            }
        )

    def pads_for(self, position: tuple[float | None, float | None]) -> list[str] | None:
        """The pad a drone at `position` (lat, lon) takes off from; None (any pad) when not known."""
        lat, lon = position
        if lat is None or lon is None:
            return None
        pad = self.station.pad_at(lat, lon, within_m=ON_PAD_M)
        if pad is None:  # standing elsewhere at the station: booked as on its nearest pad
            pad = self.station.pad_at(lat, lon, within_m=float("inf"))
        return [pad] if pad is not None else None

    def book(
        self,
        flight_id: str,
        vehicle_id: str,
        route: Sequence[tuple[float, float]],
        spec: VehicleSpec,
        *,
        pads: Sequence[str] | None,
    ) -> AirspacePlan:
        """Book a delivery flight along `route` ((lat, lon), station first, destination last), taking off
        from one of `pads` (`pads_for` the drone's position; None: any).

        Raises `AirspaceBusy` when it does not fit within `max_delay_s`; nothing is then booked.
        """
        return self.station.plan(
            flight_id,
            vehicle_id,
            list(route),
            now_s=self.now_s(),
            pads=list(pads) if pads is not None else None,
            **_flying(spec),
        )

    def free_at(self, busy: AirspaceBusy) -> datetime:
        """When the airspace that refused a flight frees, on the wall clock."""
        return self.at(busy.free_at_s)

    def adopt(
        self,
        flight_id: str,
        vehicle_id: str,
        booking: dict[str, Any],
        spec: VehicleSpec,
        position: tuple[float, float, float],
    ) -> AirspacePlan:
        """Book again a flight in the air that a controller now gone had booked (`booking`: its stored
        `plan_dict`), from the drone's position (lat, lon, alt above home): `StationAirspace.adopt`."""
        lat, lon, alt = position
        return self.station.adopt(
            flight_id,
            vehicle_id,
            [tuple(p) for p in booking["route_out"]],
            pad=booking["pad"],
            cruise_alt_out_m=booking["cruise_alt_out_m"],
            cruise_alt_back_m=booking["cruise_alt_back_m"],
            lat=lat,
            lon=lon,
            alt_m=alt,
            now_s=self.now_s(),
            **_flying(spec),
        )

    def next_pass(self) -> AirspaceBusy:
        """The refusal of a flight not searched this pass (its time budget spent): tried again next pass.

        No reservation is known to be in the way, so the airspace may be free now: `free_at_s` is now.
        """
        return AirspaceBusy(self.now_s(), ())

    def finish(self, flight_id: str) -> None:
        """The flight is over (down, failed, or never launched): free its pad and volumes."""
        self.station.finish(flight_id)

    def tick(self) -> None:
        """Forget reservations whose time has passed (every planning pass)."""
        self.station.release_before(self.now_s() - 60.0)

    def intents(self, vehicle_id: str | None = None) -> dict[str, Any]:
        """Reserved volumes as GeoJSON, all or one drone's (`GET /v1/airspace/intents`), with wall-clock
        ISO times (the book's seconds are the drones')."""
        station = self.station
        volumes = station.book.volumes() if vehicle_id is None else station.volumes_for(vehicle_id)
        geo = to_geojson(volumes, station.frame)  # only the volumes asked for; times in book seconds
        for feature in geo["features"]:
            props = feature["properties"]
            props["t0"], props["t1"] = self.at(props["t0"]).isoformat(), self.at(props["t1"]).isoformat()
        return geo

    def plan_dict(self, plan: AirspacePlan) -> dict[str, Any]:
        """What a mission (and its stored record) needs of a booking: JSON-ready.

        `landing_pads` lists every pad (name, lat, lon), the booked one first: the drone's mission gets a
        landing item for each, since its landing may be booked on another pad when it comes home.
        """
        pads = self.landing_pads(plan.landing_pad)
        return {
            "pad": plan.pad,
            "launch_at": self.at(plan.launch_at_s).isoformat(),
            "delay_s": round(plan.delay_s, 1),
            "cruise_alt_out_m": plan.cruise_alt_out_m,
            "cruise_alt_back_m": plan.cruise_alt_back_m,
            "route_out": [list(p) for p in plan.route_out],
            "route_back": [list(p) for p in plan.route_back],
            "hold_lat": plan.hold_lat,
            "hold_lon": plan.hold_lon,
            "landing_pads": [list(p) for p in pads],
            "hold_alone_s": self.hold_alone_s,
        }

    def landing_pads(self, first: str) -> list[tuple[str, float, float]]:
        """Every pad (name, lat, lon), `first` first: a mission lands on any of them when cleared."""
        pads = [(p.name, *self._pad_latlon(p.name)) for p in self.station.pads]
        return sorted(pads, key=lambda p: p[0] != first)

    def _pad_latlon(self, name: str) -> tuple[float, float]:
        pad = next(p for p in self.station.pads if p.name == name)
        lon, lat = self.station.frame.to_wgs84(*pad.xy)
        return float(lat), float(lon)

    def control(
        self,
        flight_id: str,
        publish: Callable[[dict[str, Any]], None],
        *,
        adopt: Callable[[tuple[float, float, float]], None] | None = None,
        landing_pad: str | None = None,
    ) -> FlightControl:
        """What a mission asks the airspace while it flies `flight_id`. `adopt`: the flight is not in the
        book (a controller restart); book it again from the drone's first position report (`landing_pad`:
        where it lands if that fails)."""
        return FlightControl(self, flight_id, publish, adopt=adopt, landing_pad=landing_pad)


def _flying(spec: VehicleSpec) -> dict[str, float]:
    """How a drone of `spec` flies, as `StationAirspace.plan` and `adopt` take it."""
    assert spec.climb_rate_mps and spec.descent_rate_mps
    return {
        "speed_mps": spec.cruise_speed_mps,
        "climb_rate_mps": spec.climb_rate_mps,
        "descent_rate_mps": spec.descent_rate_mps,
        "delivery_alt_m": spec.delivery_altitude_m or 5.0,
        "dwell_s": spec.delivery_hover_s or 15.0,
    }


class FlightControl:
    """One booked flight as its mission sees it: when to lift off, and when it may leave its holding point.

    Implements `controller.missions.drone.AirspaceControl`.
    """

    def __init__(
        self,
        airspace: ServiceAirspace,
        flight_id: str,
        publish: Callable[[dict[str, Any]], None],
        *,
        adopt: Callable[[tuple[float, float, float]], None] | None = None,
        landing_pad: str | None = None,
    ) -> None:
        self.airspace, self.flight_id, self.publish = airspace, flight_id, publish
        self._adopt = adopt
        # where it lands if the booking is lost
        self._fallback_pad = landing_pad or airspace.station.flight(flight_id).landing_pad
        self._reported_s = -float("inf")
        self._told: tuple[bool, float] | None = None  # (cleared, until) last published
        self._failed = False
        self._rally_tried = False

    async def wait_launch(self) -> None:
        """Return at the booked lift-off time (at once if it has passed)."""
        air = self.airspace
        told = None
        while True:
            if air.closed is not None:
                raise LaunchCancelled(f"the station is closed ({air.closed})")
            try:  # the booking may move later if it gave way to a late drone
                plan = air.station.flight(self.flight_id)
            except InputError:  # no longer booked (finished by another path): nothing to wait for
                return
            wait = plan.launch_at_s - air.now_s()
            if wait <= 0:
                return
            if told is None or abs(plan.launch_at_s - told) > 1.0:
                told = plan.launch_at_s
                self.publish({"event": "airspace", "state": "waiting_launch", "pad": plan.pad,
                              "launch_at": air.at(plan.launch_at_s).isoformat()})  # fmt: skip
            # a time, not an event: the booked slot; checked again every few seconds in case it moved
            await asyncio.sleep(min(wait, 5.0) / air.speedup)

    @property
    def hold_renew_s(self) -> float:
        """A third of the drone's timed wait, in wall seconds: how often a waiting drone is told to wait."""
        return self.airspace.hold_alone_s / self.airspace.speedup / 3.0

    def cleared_to_land(self, lat: float, lon: float, alt_m: float, *, holding: bool) -> str | None:
        """Report the drone's position; the pad to land on once it may leave its holding point, else None.

        `holding`: the drone is at its holding point now (reported every time then; else at most every
        `PROGRESS_EVERY_S`). Never raises: if the book fails, the drone lands on its booked pad rather than
        waiting for a clearance that cannot come.
        """
        try:
            return self._cleared(lat, lon, alt_m, holding=holding)
        except Exception:
            if not self._failed:  # once per flight: it is polled several times a second
                log.exception("airspace lost flight %s; clearing it to its booked pad", self.flight_id)
            self._failed = True
            return self._fallback_pad

    def divert(self, lat: float, lon: float, alt_m: float) -> WayHome | None:
        """An operator aborted the flight at (lat, lon, alt_m): book its way home from there
        (`StationAirspace.divert`). Never raises: None if the book fails, and the drone is sent RTL."""
        air = self.airspace
        try:
            self._booked_again(lat, lon, alt_m)
            plan = air.station.divert(self.flight_id, lat, lon, alt_m, air.now_s())
        except Exception:
            log.exception("airspace could not divert flight %s; it returns to launch", self.flight_id)
            return None
        self._told = None
        pads = air.landing_pads(plan.landing_pad)
        self.publish({"event": "airspace", "state": "way_home_booked", "alt_m": plan.cruise_alt_back_m,
                      "landing_pad": plan.landing_pad})  # fmt: skip
        return WayHome(plan.cruise_alt_back_m, (plan.hold_lat, plan.hold_lon), pads, air.hold_alone_s)

    def _booked_again(self, lat: float, lon: float, alt_m: float) -> None:
        """After a controller restart, at the drone's first position report: into the book from there."""
        if self._adopt is not None:
            adopt, self._adopt = self._adopt, None
            adopt((lat, lon, alt_m))
            self.publish({"event": "airspace", "state": "booked_again"})

    def to_rally(self, lat: float, lon: float, alt_m: float) -> WayHome | None:
        """While the station is closed: book the way to the nearest rally point from here (once per flight)
        and return it; None while the station is open, or if it has no rally point (the drone then waits
        at its holding point, not cleared, until the station opens)."""
        air = self.airspace
        if air.closed is None or self._rally_tried:
            return None
        self._rally_tried = True
        try:
            self._booked_again(lat, lon, alt_m)
            plan = air.station.divert(self.flight_id, lat, lon, alt_m, air.now_s(), rally=True)
        except InputError as exc:
            if exc.field != "rally":  # not merely a station without rally points
                log.error("airspace could not divert flight %s to a rally point: %s", self.flight_id, exc)
            return None
        except Exception:  # never raises into the flight: the drone waits at its holding point instead
            log.exception("airspace could not divert flight %s to a rally point", self.flight_id)
            return None
        self.publish({"event": "airspace", "state": "to_rally", "alt_m": plan.cruise_alt_back_m,
                      "rally": plan.landing_pad})  # fmt: skip
        rally = next(r for r in air.station.config.rally if r.name == plan.landing_pad)
        return WayHome(plan.cruise_alt_back_m, None, [(rally.name, rally.lat, rally.lon)])

    def _report(self, lat: float, lon: float, alt_m: float, now: float, *, holding: bool) -> bool:
        """The drone's position to the book: every poll while it holds, else at most every
        `PROGRESS_EVERY_S`. True when reported (its plan may have moved)."""
        if not holding and now - self._reported_s < PROGRESS_EVERY_S:
            return False
        self._reported_s = now
        self.airspace.station.on_progress(self.flight_id, lat, lon, alt_m, now)
        return True

    def _cleared(self, lat: float, lon: float, alt_m: float, *, holding: bool) -> str | None:
        air = self.airspace
        self._booked_again(lat, lon, alt_m)
        now = air.now_s()
        if air.closed is not None:
            # Nobody lands on a closed station (a drone with no rally point waits), but it is reported as
            # always: the book extends the wait of a drone held past it. Unreported, its plan ran out under
            # it (no volume left ahead of it), and once the station opened no landing could be booked: it
            # held until its battery failsafe.
            self._report(lat, lon, alt_m, now, holding=holding)
            return None
        plan = air.station.flight(self.flight_id)
        if holding and plan.landing_booked and (plan.hold_until_s is None or now >= plan.hold_until_s):
            # Its slot has come: go now. Reporting first would book the seconds since the slot began (a
            # poll comes every few drone seconds) as lateness, into a longer wait, again at every poll.
            return plan.landing_pad
        if self._report(lat, lon, alt_m, now, holding=holding):
            plan = air.station.flight(self.flight_id)
        cleared = plan.landing_booked and (plan.hold_until_s is None or now >= plan.hold_until_s)
        until = plan.hold_until_s if plan.hold_until_s is not None else -1.0
        last = self._told
        if holding and (last is None or last[0] != plan.landing_booked or abs(last[1] - until) > 5.0):
            self._told = (plan.landing_booked, until)
            until = air.at(plan.hold_until_s).isoformat() if plan.hold_until_s is not None else None
            self.publish({"event": "airspace", "state": "holding", "cleared": plan.landing_booked,
                          "until": until, "landing_pad": plan.landing_pad})  # fmt: skip
        return plan.landing_pad if cleared else None
