"""A drone delivery, controller side: plan -> fence, safety parameters, mission -> flight -> result.

`fly_delivery` is the whole life of one drone trip. It sets the failsafes first (battery thresholds from the
plan's reserve, GCS-loss RTL, the fence), so that whatever happens next the drone itself knows how to come
home; then uploads and verifies the fence and mission, arms the way ArduCopter wants (GUIDED, arm, AUTO,
MISSION_START), follows telemetry to touchdown and reports a `DeliveryResult`. It never raises for a flight
that went wrong: the result carries `reason_code` so the controller can reassign the package.

Failure causes are read from what the drone says: "Battery 1 is low ..." STATUSTEXT / BATTERY_STATUS,
FENCE_STATUS breaches, heartbeat silence (link lost; the drone's FS_GCS takes over), and mode changes away
from AUTO that none of those explain (an operator abort, or something else on board).

A package counts as delivered only when the drone says its gripper opened: "Gripper load releasing" when
the servo is commanded and, in SITL, "Gripper load released" once it got there
(libraries/AP_Gripper/AP_Gripper_Servo.cpp `release`, `has_state_pwm`). Every release method ends in the
gripper: the gripper method directly, the winch lowers the parcel on the line and then lets go with the
gripper, and ArduCopter's payload place releases through the gripper once it senses touchdown
(ArduCopter/mode_auto.cpp `PayloadPlace::run`, State::Release). Mission progress alone proves nothing:
a payload place that gives up ("PayloadPlace: Reached maximum descent") still completes its mission item,
and a DO_GRIPPER on a drone whose gripper has no output does nothing and says nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.errors import InputError
from controller.missions.results import DeliveryProof, DeliveryResult
from vehicles.errors import LinkError, VehicleError
from vehicles.mavlink import (
    ArmedChanged,
    BatteryFailsafe,
    Drone,
    DroneEvent,
    FenceBreach,
    LinkLost,
    LinkRestored,
    MissionError,
    MissionItem,
    MissionItemReached,
    ModeChanged,
    NotReadyError,
    ParamError,
    PreArmError,
    StatusText,
)
from vehicles.mavlink.fence import FencePlan, fence_from_zones

__all__ = ["DeliveryPlan", "FencePlan", "abort_delivery", "build_mission", "fence_from_zones", "fly_delivery"]

LatLon = tuple[float, float]

FENCE_ACTION_RTL = 1  # RTL, or LAND when RTL is impossible
# BATT_FS_LOW_ACT / BATT_FS_CRT_ACT values (ArduCopter/Copter.h Failsafe_Action)
FS_LOW_RTL, FS_CRT_LAND = 2, 1
FS_GCS_RTL = 1  # FS_GCS_ENABLE: RTL
# FS_OPTIONS bits (ArduCopter/Copter.h `enum class FailsafeOption`; ArduCopter/Parameters.cpp FS_OPTIONS
# "@Bitmask: ... 1:Continue if in Auto on GCS failsafe ... 4:Continue if in pilot controlled modes on GCS
# failsafe"): bit 1 is tested in ArduCopter/events.cpp `Copter::failsafe_gcs_on_event`
# (`flightmode->mode_number() == Mode::Number::AUTO && failsafe_option(FailsafeOption::GCS_CONTINUE_IF_AUTO)`
# -> "GCS Failsafe - Continuing Auto Mode", FailsafeAction::NONE). ArduCopter's default is bit 4 alone.
FS_OPT_GCS_CONTINUE_IF_AUTO = 1 << 1
FS_OPT_DEFAULT = 1 << 4  # GCS_CONTINUE_IF_PILOT_CONTROL: ParametersG2 FS_OPTIONS default
HOME_RADIUS_M = 15.0  # "landed at the station"
# NAV_PAYLOAD_PLACE param1 is the maximum descent in metres (AP_Mission.cpp stores it in cm), measured from
# the *desired* altitude, which runs ahead of the copter (mode_auto.cpp `PayloadPlace::run`, State::Descent):
# with param1 = the cruise altitude ArduCopter gave up about 2.7 m above the ground. The margin covers that
# lead and a destination lower than the station.
PAYLOAD_PLACE_MARGIN_M = 15.0
DELIVERY_SETTLE_S = 3.0  # hold at delivery altitude before the winch or gripper acts (NAV_WAYPOINT param1)
# The drone's words for an opened gripper (AP_Gripper_Servo.cpp; "released" is SITL's report on arrival)
GRIPPER_OPENED = ("Gripper load releasing", "Gripper load released")
# ... and for a payload place that gave up without releasing (mode_auto.cpp `PayloadPlace::run`)
PAYLOAD_PLACE_ABORTS = (
    "PayloadPlace: Reached maximum descent",
    "PayloadPlace: PLDP_RNG_MAX set and rangefinder not enabled",
    "PayloadPlace: Abort: Gripper Open",
)


@dataclass
class DeliveryPlan:
    """One package on one drone, as the controller assigned it (lat/lon degrees, metres, kg)."""

    package_id: str
    vehicle_id: str
    station: LatLon  # home
    waypoints_out: list[LatLon]  # detour vertices from station to destination (both ends excluded)
    destination: LatLon
    waypoints_back: list[LatLon]
    payload_kg: float
    cruise_alt_m: float = 60.0
    delivery_alt_m: float = 5.0
    reserve_fraction: float = 0.25
    predicted_energy_wh: float | None = None
    fence: FencePlan | None = None
    release: Literal["gripper", "payload_place", "winch"] = "gripper"
    max_descent_m: float | None = (
        None  # payload place's limit; None: cruise altitude + PAYLOAD_PLACE_MARGIN_M
    )
    gcs_timeout_s: float = 5.0  # FS_GCS_TIMEOUT, in the drone's time
    # FS_OPTIONS bit 1: in AUTO the drone keeps flying its mission when the controller's heartbeat stops (a
    # controller restart or takeover); FS_GCS_ENABLE (RTL) still acts in every other mode. The station
    # sets it (StationConfig.drones_continue_without_controller); a plan made by hand keeps the old RTL.
    continue_without_gcs: bool = False
    # alternate landing sites (lat, lon, alt above home m): uploaded as rally points; RTL flies to the
    # nearest of them or home (RALLY_INCL_HOME 1), or to them only when the station is closed
    rally: list[tuple[float, float, float]] = field(default_factory=list)
    station_open: bool = True
    # The station's airspace (controller.airspace): the inbound layer, the holding point where the drone
    # waits until the controller clears it to a pad, and the pads it may be cleared to (name, lat, lon), the
    # booked one first. Without a holding point the flight ends with RTL.
    cruise_alt_back_m: float | None = None
    hold_point: LatLon | None = None
    landing_pads: list[tuple[str, float, float]] = field(default_factory=list)
    # How long the drone waits at its holding point on its own (its drone seconds, NAV_LOITER_TIME) before
    # it lands on the booked pad without a clearance: a controller that lives renews the wait before it ends
    # (`_HoldingPoint`), so only a drone whose controller is gone for good lands unasked, on its own pad,
    # instead of circling until its battery failsafe. None: it waits for a clearance (NAV_LOITER_UNLIM).
    hold_alone_s: float | None = None

    def __post_init__(self) -> None:
        def check_point(name: str, p: Any) -> None:
            if not (
                isinstance(p, tuple | list) and len(p) == 2 and -90 <= p[0] <= 90 and -180 <= p[1] <= 180
            ):
                raise InputError(
                    f"{p!r} is not a (lat, lon) pair in degrees", field=name, row=self.package_id
                )

        check_point("station", self.station)
        check_point("destination", self.destination)
        for name in ("waypoints_out", "waypoints_back"):
            for p in getattr(self, name):
                check_point(name, p)
        for p in self.rally:
            check_point("rally", tuple(p[:2]))
        if not 0 <= self.reserve_fraction < 1:
            raise InputError(f"{self.reserve_fraction} must be in [0, 1)", field="reserve_fraction")
        if not 0 < self.delivery_alt_m < self.cruise_alt_m:
            raise InputError(
                f"{self.delivery_alt_m} m must be above 0 and below cruise_alt_m {self.cruise_alt_m} m",
                field="delivery_alt_m", row=self.package_id,
            )  # fmt: skip
        if self.fence and self.fence.ceiling_m is not None and self.cruise_alt_m >= self.fence.ceiling_m:
            raise InputError(f"{self.cruise_alt_m} m is not below the fence ceiling {self.fence.ceiling_m} m",
                             field="cruise_alt_m", row=self.package_id)  # fmt: skip
        if self.payload_kg < 0:
            raise InputError(f"{self.payload_kg} kg is negative", field="payload_kg", row=self.package_id)
        back = self.cruise_alt_back_m
        if back is not None and not self.delivery_alt_m < back:
            raise InputError(f"{back} m must be above delivery_alt_m {self.delivery_alt_m} m",
                             field="cruise_alt_back_m", row=self.package_id)  # fmt: skip
        if (
            back is not None
            and self.fence
            and self.fence.ceiling_m is not None
            and back >= self.fence.ceiling_m
        ):
            raise InputError(f"{back} m is not below the fence ceiling {self.fence.ceiling_m} m",
                             field="cruise_alt_back_m", row=self.package_id)  # fmt: skip
        if self.hold_point is not None:
            check_point("hold_point", self.hold_point)
            if not self.landing_pads:
                raise InputError("a holding point needs at least one landing pad", field="landing_pads",
                                 row=self.package_id)  # fmt: skip
        for name, lat, lon in self.landing_pads:
            check_point(f"landing_pads.{name}", (lat, lon))

    @property
    def alt_back_m(self) -> float:
        """The altitude of the way home: the inbound layer, or the cruise altitude."""
        return self.cruise_alt_back_m if self.cruise_alt_back_m is not None else self.cruise_alt_m


@dataclass
class BuiltMission:
    """The mission items and the sequence numbers fly_delivery watches."""

    items: list[MissionItem]
    release_seq: int  # the item whose completion means the package is down
    release_point_seq: int  # the nav item at the destination (release position is taken there)
    hold_seq: int | None = None  # the wait at the holding point (airspace, `hold_item`), if any
    land_seq: dict[str, int] = field(default_factory=dict)  # pad name -> its NAV_LAND item


def build_mission(plan: DeliveryPlan) -> BuiltMission:
    """Home, takeoff, detour out at cruise, release at the destination, detour back, then RTL; or, with a
    holding point, a wait there (`hold_item`) followed by one NAV_LAND per pad it may be cleared to, the
    booked pad first: where a drone that waited out its `hold_alone_s` lands by itself.

    The controller leaves the wait by jumping to the booked pad's NAV_LAND (DO_SET_MISSION_CURRENT), which
    flies there at the inbound layer and descends (ArduCopter mode_auto.cpp, do_land: a land command with a
    position first flies to it at the current altitude). A NAV_LAND ends the flight, so the other pads'
    items are never reached in turn.
    """
    wp, alt = mavlink.MAV_CMD_NAV_WAYPOINT, plan.cruise_alt_m
    back = plan.alt_back_m
    home = MissionItem(wp, *plan.station, 0.0, frame=mavlink.MAV_FRAME_GLOBAL_INT)
    items = [home, MissionItem(mavlink.MAV_CMD_NAV_TAKEOFF, alt=alt)]
    items += [MissionItem(wp, lat, lon, alt) for lat, lon in plan.waypoints_out]
    dlat, dlon = plan.destination
    if plan.release == "payload_place":
        # NAV_PAYLOAD_PLACE descends until it senses touchdown, releases, climbs back
        # (ArduCopter/mode_auto.cpp); param1 is the maximum descent (m) from the arrival altitude.
        items.append(MissionItem(wp, dlat, dlon, alt))
        release_point = len(items)
        max_descent = plan.max_descent_m if plan.max_descent_m is not None else alt + PAYLOAD_PLACE_MARGIN_M
        items.append(MissionItem(mavlink.MAV_CMD_NAV_PAYLOAD_PLACE, dlat, dlon, alt, param1=max_descent))
        release = release_point
    else:
        items.append(MissionItem(wp, dlat, dlon, alt))
        # hold there first: ArduCopter calls a waypoint reached when its position *target* arrives, with the
        # copter still ~2 m above it on the way down (seen on 4.6 SITL); the hold lets it settle
        items.append(MissionItem(wp, dlat, dlon, plan.delivery_alt_m, param1=DELIVERY_SETTLE_S))
        release_point = len(items) - 1
        if plan.release == "winch":
            line = max(0.0, plan.delivery_alt_m - 0.5)
            winch = mavlink.MAV_CMD_DO_WINCH
            items.append(
                MissionItem(winch, param1=1, param2=mavlink.WINCH_RELATIVE_LENGTH_CONTROL, param3=line)
            )
        items.append(MissionItem(mavlink.MAV_CMD_DO_GRIPPER, param1=1, param2=mavlink.GRIPPER_ACTION_RELEASE))
        release = len(items) - 1
        items.append(MissionItem(wp, dlat, dlon, back))
    items += [MissionItem(wp, lat, lon, back) for lat, lon in plan.waypoints_back]
    if plan.hold_point is None:
        items.append(MissionItem(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH))
        return BuiltMission(items, release, release_point)
    items.append(hold_item(plan.hold_point, back, plan.hold_alone_s))
    hold = len(items) - 1
    land: dict[str, int] = {}
    for name, lat, lon in plan.landing_pads:
        land[name] = len(items)
        items.append(MissionItem(mavlink.MAV_CMD_NAV_LAND, lat, lon, 0.0))
    return BuiltMission(items, release, release_point, hold, land)


def hold_item(point: LatLon, alt_m: float, hold_alone_s: float | None) -> MissionItem:
    """The wait at the holding point: NAV_LOITER_UNLIM, or NAV_LOITER_TIME for `hold_alone_s` drone seconds.

    ArduCopter (ArduCopter/mode_auto.cpp, `ModeAuto::do_loiter_time` / `verify_loiter_time`) starts the
    timer when the copter reaches the point and moves on to the next item when it runs out; param1 is whole
    seconds (`cmd.p1`, a uint16), so the wait is rounded up. MISSION_SET_CURRENT to this item while it runs
    starts it again (AP_Mission::set_current_cmd stops the current nav command and starts the one asked
    for), which is how a controller that lives keeps the drone waiting.
    """
    if hold_alone_s is None:
        return MissionItem(mavlink.MAV_CMD_NAV_LOITER_UNLIM, *point, alt_m)
    seconds = min(65535, max(1, math.ceil(hold_alone_s)))
    return MissionItem(mavlink.MAV_CMD_NAV_LOITER_TIME, *point, alt_m, param1=seconds)


def rally_items(points: list[tuple[float, float, float]]) -> list[MissionItem]:
    """Rally points as ArduPilot stores them (MissionItemProtocol_Rally.cpp: MAV_CMD_NAV_RALLY_POINT,
    altitude above home)."""
    return [
        MissionItem(
            mavlink.MAV_CMD_NAV_RALLY_POINT, lat, lon, alt, frame=mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
        )
        for lat, lon, alt in points
    ]


def safety_params(
    plan: DeliveryPlan, capacity_mah: float, fs_options: float | None = None
) -> dict[str, float]:
    """Failsafe parameters: battery thresholds from the plan's reserve, RTL on GCS loss (but for a mission
    in AUTO when the plan says so), the fence. `fs_options`: the drone's FS_OPTIONS, whose other bits are
    kept (ArduCopter's default when not known)."""
    options = int(FS_OPT_DEFAULT if fs_options is None else fs_options) & ~FS_OPT_GCS_CONTINUE_IF_AUTO
    if plan.continue_without_gcs:
        options |= FS_OPT_GCS_CONTINUE_IF_AUTO
    params: dict[str, float] = {
        "BATT_LOW_MAH": round(capacity_mah * plan.reserve_fraction),
        "BATT_CRT_MAH": round(capacity_mah * plan.reserve_fraction / 2),
        "BATT_FS_LOW_ACT": FS_LOW_RTL,
        "BATT_FS_CRT_ACT": FS_CRT_LAND,
        "FS_GCS_ENABLE": FS_GCS_RTL,
        "FS_GCS_TIMEOUT": plan.gcs_timeout_s,
        "FS_OPTIONS": options,
    }
    if plan.rally:
        # AP_Rally::calc_best_rally_or_home_location: with RALLY_INCL_HOME 1 RTL takes the nearer of home
        # and the nearest rally point; with 0 always a rally point (the station is closed)
        params["RALLY_INCL_HOME"] = 1 if plan.station_open else 0
        params["RALLY_LIMIT_KM"] = 0  # no limit: an alternate site far away is still better than none
    fence = plan.fence
    if fence is not None and fence.fence_type:
        params |= {"FENCE_TYPE": fence.fence_type, "FENCE_ACTION": FENCE_ACTION_RTL}
        if fence.ceiling_m is not None:
            params["FENCE_ALT_MAX"] = fence.ceiling_m
    return params


class AirspaceControl(Protocol):
    """What a flight asks the station's airspace (controller.service.airspace.FlightControl)."""

    async def wait_launch(self) -> None:
        """Return at the booked lift-off time."""
        ...

    def cleared_to_land(self, lat: float, lon: float, alt_m: float, *, holding: bool) -> str | None:
        """Report the position; the pad to land on once the drone may leave its holding point, else None."""
        ...

    def divert(self, lat: float, lon: float, alt_m: float) -> WayHome | None:
        """The drone turns home from here now: its way home as booked (None: not booked; RTL instead)."""
        ...

    def to_rally(self, lat: float, lon: float, alt_m: float) -> WayHome | None:
        """While the station is closed: the way to an alternate landing site, booked (once); else None."""
        ...

    @property
    def hold_renew_s(self) -> float:
        """Wall seconds between renewals of a drone's timed wait at its holding point (`hold_item`)."""
        ...


class LaunchCancelled(Exception):
    """The airspace will not let the flight lift off at all (the station closed): the flight fails before
    arming, with the reason as `str(exc)`."""


@dataclass(frozen=True)
class WayHome:
    """A diverted flight's way as the airspace booked it: change to `alt_m` in place, fly straight to
    the holding point at it, wait there until cleared, land on a pad (`landing_pads`, booked one first);
    with no holding point (a rally point, the station closed), straight to the first pad and land."""

    alt_m: float
    hold_point: LatLon | None
    landing_pads: list[tuple[str, float, float]]
    hold_alone_s: float | None = None  # as `DeliveryPlan.hold_alone_s`


def build_way_home(here: LatLon, way: WayHome) -> BuiltMission:
    """The mission of an aborted flight (docs/airspace.md, "Contingencies"): home, a waypoint where the
    drone is at its inbound layer (a climb or descent in place: ArduCopter flies a waypoint with the same
    position as a vertical move), the holding point (`hold_item`) and one NAV_LAND per pad, as
    `build_mission` ends. Nothing in it releases a package: `release_seq` is past its end."""
    wp = mavlink.MAV_CMD_NAV_WAYPOINT
    items = [
        MissionItem(wp, *here, 0.0, frame=mavlink.MAV_FRAME_GLOBAL_INT),  # home: replaced by the drone's
        MissionItem(wp, *here, way.alt_m),
    ]
    hold = None
    if way.hold_point is not None:
        hold = len(items)
        items.append(hold_item(way.hold_point, way.alt_m, way.hold_alone_s))
    land = {}
    for name, lat, lon in way.landing_pads if hold is not None else way.landing_pads[:1]:
        land[name] = len(items)
        items.append(MissionItem(mavlink.MAV_CMD_NAV_LAND, lat, lon, 0.0))
    never = len(items) + 1
    return BuiltMission(items, never, never, hold_seq=hold, land_seq=land)


AIRSPACE_POLL_S = 0.25  # wall seconds between position reports while a flight is steered by the airspace

_ABORTED: set[str] = set()
DIVERT_MIN_ALT_M = 2.0  # lower, an aborted drone is just off its pad or landing: RTL puts it down there
_FLYING: dict[str, _Flight] = {}  # vehicle id -> the flight being followed, for an abort to divert


async def abort_delivery(drone: Drone) -> None:
    """Operator abort: the drone turns home now; a running fly_delivery reports `aborted`.

    A flight steered by the station's airspace is diverted: its way home is booked from where it is
    (`AirspaceControl.divert`) and flown as a new mission, so it comes home at an inbound layer, waits at
    its holding point and lands when cleared, like any flight. Any other flight (or if the booking or the
    new mission fails) returns to launch, ArduCopter's RTL, as before.
    """
    _ABORTED.add(drone.vehicle_id)
    flight = _FLYING.get(drone.vehicle_id)
    s = drone.state
    airborne = s.armed and s.alt_m is not None and s.alt_m > DIVERT_MIN_ALT_M
    if flight is not None and flight.airspace is not None and airborne and s.lat is not None:
        assert s.lon is not None and s.alt_m is not None
        with contextlib.suppress(LinkError, VehicleError, MissionError):
            if await _divert(flight, flight.airspace, (s.lat, s.lon), s.alt_m):
                return
    await drone.return_to_launch()


async def _divert(flight: _Flight, airspace: AirspaceControl, here: LatLon, alt_m: float) -> bool:
    """Book the way home and fly it: stop (BRAKE holds the drone where it is), load the new mission, go on
    in AUTO from its first waypoint. False if the airspace booked nothing (the caller sends RTL)."""
    way = airspace.divert(here[0], here[1], alt_m)
    if way is None:
        return False
    await _fly_way(flight, way, here)
    return True


async def _fly_way(flight: _Flight, way: WayHome, here: LatLon) -> None:
    """Replace the drone's mission with `way` in flight: BRAKE holds it where it is while the new mission
    loads, then AUTO from its first waypoint (ModeAuto::init refuses AUTO only to a copter landed and armed
    without a takeoff item; in the air the mission runs from the current item, set to 1 as at launch)."""
    drone = flight.drone
    mission = build_way_home(here, way)
    await drone.pause()
    flight.record({"event": "airspace", "state": "diverted", "alt_m": way.alt_m, "hold_point": way.hold_point,
                   "landing_pad": way.landing_pads[0][0], "t": time.monotonic()})  # fmt: skip
    await drone.upload_mission(mission.items)
    await drone.commands.set_mission_current(1)
    await drone.set_mode("AUTO")
    flight.diverted = mission


def _energy_wh(drone: Drone) -> tuple[float | None, float | None, float | None]:
    s = drone.state
    return s.battery_energy_wh, s.battery_mah_used, s.battery_voltage


def _distance_m(a: LatLon, b: LatLon) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    return 6371000.0 * math.hypot(math.radians(b[0] - a[0]), math.radians(b[1] - a[1]) * math.cos(lat))


class _Flight:
    """Bookkeeping for one flight: what happened, in order, and what it means."""

    def __init__(self, drone: Drone, plan: DeliveryPlan, on_event: Callable[[dict[str, Any]], None] | None):
        self.drone, self.plan, self.on_event = drone, plan, on_event
        self.events: list[dict[str, Any]] = []
        self.cause: tuple[str, str] | None = None  # (reason_code, reason)
        self.released = False
        self.release_inferred = False  # released read from mission progress after a gap, not from the drone
        self.at_release_point = False
        self.release_position: LatLon | None = None
        self.proof: DeliveryProof | None = None  # where, when and how the package went (set with `released`)
        self.link_lost = False
        self.weak_cause = False
        # In the AUTO of this flight: a drone left in AUTO by its last mission is switched to GUIDED by our
        # own arming (Drone.arm_for_mission), and that is no mode change to explain.
        self.in_auto = drone.state.armed and drone.state.mode == "AUTO"
        self.airspace: AirspaceControl | None = None  # set while followed with the station's airspace
        self.diverted: BuiltMission | None = None  # the way home an abort loaded (it replaces the mission)

    def record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def phase(self, name: str, **extra: Any) -> None:
        self.record({"event": "phase", "phase": name, "t": time.monotonic(), **extra})

    def set_cause(self, code: str, reason: str, *, weak: bool = False) -> None:
        """Keep the first cause; a weak one (an unexplained mode change) yields to a named failsafe that
        arrives just after it (FENCE_STATUS comes at 1 Hz, the mode change with the next heartbeat)."""
        if self.cause is None or (self.weak_cause and not weak):
            self.cause = (code, reason)
            self.weak_cause = weak

    def result(self, *, delivered: bool, energy_wh: float | None, returned: bool) -> DeliveryResult:
        code, reason = self.cause if self.cause else (None, None)
        return DeliveryResult(
            package_id=self.plan.package_id, vehicle_id=self.plan.vehicle_id, delivered=delivered,
            reason=reason, reason_code=code, energy_used_wh=energy_wh, release_position=self.release_position,
            returned=returned, events=self.events, proof=self.proof if delivered else None,
        )  # fmt: skip

    def fail(self, code: str, reason: str) -> DeliveryResult:
        self.set_cause(code, reason)
        return self.result(delivered=False, energy_wh=None, returned=not self.drone.state.armed)


async def fly_delivery(
    drone: Drone,
    plan: DeliveryPlan,
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout_s: float = 3600.0,
    link_lost_timeout_s: float = 600.0,
    ready_timeout_s: float = 60.0,
    airspace: AirspaceControl | None = None,
) -> DeliveryResult:
    """Fly one delivery and report it; never raises for a flight that went wrong (see `reason_code`).

    A drone that is not ready yet (a freshly booted autopilot: no position, no home, pre-arm checks
    failing) is waited for up to `ready_timeout_s`, and arming is retried within the same time; after it the
    flight is `prearm_refused` with the drone's own pre-arm texts. With `airspace`, the drone is armed at
    its booked lift-off time and is cleared from its holding point to a pad by the station's airspace.
    """
    flight = _Flight(drone, plan, on_event)
    _ABORTED.discard(drone.vehicle_id)
    mission = build_mission(plan)
    if not drone.conn.link_up:
        return flight.fail("connection_broken", "the drone's link is down")
    if drone.state.armed:
        return flight.fail(
            "vehicle_error", f"the drone is already armed (mode {drone.state.mode}): not ours to fly"
        )
    ready_by = time.monotonic() + ready_timeout_s
    try:
        flight.phase("safety_params")
        capacity = await drone.params.get("BATT_CAPACITY")
        if capacity <= 0:  # thresholds derive from it: 0 would silently disable the battery failsafe
            return flight.fail("vehicle_error", "BATT_CAPACITY is not set on the drone: no battery failsafe")
        if plan.fence is not None:
            await drone.params.set("FENCE_ENABLE", 0)  # a half-uploaded fence must not be live
        fs_options = await drone.params.get("FS_OPTIONS")  # its other bits are the operator's: kept
        await drone.set_params(safety_params(plan, capacity, fs_options))
        if plan.fence is not None and plan.fence.has_areas:
            flight.phase("fence_upload", items=len(plan.fence.to_items()))
            await drone.upload_fence(plan.fence.to_items())
        if plan.fence is not None and plan.fence.fence_type:
            await drone.params.set("FENCE_ENABLE", 1)
        if plan.rally:
            flight.phase("rally_upload", items=len(plan.rally))
            await drone.upload_rally(rally_items(plan.rally))
        flight.phase("mission_upload", items=len(mission.items))
        await drone.upload_mission(mission.items)
        # ArduCopter resumes AUTO where the last mission stopped (MIS_RESTART=0); a drone whose previous
        # mission ended inside its final RTL would otherwise "resume" straight into landing.
        await drone.commands.set_mission_current(1)
        if drone.readiness(prearm=False):  # still booting; checks that fail after boot fail arming below
            flight.phase("waiting_ready", missing=drone.readiness(prearm=False))
            await drone.wait_ready(max(0.0, ready_by - time.monotonic()), prearm=False)
        if airspace is not None:  # ready and loaded: lift off at the booked time, not before
            left = ready_by - time.monotonic()
            flight.phase("waiting_launch")
            try:
                await airspace.wait_launch()
            except LaunchCancelled as exc:
                return flight.fail("station_closed", f"not launched: {exc}")
            ready_by = time.monotonic() + max(left, 10.0)
    except NotReadyError as exc:
        return flight.fail("prearm_refused", f"the drone is not ready: {exc}")
    except ParamError as exc:
        return flight.fail("vehicle_error", f"the drone refused a safety parameter: {exc}")
    except MissionError as exc:
        return flight.fail("mission_rejected", f"mission rejected: {exc}")
    except (LinkError, VehicleError) as exc:
        return flight.fail("connection_broken", f"could not prepare the drone: {exc}")

    with drone.telemetry.subscribe() as queue:
        try:
            flight.phase("arming")
            await drone.arm_for_mission(timeout_s=max(1.0, ready_by - time.monotonic()))
            e0 = _energy_wh(drone)
            await drone.set_mode("AUTO")
            await drone.start_mission()
            flight.phase("flying")
        except PreArmError as exc:
            return flight.fail("prearm_refused", f"pre-arm refused: {'; '.join(exc.reasons) or exc}")
        except (LinkError, VehicleError) as exc:
            if drone.state.armed:
                with contextlib.suppress(VehicleError):
                    await drone.disarm(force=True)
            return flight.fail("vehicle_error", f"could not start the flight: {exc}")
        landed_at = await _follow(flight, queue, mission, timeout_s, link_lost_timeout_s, airspace)

    return _conclude(flight, landed_at, _energy_between(e0, _energy_wh(drone)))


async def follow_delivery(
    drone: Drone,
    plan: DeliveryPlan,
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout_s: float = 3600.0,
    link_lost_timeout_s: float = 600.0,
    airspace: AirspaceControl | None = None,
) -> DeliveryResult:
    """After a controller restart: follow a delivery this drone is already flying, without touching it.

    Nothing is uploaded or armed: the drone carries on with the mission it holds. Whether the package was
    released is read from mission progress (the current item is past the release item). The one command
    it may get: leaving its holding point for a pad (`airspace`, or, with none, its booked pad at once).
    """
    flight = _Flight(drone, plan, on_event)
    mission = build_mission(plan)
    with contextlib.suppress(LinkError, VehicleError):
        await drone.commands.request_message("MISSION_CURRENT")  # progress now, not at the next stream tick
    s = drone.state
    flight.phase("resumed", mode=s.mode, armed=s.armed, mission_current=s.mission_current)
    flight.link_lost = True  # nobody heard the drone's release words while the controller was away
    _infer_release(flight, mission)
    if not s.armed and not flight.released and (s.mission_current or 0) <= 1:
        # Disarmed at the first item of its mission: the last controller went away while it prepared the
        # drone (parameters, uploads, arming): it never left, and its package has had no attempt.
        flight.phase("done", delivered=False, returned=True, energy_used_wh=None)
        return flight.fail("not_launched", "the controller changed before the drone took off")
    if not s.armed:  # it finished (or failed) while nobody was watching
        landed = (s.lat, s.lon) if s.lat is not None and s.lon is not None else None
        return _conclude(flight, landed, None)
    with drone.telemetry.subscribe() as queue:
        landed_at = await _follow(flight, queue, mission, timeout_s, link_lost_timeout_s, airspace)
    return _conclude(flight, landed_at, None)


def _conclude(flight: _Flight, landed_at: LatLon | None, energy: float | None) -> DeliveryResult:
    """Turn where the drone came down, and whether the package went, into the flight's result."""
    plan = flight.plan
    homes = [plan.station, *((lat, lon) for _, lat, lon in plan.landing_pads)]
    returned = landed_at is not None and min(_distance_m(landed_at, h) for h in homes) <= HOME_RADIUS_M
    if landed_at is None:
        why = "link still down" if flight.link_lost else "flight timed out"
        flight.set_cause("link_lost" if flight.link_lost else "timeout", f"no touchdown seen: {why}")
    elif not flight.released:
        if flight.link_lost:
            flight.set_cause("link_lost", "link lost during the flight; the drone came back with the package")
        flight.set_cause("vehicle_error", "the drone landed without releasing the package")
    elif not returned:
        flight.set_cause(
            "landed_away", f"package delivered but the drone landed away from the station at {landed_at}"
        )
    flight.phase(
        "done", delivered=flight.released, returned=returned, energy_used_wh=energy,
        predicted_energy_wh=plan.predicted_energy_wh,
    )  # fmt: skip
    return flight.result(delivered=flight.released, energy_wh=energy, returned=returned)


def _energy_between(e0: tuple[float | None, ...], e1: tuple[float | None, ...]) -> float | None:
    """Energy used: BATTERY_STATUS energy_consumed difference, else mAh used times mean voltage."""
    (w0, mah0, v0), (w1, mah1, v1) = e0, e1
    if w0 is not None and w1 is not None and w1 > w0:
        return w1 - w0
    if mah0 is not None and mah1 is not None and v0 and v1:
        return (mah1 - mah0) / 1000.0 * (v0 + v1) / 2
    return None


async def _follow(
    flight: _Flight,
    queue: asyncio.Queue[DroneEvent],
    mission: BuiltMission,
    timeout_s: float,
    lost_s: float,
    airspace: AirspaceControl | None = None,
) -> LatLon | None:
    """Consume events until the drone is down and disarmed; returns where it landed (None if never seen)."""
    flight.airspace = airspace
    _FLYING[flight.drone.vehicle_id] = flight
    try:
        return await _follow_events(flight, queue, mission, timeout_s, lost_s, airspace)
    finally:
        if _FLYING.get(flight.drone.vehicle_id) is flight:
            del _FLYING[flight.drone.vehicle_id]


async def _follow_events(
    flight: _Flight,
    queue: asyncio.Queue[DroneEvent],
    mission: BuiltMission,
    timeout_s: float,
    lost_s: float,
    airspace: AirspaceControl | None,
) -> LatLon | None:
    drone = flight.drone
    deadline = time.monotonic() + timeout_s
    lost_since: float | None = None
    steer = _HoldingPoint(flight, mission, airspace) if mission.hold_seq is not None else None
    while True:
        if flight.diverted is not None and mission is not flight.diverted:  # a divert loaded a new way
            mission = flight.diverted
            steer = _HoldingPoint(flight, mission, airspace) if mission.hold_seq is not None else None
        now = time.monotonic()
        if now > deadline or (lost_since is not None and now - lost_since > lost_s):
            return None
        limit = deadline - now if lost_since is None else min(deadline, lost_since + lost_s) - now
        if steer is not None and steer.active:
            limit = min(limit, AIRSPACE_POLL_S)
        try:
            async with asyncio.timeout(max(0.0, limit)):
                ev = await queue.get()
        except TimeoutError:
            if steer is not None and lost_since is None:
                await steer.step()
            continue
        if steer is not None and lost_since is None:
            await steer.step()
        s = drone.state
        if not isinstance(ev, StatusText) or ev.severity <= mavlink.MAV_SEVERITY_WARNING:
            flight.record(ev.as_dict())
        if isinstance(ev, MissionItemReached):
            if ev.seq >= mission.release_point_seq:
                flight.at_release_point = True
        elif isinstance(ev, StatusText) and ev.text.startswith(GRIPPER_OPENED):
            if not flight.released:
                flight.released = True
                if s.lat is not None and s.lon is not None:
                    flight.release_position = (s.lat, s.lon)
                flight.proof = _proof(flight, "vehicle", ev.text)
                flight.record({"event": "released", "t": time.monotonic(), "text": ev.text,
                               "position": flight.release_position})  # fmt: skip
        elif isinstance(ev, StatusText) and ev.text.startswith(PAYLOAD_PLACE_ABORTS):
            flight.set_cause("release_failed", f"the drone gave up the drop and kept the package: {ev.text}")
        elif isinstance(ev, BatteryFailsafe):
            flight.set_cause("battery_failsafe", f"battery failsafe: {ev.text}")
        elif isinstance(ev, FenceBreach):
            flight.set_cause("fence_breach", f"fence breach (type {ev.breach_type}, count {ev.breach_count})")
        elif isinstance(ev, LinkLost):
            flight.link_lost, lost_since = True, time.monotonic()
        elif isinstance(ev, LinkRestored):
            lost_since = None
            await _reattach(flight, mission, ev)
        elif isinstance(ev, ModeChanged) and ev.new == "AUTO":
            flight.in_auto = True
        elif isinstance(ev, ModeChanged) and ev.old == "AUTO" and s.armed and flight.in_auto:
            flight.in_auto = False
            if lost_since is not None or not drone.conn.link_up:
                # Heard with the first heartbeat after a gap: the drone's own GCS failsafe acted meanwhile.
                flight.set_cause(
                    "link_lost", f"link lost; the drone switched to {ev.new} on its own (FS_GCS)"
                )
            elif drone.vehicle_id in _ABORTED:
                flight.set_cause("aborted", "aborted by operator: returning to launch")
            else:
                flight.set_cause(
                    "mode_changed", f"left AUTO for {ev.new} without a known failsafe", weak=True
                )
        elif isinstance(ev, StatusText) and ev.text.startswith("Fence breach"):
            flight.set_cause("fence_breach", f"fence breach: {ev.text}")
        elif isinstance(ev, StatusText) and _gcs_failsafe_acted(ev.text):
            flight.set_cause("link_lost", f"link lost; the drone says {ev.text!r}")
        elif isinstance(ev, ArmedChanged) and not ev.armed:
            if s.lat is None or s.lon is None:
                return None
            if flight.link_lost:
                _infer_release(flight, mission)
            return (s.lat, s.lon)


def _gcs_failsafe_acted(text: str) -> bool:
    """The drone's word that its GCS failsafe took it off its mission: ArduCopter's announce_failsafe
    ("GCS Failsafe", "GCS Failsafe - <what it does>", ArduCopter/events.cpp), but not "GCS Failsafe -
    Continuing Auto Mode" (FS_OPTIONS bit 1: the mission goes on) nor "GCS Failsafe Cleared"."""
    if not text.startswith("GCS Failsafe") or text.startswith("GCS Failsafe Cleared"):
        return False
    return "Continuing Auto" not in text


class _HoldingPoint:
    """Reports the drone's position to the airspace and, at the holding point, clears it to its pad."""

    def __init__(self, flight: _Flight, mission: BuiltMission, airspace: AirspaceControl | None) -> None:
        self.flight, self.mission, self.airspace = flight, mission, airspace
        self.active = True  # until the drone has left the holding point (or left AUTO)
        self._next = 0.0
        self._renewed: float | None = None  # when its timed wait last started (first seen holding, renewed)
        self._timed = (
            mission.hold_seq is not None
            and mission.items[mission.hold_seq].command == mavlink.MAV_CMD_NAV_LOITER_TIME
        )

    async def step(self) -> None:
        """Called on every event and every `AIRSPACE_POLL_S`: does its work at most that often."""
        drone, now = self.flight.drone, time.monotonic()
        if not self.active or now < self._next:
            return
        self._next = now + AIRSPACE_POLL_S
        s = drone.state
        if not s.armed:
            return
        if s.mode != "AUTO":  # a failsafe or an operator took over: no longer ours to steer
            self.active = False
            return
        holding = s.mission_current == self.mission.hold_seq
        homeward = self._delivered(s.mission_current) or self.flight.diverted is not None
        if self.airspace is not None and homeward and s.lat is not None:
            assert s.lon is not None and s.alt_m is not None
            way = self.airspace.to_rally(s.lat, s.lon, s.alt_m)  # None unless the station is closed
            if way is not None:
                self.active = False
                try:
                    await _fly_way(self.flight, way, (s.lat, s.lon))
                except (LinkError, VehicleError, MissionError) as exc:
                    self.flight.record({"event": "airspace", "state": "divert_failed", "error": str(exc)})
                    with contextlib.suppress(LinkError, VehicleError):  # the flight is followed, never raises
                        await drone.return_to_launch()  # RALLY_INCL_HOME 0: RTL goes to a rally point
                return
        if self.airspace is None:  # followed after a restart, no booking: land on the booked pad
            pad = self.flight.plan.landing_pads[0][0] if holding else None
        elif s.lat is None or s.lon is None or s.alt_m is None:
            return
        else:
            pad = self.airspace.cleared_to_land(s.lat, s.lon, s.alt_m, holding=holding)
        if holding and pad is None:
            await self._renew(now)
        if not holding or pad is None:
            return
        seq = self.mission.land_seq.get(pad, next(iter(self.mission.land_seq.values())))
        try:
            await drone.commands.set_mission_current(seq)
        except (LinkError, VehicleError) as exc:
            self.flight.record({"event": "airspace", "state": "clearance_failed", "error": str(exc)})
            return  # tried again at the next step
        self.active = False
        self.flight.record(
            {"event": "airspace", "state": "cleared", "landing_pad": pad, "t": time.monotonic()}
        )

    async def _renew(self, now: float) -> None:
        """Not cleared yet: start the drone's timed wait again before it runs out (`hold_item`), so that it
        lands unasked only when its controller is gone. Its first third is spent before each renewal."""
        if not self._timed or self.airspace is None or self.mission.hold_seq is None:
            return
        if self._renewed is None:
            self._renewed = now  # its timer started when it reached the point, about now
            return
        if now - self._renewed < self.airspace.hold_renew_s:
            return
        try:
            await self.flight.drone.commands.set_mission_current(self.mission.hold_seq)
        except (LinkError, VehicleError) as exc:
            self.flight.record({"event": "airspace", "state": "hold_renewal_failed", "error": str(exc)})
            return  # tried again at the next step: two thirds of the wait are left
        self._renewed = now

    def _delivered(self, current: int | None) -> bool:
        """The package is down (heard, or the mission is past its release): on its way home, which a closed
        station sends to a rally point instead."""
        return self.flight.released or (current is not None and current > self.mission.release_seq)


async def _reattach(flight: _Flight, mission: BuiltMission, ev: LinkRestored) -> None:
    """After a link gap: what is the drone doing now, and did the package go while we were away?

    The mode comes with the heartbeat that ended the gap; the mission item is asked for explicitly, since
    telemetry streams may not have resumed yet.
    """
    drone = flight.drone
    with contextlib.suppress(VehicleError):
        current = await drone.commands.request_message("MISSION_CURRENT")
        drone.state.mission_current = current.seq
    s = drone.state
    if s.mode == "AUTO":
        _infer_release(flight, mission)
    flight.record({
        "event": "reattached", "t": time.monotonic(), "down_s": ev.down_s, "mode": s.mode, "armed": s.armed,
        "mission_current": s.mission_current, "position": (s.lat, s.lon),
    })  # fmt: skip


def _infer_release(flight: _Flight, mission: BuiltMission) -> None:
    """After a gap in the link (or a controller restart) the drone's release words may have gone unheard:
    then a mission that went past the release item is taken as released, and the result says it was
    inferred. Never for payload place, whose item completes also when the drop was given up."""
    s = flight.drone.state
    if flight.released or flight.plan.release == "payload_place" or s.mission_current is None:
        return
    if s.mission_current > mission.release_seq:
        flight.released = flight.release_inferred = True
        past = f"mission past its release item (at item {s.mission_current})"
        flight.proof = _proof(flight, "inferred", past)
        flight.record(
            {"event": "release_inferred", "t": time.monotonic(), "mission_current": s.mission_current}
        )


def _proof(flight: _Flight, confirmed_by: Literal["vehicle", "inferred"], event: str) -> DeliveryProof:
    """The proof of delivery as the drone's telemetry stands now: GLOBAL_POSITION_INT's position, its
    altitude above mean sea level and above home (`relative_alt`: the ground at the station, which is the
    ground under the drop only where the two are level; it is what the drone itself knows)."""
    s = flight.drone.state
    return DeliveryProof.now(
        vehicle_id=flight.plan.vehicle_id, kind="drone", lat=s.lat, lon=s.lon, alt_amsl_m=s.alt_amsl_m,
        alt_agl_m=s.alt_m, confirmed_by=confirmed_by, event=event, method=flight.plan.release,
    )  # fmt: skip
