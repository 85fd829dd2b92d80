"""`StationAirspace`: the station's pads, layers and reservations in WGS84, as the service and the day
benchmark use them (plan at launch, on_progress in flight, holds at the holding point, finish)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.airspace import (
    AirspaceBusy,
    AirspaceConfig,
    AirspacePlan,
    HoldInstruction,
    PadConfig,
    RallyConfig,
    StationAirspace,
    Volume,
)
from controller.errors import InputError
from geofences import LocalFrame

LAT, LON = 33.44, -112.25
FRAME = LocalFrame(LAT, LON)


def ll(x: float, y: float) -> tuple[float, float]:
    """(lat, lon) of the point x m east, y m north of the station."""
    lon, lat = FRAME.to_wgs84(x, y)
    return float(lat), float(lon)


def pad(name: str, x: float, y: float) -> PadConfig:
    lat, lon = ll(x, y)
    return PadConfig(name=name, lat=lat, lon=lon)


def station(*pads: PadConfig, **kw: object) -> StationAirspace:
    return StationAirspace(AirspaceConfig(pads=list(pads), **kw), LAT, LON, frame=FRAME)  # type: ignore[arg-type]


TWO_COLUMNS = (pad("P1", 0.0, -100.0), pad("P2", 0.0, 100.0))  # 200 m apart: two columns of air


def crossings(volumes: list[Volume]) -> list[tuple[Volume, Volume]]:
    """Pairs of volumes of different flights that meet in space, altitude and time."""
    t0 = np.array([v.t0_s for v in volumes])
    t1 = np.array([v.t1_s for v in volumes])
    lo = np.array([v.alt_lo_m for v in volumes])
    hi = np.array([v.alt_hi_m for v in volumes])
    fid = np.array([v.flight_id for v in volumes])
    may = (
        (t0[:, None] <= t1[None, :])
        & (t0[None, :] <= t1[:, None])
        & (lo[:, None] <= hi[None, :])
        & (lo[None, :] <= hi[:, None])
        & (fid[:, None] != fid[None, :])
    )
    i, j = np.nonzero(np.triu(may, 1))
    return [(volumes[a], volumes[b]) for a, b in zip(i, j, strict=True) if volumes[a].intersects(volumes[b])]


def position(plan: AirspacePlan, t_s: float) -> tuple[float, float, float] | None:
    """Where the drone is at `t_s` when it flies its plan as booked (None: on the ground)."""
    x, y, z = plan.intent.path().position(t_s)[0]
    if math.isnan(x):
        return None
    lat, lon = ll(float(x), float(y))
    return lat, lon, float(z)


def test_flights_planned_in_one_tick_share_no_pad_slot_and_no_volume() -> None:
    air = station(*TWO_COLUMNS)
    dests = [
        (2000.0, 0.0),
        (-2000.0, 0.0),
        (2000.0, 150.0),
        (0.0, 3000.0),
        (-1500.0, -1500.0),
        (2100.0, 50.0),
    ]
    plans = [air.plan(f"f{i}", f"d{i}", [ll(*d)], now_s=0.0, latest_s=3600.0) for i, d in enumerate(dests)]
    assert {p.pad for p in plans} == {"P1", "P2"}
    assert all(p.launch_at_s >= 0.0 and p.launch_at_s % air.config.step_s == 0.0 for p in plans)
    assert len({p.launch_at_s for p in plans}) < len(plans)  # two columns: some take off together
    assert not crossings(air.book.volumes())
    for a, b in itertools.combinations(plans, 2):
        if a.pad == b.pad:  # one drone stands on the pad at a time: the next one prepares after
            assert abs(a.launch_at_s - b.launch_at_s) > air.config.pad_prep_s
    pad_volumes = [v for v in air.book.volumes() if v.kind == "pad"]
    assert pad_volumes and all(v.pad in ("P1", "P2") for v in pad_volumes)
    assert air.stats.plans == len(dests) and air.stats.busy == 0


def test_head_on_routes_get_different_layers_or_times() -> None:
    air = station(*TWO_COLUMNS)
    east = air.plan("east", "d1", [ll(2500.0, 0.0)], now_s=0.0, latest_s=3600.0)
    west = air.plan("west", "d2", [ll(-2500.0, 0.0)], now_s=0.0, latest_s=3600.0)
    # Opposite headings are in different sectors: out east and back west never share a layer, and a drone
    # flying out east never meets one coming back east on its layer.
    assert east.cruise_alt_out_m != east.cruise_alt_back_m
    assert east.cruise_alt_out_m != west.cruise_alt_out_m
    assert east.cruise_alt_out_m == west.cruise_alt_back_m  # the same heading, the same layers
    # Head-on along one line: out to a point and back from it, on the same line, at once.
    out = air.plan("out", "d3", [ll(1500.0, 0.0)], now_s=0.0, latest_s=3600.0)
    assert (out.cruise_alt_out_m, out.launch_at_s) != (west.cruise_alt_back_m, west.launch_at_s)
    assert not crossings(air.book.volumes())


def test_same_route_same_time_gets_another_layer_or_a_later_launch() -> None:
    air = station(pad("P1", 0.0, 0.0))
    a = air.plan("a", "d1", [ll(2000.0, 500.0)], now_s=0.0, latest_s=3600.0)
    b = air.plan("b", "d2", [ll(2000.0, 500.0)], now_s=0.0, latest_s=3600.0)
    assert b.launch_at_s > a.launch_at_s
    assert not crossings(air.book.volumes())


def test_a_late_drone_extends_its_reservation_and_the_next_launch_waits() -> None:
    """One layer each way, so the only way out of a late drone's volumes is a later launch (and a short
    reserved wait at the holding point, so that the outbound corridor decides)."""
    launches = {}
    for late in (False, True):
        air = station(pad("P1", 0.0, 0.0), layers_m=[40.0, 65.0], max_hold_s=30.0)
        a = air.plan("a", "d1", [ll(4000.0, 0.0)], now_s=0.0, latest_s=3600.0)
        assert a.cruise_alt_out_m == 40.0 and a.launch_at_s == 0.0
        on_time = a.intent.path().position(100.0)[0]
        assert on_time[0] > 1500.0  # 22 m/s after a 16 s climb
        before = max(v.t1_s for v in air.volumes_for("d1") if v.phase.startswith("cruise out"))
        # Seen on its plan at t=100 s, or 1 km behind it (45 s late).
        x = on_time[0] - 1000.0 if late else on_time[0]
        assert air.on_progress("a", *ll(x, 0.0), 40.0, now_s=100.0) is None  # outbound: nothing to wait for
        after = max(v.t1_s for v in air.volumes_for("d1") if v.phase.startswith("cruise out"))
        if late:
            assert after > before + 30.0  # its outbound volumes now end later
            assert air.stats.rebooks == 1
        b = air.plan("b", "d2", [ll(4000.0, 60.0)], now_s=100.0, latest_s=3600.0)
        assert b.cruise_alt_out_m == 40.0
        assert not crossings(air.book.volumes())
        launches[late] = b.launch_at_s
    assert launches[True] > launches[False]


def test_nothing_free_by_latest_is_airspace_busy_with_a_time() -> None:
    air = station(pad("P1", 0.0, 0.0))
    air.plan("a", "d1", [ll(2000.0, 0.0)], now_s=0.0)
    with pytest.raises(AirspaceBusy) as err:
        air.plan("b", "d2", [ll(2000.0, 0.0)], now_s=0.0, latest_s=30.0)
    assert err.value.code == "airspace_busy"
    assert err.value.free_at_s > 30.0
    assert "airspace busy until" in err.value.reason()
    assert air.stats.busy == 1 and air.stats.plans == 1
    assert {v.flight_id for v in air.book.volumes()} == {"a"}  # nothing booked for the refused flight
    # Asked again from where it said, with room: it fits, no earlier than that.
    b = air.plan("b", "d2", [ll(2000.0, 0.0)], now_s=0.0, latest_s=3600.0)
    assert b.launch_at_s >= err.value.free_at_s - 1e-6


def test_default_latest_is_max_delay() -> None:
    air = station(pad("P1", 0.0, 0.0), max_delay_s=0.0)
    air.plan("a", "d1", [ll(2000.0, 0.0)], now_s=0.0)
    with pytest.raises(AirspaceBusy):
        air.plan("b", "d2", [ll(2000.0, 0.0)], now_s=0.0)


def test_a_drone_coming_home_to_a_busy_pad_holds_then_lands() -> None:
    air = station(pad("P1", 0.0, 0.0))
    a = air.plan("a", "d1", [ll(3000.0, 0.0)], now_s=0.0, latest_s=3600.0)
    b = air.plan("b", "d2", [ll(-2000.0, 0.0)], now_s=0.0, latest_s=3600.0)
    assert b.launch_at_s > a.launch_at_s and not b.landing_booked
    seen: dict[str, list[HoldInstruction | None]] = {"a": [], "b": []}
    landed: dict[str, float] = {}
    for t in np.arange(0.0, 1500.0, 5.0):
        for fid in ("a", "b"):
            if fid in landed:
                continue
            plan = air.flight(fid)
            here = position(plan, float(t))
            if here is None:
                if t > plan.launch_at_s:
                    landed[fid] = float(t)
                    air.finish(fid)
                continue
            seen[fid].append(air.on_progress(fid, *here, now_s=float(t)))
            assert not crossings(air.book.volumes())
    assert set(landed) == {"a", "b"}
    # On the way back, before its landing is booked: wait at the holding point, not cleared yet.
    waiting = [h for h in seen["b"] if h is not None and not h.cleared]
    assert waiting and all(h.until_s > 0 and h.landing_pad == "P1" for h in waiting)
    # Then cleared, with a wait: its landing comes after the other's.
    cleared = [h for h in seen["b"] if h is not None and h.cleared]
    assert cleared and cleared[-1].hold_s > 0
    assert cleared[-1].alt_m == b.cruise_alt_back_m
    assert math.dist(ll(0.0, 0.0), (cleared[-1].landing_lat, cleared[-1].landing_lon)) < 1e-6
    assert math.dist((cleared[-1].lat, cleared[-1].lon), ll(0.0, 0.0)) > 1e-4  # away from the pad
    assert air.stats.landings == 2 and air.stats.holds_s
    assert landed["b"] > landed["a"]
    assert not air.book.volumes()


def test_pad_at() -> None:
    air = station(*TWO_COLUMNS)
    assert air.pad_at(*ll(0.0, -100.0)) == "P1"
    assert air.pad_at(*ll(3.0, 98.0)) == "P2"
    assert air.pad_at(*ll(0.0, 0.0)) is None
    assert air.pad_at(*ll(0.0, 80.0), within_m=25.0) == "P2"
    assert station().pad_at(LAT, LON) == "P1"  # no pads: one at the station's centre


def test_plan_takes_off_from_the_pads_it_is_given() -> None:
    air = station(*TWO_COLUMNS)
    plans = [
        air.plan(f"f{i}", f"d{i}", [ll(2000.0, 300.0 * i)], now_s=0.0, latest_s=3600.0, pads=["P2"])
        for i in range(3)
    ]
    assert {p.pad for p in plans} == {"P2"}
    assert all(v.pad in (None, "P2") for v in air.book.volumes() if v.phase.startswith("departure"))
    assert plans[1].launch_at_s > plans[0].launch_at_s + air.config.pad_prep_s
    with pytest.raises(InputError) as err:
        air.plan("x", "dx", [ll(2000.0, 0.0)], now_s=0.0, pads=["P9"])
    assert err.value.field == "pads" and "P9" in str(err.value)
    with pytest.raises(InputError) as err:
        air.plan("y", "dy", [ll(2000.0, 0.0)], now_s=0.0, pads=[])
    assert err.value.field == "pads"
    assert {v.flight_id for v in air.book.volumes()} == {"f0", "f1", "f2"}


def test_a_refusal_on_a_busy_pad_does_not_refuse_a_drone_on_a_free_one() -> None:
    """Drones standing on their pads, asking in the same tick: the one on the busy pad waits, the one on the
    other column goes (a refusal is remembered only for the same pads and vehicle)."""
    air = station(*TWO_COLUMNS)
    air.plan("a", "d1", [ll(2000.0, -100.0)], now_s=0.0, pads=["P1"])
    with pytest.raises(AirspaceBusy):
        air.plan("b", "d2", [ll(2000.0, -400.0)], now_s=0.0, latest_s=0.0, pads=["P1"])
    c = air.plan("c", "d3", [ll(0.0, 2000.0)], now_s=0.0, latest_s=0.0, pads=["P2"])
    assert (c.pad, c.launch_at_s) == ("P2", 0.0)
    assert not crossings(air.book.volumes())


def test_planned_again_replaces_its_booking_and_finish_frees_it() -> None:
    air = station(pad("P1", 0.0, 0.0))
    air.plan("a", "d1", [ll(2000.0, 0.0)], now_s=0.0)
    first = len(air.volumes_for("d1"))
    again = air.plan("a", "d1", [ll(2000.0, 0.0)], now_s=30.0, latest_s=3600.0)
    assert again.launch_at_s >= 30.0 and len(air.volumes_for("d1")) == first
    geo = air.intents_geojson()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == first
    air.finish("a")
    assert not air.book.volumes()
    with pytest.raises(InputError) as err:
        air.flight("a")
    assert err.value.field == "flight_id"


def test_route_needs_a_destination() -> None:
    with pytest.raises(InputError) as err:
        station().plan("a", "d1", [], now_s=0.0)
    assert err.value.field == "route_latlon_out"


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"pads": [pad("P1", 0.0, 0.0), pad("P1", 100.0, 0.0)]}, "pad name 'P1'"),
        ({"sectors": 3}, "sectors"),
        ({"layers_m": [40.0, 50.0]}, "layers_m"),
        ({"pads": [{"name": "P1", "lat": LAT, "lon": LON, "hold_lat": LAT}]}, "hold_lat"),
    ],
)
def test_config_errors_name_the_field(kw: dict, named: str) -> None:
    with pytest.raises(ValidationError) as err:
        AirspaceConfig(**kw)
    assert named in str(err.value)


def test_config_pads_field_is_named() -> None:
    with pytest.raises(ValidationError) as err:
        AirspaceConfig(pads=[pad("P1", 0.0, 0.0), pad("P1", 100.0, 0.0)])
    assert "pads" in str(err.value)


@pytest.mark.parametrize(
    ("pads", "field", "says"),
    [
        ([pad("P1", 0.0, 0.0), pad("P2", 1.0, 0.0)], "airspace.pads", "1.0 m apart"),
        ([pad("P1", 0.0, 0.0), pad("P2", 600.0, 0.0)], "airspace.pads.1", "600 m from the station"),
    ],
)
def test_station_checks_name_the_field(pads: list[PadConfig], field: str, says: str) -> None:
    config = AirspaceConfig(pads=pads)
    with pytest.raises(InputError) as err:
        config.check_station(LAT, LON, 120.0)
    assert err.value.field == field and says in str(err.value)
    with pytest.raises(InputError):
        StationAirspace(config, LAT, LON)


def test_station_checks_layers_against_the_ceiling() -> None:
    with pytest.raises(InputError) as err:
        AirspaceConfig(layers_m=[40.0, 65.0, 90.0, 115.0]).check_station(LAT, LON, 60.0)
    assert err.value.field == "airspace.layers_m"


# ---- property ------------------------------------------------------------------------------------------

PROPERTY_PADS = (pad("P1", -4.0, 0.0), pad("P2", 4.0, 0.0), pad("P3", 0.0, 120.0))  # P1/P2: one column
BEARINGS = (0.0, 90.0, 100.0, 180.0, 270.0)


@st.composite
def flights(draw: st.DrawFn) -> dict:
    bearing = math.radians(draw(st.sampled_from(BEARINGS)) + draw(st.floats(-3.0, 3.0)))
    dist = draw(st.floats(300.0, 3000.0))
    via = draw(st.none() | st.sampled_from([(600.0, 600.0), (-500.0, 200.0)]))
    dest = (dist * math.sin(bearing), dist * math.cos(bearing))
    route = [via, dest] if via is not None and math.dist(via, dest) > 50.0 else [dest]
    return {
        "route": [ll(*p) for p in route],
        "now_s": draw(st.sampled_from([0.0, 0.0, 15.0, 60.0, 200.0])),
        "speed_mps": draw(st.sampled_from([12.0, 22.0])),
        "dwell_s": draw(st.floats(5.0, 40.0)),
        "pads": draw(st.none() | st.lists(st.sampled_from(["P1", "P2", "P3"]), min_size=1, unique=True)),
        "lateness_s": draw(st.sampled_from([0.0, 0.0, 20.0])),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(flights(), min_size=2, max_size=7))
def test_flights_planned_through_the_station_never_share_a_volume(requests: list[dict]) -> None:
    """Planned one by one (in time order, some seen late on the way out): no two booked volumes of
    different flights meet, and two take-offs from one pad are a preparation apart."""
    air = station(*PROPERTY_PADS)
    plans: list[AirspacePlan] = []
    seen: list[tuple[float, str, tuple[float, float, float]]] = []  # (when, flight, where) of late drones
    lifted: dict[str, float] = {}  # a drone seen in flight lifted off when its plan then said

    def report(until_s: float) -> None:
        for t, fid, here in sorted(s for s in seen if s[0] <= until_s):
            lifted[fid] = air.flight(fid).launch_at_s
            air.on_progress(fid, *here, now_s=t)
        seen[:] = [s for s in seen if s[0] > until_s]

    for i, r in enumerate(sorted(requests, key=lambda r: r["now_s"])):
        report(r["now_s"])
        try:
            plan = air.plan(
                f"f{i}", f"d{i}", r["route"], now_s=r["now_s"], latest_s=r["now_s"] + 1800.0,
                speed_mps=r["speed_mps"], dwell_s=r["dwell_s"], pads=r["pads"],
            )  # fmt: skip
        except AirspaceBusy as exc:
            assert exc.free_at_s >= r["now_s"]
            continue
        assert plan.launch_at_s >= r["now_s"] and (r["pads"] is None or plan.pad in r["pads"])
        plans.append(plan)
        if r["lateness_s"]:  # seen behind its plan 60 s after lift-off: booked again from there
            t = plan.launch_at_s + 60.0
            here = position(plan, t - r["lateness_s"])
            if here is not None:
                seen.append((t, plan.flight_id, here))
    report(math.inf)
    assert air.stats.unresolved or not crossings(air.book.volumes())
    assert not crossings([v for v in air.book.volumes() if v.kind == "pad"])
    launches = [(air.flight(p.flight_id).pad, lifted.get(p.flight_id, air.flight(p.flight_id).launch_at_s))
                for p in plans]  # fmt: skip
    for (pad_a, t_a), (pad_b, t_b) in itertools.combinations(launches, 2):
        if pad_a == pad_b:
            assert abs(t_a - t_b) > air.config.pad_prep_s


def test_an_aborted_flight_books_its_way_home_from_where_it_is_at_an_inbound_layer() -> None:
    """Out east at its outbound layer, aborted 600 m out: a change to the inbound layer for heading home in
    place, straight to its holding point at it, the reserved wait; nothing of its way out stays booked."""
    a = station(pad("P1", 0.0, 0.0))
    p = a.plan("f1", "d1", [ll(0, 0), ll(3000, 0)], now_s=0.0, speed_mps=15.0, climb_rate_mps=2.5,
               descent_rate_mps=1.5, delivery_alt_m=5.0, dwell_s=15.0)  # fmt: skip
    t = p.launch_at_s + 60.0
    way = a.divert("f1", *ll(600, 0), p.cruise_alt_out_m, t)
    west = a.layers.for_heading(270.0)
    assert p.cruise_alt_out_m not in west and way.cruise_alt_back_m == west[0]
    hold = FRAME.to_local(way.hold_lon, way.hold_lat)
    assert 0.0 < hold[0] < 600.0 and abs(hold[1]) < 1.0  # on the straight line home
    booked = a.volumes_for("d1")
    assert {v.kind for v in booked} == {"descent", "climb", "cruise", "hold"}  # no pad, no drop: not yet
    assert min(v.t0_s for v in booked) >= t - 10.0
    assert all(v.shape.bounds[2] < 600.0 + 40.0 for v in booked)  # nothing east of where it turned
    cruise = [v for v in booked if v.kind in ("cruise", "hold")]
    assert all(v.alt_lo_m <= way.cruise_alt_back_m <= v.alt_hi_m for v in cruise)
    # The way home goes on like any flight: back near the pad, its landing is booked and it is cleared.
    lat, lon = way.hold_lat, way.hold_lon
    arrive = t + 13.0 + (600.0 - hold[0]) / 15.0
    told = a.on_progress("f1", lat, lon, way.cruise_alt_back_m, arrive)
    assert told is not None and told.cleared and told.landing_pad == "P1"
    assert a.stats.diverts == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bearings=st.lists(st.sampled_from([0, 3, 90, 180, 270]), min_size=4, max_size=8),
    gaps=st.lists(st.integers(0, 120), min_size=8, max_size=8),
    abort_after=st.integers(20, 400),
    which=st.integers(0, 7),
)
def test_diverting_a_flight_leaves_no_two_drones_volumes_meeting(
    bearings: list[int], gaps: list[int], abort_after: int, which: int
) -> None:
    """Flights from two columns along a few bearings, one aborted at a random moment: its way home is booked
    whatever it meets, and the only volumes of two drones that then meet are the aborted drone's with a
    flight that could not give way, each counted in `stats.unresolved` (400 random days of this: 1 such
    case, three volumes of one pair; a drone in the air without its landing booked cannot be moved)."""
    a = station(*TWO_COLUMNS)
    t, plans = 0.0, []
    for i, b in enumerate(bearings):
        t += gaps[i]
        dest = ll(2500.0 * math.sin(math.radians(b)), 2500.0 * math.cos(math.radians(b)))
        try:
            plan = a.plan(f"f{i}", f"d{i}", [ll(0, 0), dest], now_s=t, speed_mps=15.0, climb_rate_mps=2.5,
                          descent_rate_mps=1.5, delivery_alt_m=5.0, dwell_s=15.0)  # fmt: skip
            plans.append(plan)
        except AirspaceBusy:
            continue
    p = plans[which % len(plans)]
    now = p.launch_at_s + abort_after
    where = position(p, now)
    if where is None:
        return
    a.divert(p.flight_id, *where, now)
    pairs = {frozenset((x.flight_id, y.flight_id)) for x, y in crossings(a.book.volumes())}
    assert all(p.flight_id in pair for pair in pairs)
    assert len(pairs) <= a.stats.unresolved


def test_with_the_station_closed_a_drone_is_diverted_to_the_nearest_rally_point_landing_booked() -> None:
    """Rally points east and west; a drone coming home from the north-east goes to the east one, on a layer
    of its heading there, its landing there booked at once; the station's pads are not in its plan."""
    rally = [
        RallyConfig(name="R-east", lat=ll(400, 0)[0], lon=ll(400, 0)[1], alt_m=30.0),
        RallyConfig(name="R-west", lat=ll(-400, 0)[0], lon=ll(-400, 0)[1], alt_m=30.0),
    ]
    a = station(pad("P1", 0.0, 0.0), rally=rally)
    p = a.plan("f1", "d1", [ll(0, 0), ll(1500, 1500)], now_s=0.0, speed_mps=15.0, climb_rate_mps=2.5,
               descent_rate_mps=1.5, delivery_alt_m=5.0, dwell_s=15.0)  # fmt: skip
    t = p.launch_at_s + 250.0
    where = position(p, t)
    assert where is not None
    way = a.divert("f1", *where, t, rally=True)
    assert way.landing_pad == "R-east" and way.landing_booked and way.hold_s == 0.0
    here = FRAME.to_local(where[1], where[0])
    heading = math.degrees(math.atan2(400.0 - here[0], -here[1])) % 360.0
    assert way.cruise_alt_back_m in a.layers.for_heading(heading)
    booked = a.volumes_for("d1")
    assert any(v.kind == "pad" and v.pad == "R-east" for v in booked)  # its touchdown there is booked
    assert not any(v.pad == "P1" for v in booked)
    assert a.on_progress("f1", *where, t + 5.0) is None  # nothing to wait for: it lands there
    bare = station(pad("P1", 0.0, 0.0))
    bare.plan("f1", "d1", [ll(0, 0), ll(1500, 1500)], now_s=0.0, speed_mps=15.0, climb_rate_mps=2.5,
              descent_rate_mps=1.5, delivery_alt_m=5.0, dwell_s=15.0)  # fmt: skip
    before = bare.volumes_for("d1")
    with pytest.raises(InputError) as no_rally:
        bare.divert("f1", *where, t, rally=True)
    assert no_rally.value.field == "rally" and bare.volumes_for("d1") == before  # and nothing changed


def test_a_flight_in_the_air_is_booked_again_by_a_new_controller_from_where_the_drone_is() -> None:
    """The book lives in memory: after a restart, a drone out on a delivery is found on its planned path
    from its position alone (the new controller's clock starts elsewhere) and the rest of its flight is
    booked from there; where it really flies next is inside its new volumes, and a new launch that would
    cross it is planned around it."""
    kw = dict(speed_mps=15.0, climb_rate_mps=2.5, descent_rate_mps=1.5, delivery_alt_m=5.0, dwell_s=15.0)
    before = station(pad("P1", 0.0, 0.0))
    p = before.plan("f1", "d1", [ll(0, 0), ll(2000, 2000)], now_s=0.0, **kw)  # type: ignore[arg-type]
    t = p.launch_at_s + 80.0  # cruising out
    where = position(p, t)
    assert where is not None
    after, shift = station(pad("P1", 0.0, 0.0)), -5000.0  # its clock reads t + shift now
    again = after.adopt("f1", "d1", p.route_out, pad=p.pad, cruise_alt_out_m=p.cruise_alt_out_m,
                        cruise_alt_back_m=p.cruise_alt_back_m, lat=where[0], lon=where[1], alt_m=where[2],
                        now_s=t + shift, **kw)  # type: ignore[arg-type]  # fmt: skip
    assert (again.hold_lat, again.hold_lon) == pytest.approx((p.hold_lat, p.hold_lon))
    booked, hold = after.volumes_for("d1"), FRAME.to_local(p.hold_lon, p.hold_lat)
    for dt in range(0, 400, 10):  # up to its holding point: the drone flies the plan it was given
        pos = position(p, t + dt)
        if pos is None or math.dist(FRAME.to_local(pos[1], pos[0]), hold) < 1.0:
            break
        x, y = FRAME.to_local(pos[1], pos[0])
        assert any(v.contains(x, y, pos[2], t + dt + shift) for v in booked), dt
    other = after.plan("f2", "d2", [ll(0, 0), ll(2000, 1800)], now_s=t + shift, **kw)  # type: ignore[arg-type]
    assert other.launch_at_s >= t + shift
    assert crossings(after.book.volumes()) == []
