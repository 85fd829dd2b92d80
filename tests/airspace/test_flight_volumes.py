"""A flight's volumes cover the flight: wherever and whenever the drone can be, with room to spare."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely

from controller.airspace import FlightIntent, Margins, Pad, Volume, flight_volumes
from controller.errors import InputError

from .kinematics import knots, positions, schedule

P1 = Pad("P1", (0.0, 0.0))
P2 = Pad("P2", (40.0, -30.0), hold_xy=(300.0, -300.0))

FLIGHTS = {
    "straight": FlightIntent(
        flight_id="f1",
        vehicle_id="d1",
        pad=P1,
        route_out=[(3000.0, 400.0)],
        cruise_alt_out_m=40.0,
        cruise_alt_back_m=65.0,
    ),
    "detour, other landing pad with a holding point, hold": FlightIntent(
        flight_id="f2",
        vehicle_id="d2",
        pad=P1,
        route_out=[(800.0, 900.0), (2500.0, 1200.0), (2600.0, -700.0)],
        route_back=[(1500.0, -900.0)],
        landing_pad=P2,
        cruise_alt_out_m=90.0,
        cruise_alt_back_m=115.0,
        hold_s=70.0,
        t_launch_s=1234.5,
    ),
    "short hop, hold on the route, payload place to the ground": FlightIntent(
        flight_id="f3",
        vehicle_id="d3",
        pad=(5.0, 5.0),
        route_out=[(-120.0, 60.0)],
        cruise_alt_out_m=40.0,
        cruise_alt_back_m=65.0,
        delivery_alt_m=0.0,
        dwell_s=40.0,
        hold_s=30.0,
    ),
    "long, slow, gentle rates": FlightIntent(
        flight_id="f4",
        vehicle_id="d4",
        pad=P1,
        route_out=[(-9000.0, 2000.0), (-14000.0, -3000.0)],
        cruise_alt_out_m=65.0,
        cruise_alt_back_m=40.0,
        speed_mps=12.0,
        climb_rate_mps=1.0,
        descent_rate_mps=0.7,
        t_launch_s=-50.0,
    ),
}


def covered(vols: list[Volume], margins: Margins, t: float, xyz: np.ndarray) -> bool:
    """Is there one volume whose window holds `t` and which holds the drone's whole separation envelope?"""
    x, y, z = xyz
    r = margins.separation_h_m / 2 + margins.nav_error_m + margins.corner_cut_m - 1e-6
    v = margins.vertical_buffer_m - 1e-6
    point = shapely.Point(x, y)
    for vol in vols:
        if not (vol.t0_s <= t <= vol.t1_s):
            continue
        if not (vol.alt_lo_m <= max(z - v, 0.0) and z + v <= vol.alt_hi_m):
            continue
        if vol.shape.contains(point) and vol.shape.exterior.distance(point) >= r:
            return True
    return False


@pytest.mark.parametrize("name", list(FLIGHTS))
def test_path_matches_an_independent_model(name: str) -> None:
    intent = FLIGHTS[name]
    kt, kxyz = knots(intent)
    assert intent.duration_s == pytest.approx(kt[-1])
    assert intent.arrival_s == pytest.approx(intent.t_launch_s + kt[-1])
    times = intent.t_launch_s + np.arange(0.0, kt[-1], 1.0)
    mine = positions(times - intent.t_launch_s, kt, kxyz)
    np.testing.assert_allclose(intent.path().position(times), mine, atol=1e-6)


@pytest.mark.parametrize("side", [-1.0, -0.5, 0.0, 0.5, 1.0])
@pytest.mark.parametrize("name", list(FLIGHTS))
def test_every_second_of_the_flight_is_inside_a_volume(name: str, side: float) -> None:
    """Sampled each second (and at every knot), early or late within the margins, the drone is covered."""
    intent, margins = FLIGHTS[name], Margins()
    vols = flight_volumes(intent, margins)
    kt, kxyz = schedule(intent, side, margins)
    times = np.union1d(np.arange(kt[0], kt[-1], 1.0), kt)
    for t, xyz in zip(times, positions(times, kt, kxyz), strict=True):
        assert covered(vols, margins, float(t), xyz), f"{name}: uncovered at t={t:.1f} s, {xyz}"


def test_volume_kinds_and_order() -> None:
    vols = flight_volumes(FLIGHTS["detour, other landing pad with a holding point, hold"])
    kinds = [v.kind for v in vols]
    assert kinds[0] == "pad" and vols[0].pad == "P1" and vols[0].alt_lo_m == 0.0
    assert kinds[-1] == "pad" and vols[-1].pad == "P2"
    assert {"climb", "cruise", "descent", "drop", "hold"} <= set(kinds)
    hold = next(v for v in vols if v.kind == "hold")
    assert hold.shape.contains(shapely.Point(300.0, -300.0))
    assert hold.alt_lo_m < 115.0 < hold.alt_hi_m
    assert hold.t1_s - hold.t0_s >= 70.0
    # pad volumes reach exactly the transition altitude plus the vertical buffer
    assert vols[0].alt_hi_m == pytest.approx(Margins().pad_transition_alt_m + Margins().vertical_buffer_m)


def test_hold_delays_the_arrival_by_its_length() -> None:
    base = FLIGHTS["straight"]
    held = dataclasses.replace(base, hold_s=45.0)
    assert held.arrival_s == pytest.approx(base.arrival_s + 45.0)
    assert flight_volumes(held)[-1].t1_s > flight_volumes(base)[-1].t1_s + 45.0


def test_route_back_defaults_to_the_outbound_route_reversed() -> None:
    f = FlightIntent(
        flight_id="f",
        vehicle_id="d",
        pad=P1,
        route_out=[(100.0, 0.0), (100.0, 900.0)],
        cruise_alt_out_m=40.0,
        cruise_alt_back_m=65.0,
    )
    assert f.route_back == ((100.0, 0.0),)
    assert f.landing_pad == P1
    assert f.heading_out_deg == pytest.approx(6.34, abs=0.01)
    assert f.heading_back_deg == pytest.approx(186.34, abs=0.01)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"route_out": []}, "route_out"),
        ({"speed_mps": 0.0}, "speed_mps"),
        ({"cruise_alt_back_m": 3.0}, "cruise_alt_back_m"),
        ({"hold_s": -1.0}, "hold_s"),
        ({"route_out": [(1.0, float("nan"))]}, "route_out"),
    ],
)
def test_bad_intents_name_the_field(change: dict, field: str) -> None:
    args = {
        "flight_id": "f",
        "vehicle_id": "d",
        "pad": P1,
        "route_out": [(500.0, 0.0)],
        "cruise_alt_out_m": 40.0,
        "cruise_alt_back_m": 65.0,
    }
    with pytest.raises(InputError) as err:
        FlightIntent(**{**args, **change})
    assert err.value.field == field


def test_layers_below_the_pad_transition_are_refused() -> None:
    f = FlightIntent(
        flight_id="f",
        vehicle_id="d",
        pad=P1,
        route_out=[(500.0, 0.0)],
        delivery_alt_m=2.0,
        cruise_alt_out_m=8.0,
        cruise_alt_back_m=65.0,
    )
    with pytest.raises(InputError, match="pad transition") as err:
        flight_volumes(f)
    assert err.value.field == "cruise_alt_out_m"


@pytest.mark.parametrize("side", [-1.0, 0.0, 1.0])
@pytest.mark.parametrize("name", list(FLIGHTS))
def test_volumes_after_progress_cover_the_rest_of_the_flight(name: str, side: float) -> None:
    """Seen 40 s late at 45 % of its plan, the drone's re-planned volumes cover all it can still do."""
    intent, margins = FLIGHTS[name], Margins()
    seen = 0.45 * intent.duration_s
    now = intent.t_launch_s + seen + 40.0
    later = intent.progressed(now, seen)
    assert later.arrival_s == pytest.approx(intent.arrival_s + 40.0)
    vols = flight_volumes(later, margins)
    assert len(vols) < len(flight_volumes(intent, margins))
    kt, kxyz = schedule(later, side, margins)
    times = np.union1d(np.arange(now, kt[-1], 1.0), kt[kt >= now])
    for t, xyz in zip(times, positions(times, kt, kxyz), strict=True):
        assert covered(vols, margins, float(t), xyz), f"{name}: uncovered at t={t:.1f} s, {xyz}"


@pytest.mark.parametrize("name", list(FLIGHTS))
def test_on_time_progress_only_shrinks_the_windows(name: str) -> None:
    intent = FLIGHTS[name]
    before = flight_volumes(intent)
    seen = 0.6 * intent.duration_s
    after = flight_volumes(intent.progressed(intent.t_launch_s + seen, seen))
    for old, new in zip(before[len(before) - len(after) :], after, strict=True):
        assert old.phase == new.phase and old.shape.equals(new.shape)
        assert old.t0_s <= new.t0_s <= new.t1_s <= old.t1_s
    assert after[-1].t1_s < before[-1].t1_s - 20.0  # the landing needs markedly less room


@pytest.mark.parametrize("name", list(FLIGHTS))
def test_progress_finds_the_plan_time_of_a_position(name: str) -> None:
    intent = FLIGHTS[name]
    path = intent.path()
    moving = [s for s in path.segments if s.start != s.end]
    for s in moving[:: max(1, len(moving) // 8)]:
        tau = 0.3 * s.tau0_s + 0.7 * s.tau1_s
        (xyz,) = path.position(intent.t_launch_s + tau)
        assert path.progress(xyz, after_tau_s=max(0.0, tau - 30.0)) == pytest.approx(tau, abs=1e-6)
    drop = next(s for s in path.segments if s.kind == "drop")
    mid = (drop.tau0_s + drop.tau1_s) / 2
    (xyz,) = path.position(intent.t_launch_s + mid)
    assert path.progress(xyz, after_tau_s=drop.tau0_s - 1.0) == pytest.approx(drop.tau0_s)
    now = intent.t_launch_s + mid
    assert path.progress(xyz, now_s=now, after_tau_s=drop.tau0_s - 1.0) == pytest.approx(mid)
    with pytest.raises(InputError):
        intent.progressed(0.0, intent.duration_s + 1.0)
