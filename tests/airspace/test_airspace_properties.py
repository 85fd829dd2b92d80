"""Property tests: flights fitted one by one never meet, in their volumes or in their flown paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.airspace import AirspaceBook, AirspaceBusy, FlightIntent, LayerPlan, Margins, Pad, fit_flight

from .kinematics import positions, schedule

# Two pads a few metres apart (one column of air), one 120 m away, one with its own holding point.
PADS = (
    Pad("P1", (0.0, 0.0)),
    Pad("P2", (8.0, 0.0)),
    Pad("P3", (120.0, 0.0)),
    Pad("P4", (0.0, -150.0), hold_xy=(-400.0, -400.0)),
)
LAYERS = LayerPlan()
# Traffic that meets: destinations on a few bearings, detours through a few shared waypoints (as in the
# issue, where 73 of 119 en-route encounters were on shared detour vertices), launches bunched together.
BEARINGS = (0.0, 90.0, 100.0, 180.0, 270.0)
WAYPOINTS = ((600.0, 600.0), (-500.0, 200.0), (0.0, 900.0))


@st.composite
def requests(draw: st.DrawFn) -> dict:
    bearing = math.radians(draw(st.sampled_from(BEARINGS)) + draw(st.floats(-3.0, 3.0)))
    dist = draw(st.floats(400.0, 2500.0))
    dest = (dist * math.sin(bearing), dist * math.cos(bearing))
    via = draw(st.none() | st.sampled_from(WAYPOINTS))
    route = [via, dest] if via is not None and math.dist(via, dest) > 50.0 else [dest]
    return {
        "route_out": route,
        "earliest_s": draw(st.floats(0.0, 120.0)),
        "pads": draw(st.lists(st.sampled_from(PADS), min_size=1, max_size=3, unique=True)),
        "speed_mps": draw(st.sampled_from([12.0, 22.0])),
        "dwell_s": draw(st.floats(5.0, 60.0)),
        "side": draw(st.floats(-1.0, 1.0)),  # this drone's timing error, as a fraction of the margins
    }


def fit_all(reqs: list[dict], step_s: float) -> tuple[AirspaceBook, list[tuple[FlightIntent, float]]]:
    book, flown = AirspaceBook(), []
    for i, r in enumerate(reqs):
        template = FlightIntent(
            flight_id=f"f{i}",
            vehicle_id=f"d{i}",
            pad=r["pads"][0],
            route_out=r["route_out"],
            cruise_alt_out_m=40.0,
            cruise_alt_back_m=65.0,
            speed_mps=r["speed_mps"],
            dwell_s=r["dwell_s"],
        )
        try:
            fit = fit_flight(
                book,
                template,
                earliest_s=r["earliest_s"],
                latest_s=r["earliest_s"] + 3600.0,
                layers=LAYERS,
                pads=r["pads"],
                landing_pads=PADS,
                step_s=step_s,
                reserve=True,
            )
        except AirspaceBusy:
            continue
        flown.append((fit.intent, r["side"]))
    return book, flown


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=2, max_size=8), st.sampled_from([1.0, 5.0, 15.0]))
def test_fitted_flights_never_meet(reqs: list[dict], step_s: float) -> None:
    book, flown = fit_all(reqs, step_s)
    assert len(flown) >= 2

    # 1. No two reserved volumes of different vehicles intersect in space, altitude and time.
    vols = book.volumes()
    lo, hi = np.array([v.alt_lo_m for v in vols]), np.array([v.alt_hi_m for v in vols])
    t0, t1 = np.array([v.t0_s for v in vols]), np.array([v.t1_s for v in vols])
    veh = np.array([v.vehicle_id for v in vols])
    i, j = np.triu_indices(len(vols), 1)
    near = (veh[i] != veh[j]) & (lo[i] <= hi[j]) & (lo[j] <= hi[i]) & (t0[i] <= t1[j]) & (t0[j] <= t1[i])
    shapes = np.array([v.shape for v in vols], dtype=object)
    hit = shapely.intersects(shapes[i[near]], shapes[j[near]])
    assert not hit.any(), [
        (vols[a].phase, vols[b].phase) for a, b in zip(i[near][hit], j[near][hit], strict=True)
    ]

    # 2. Measured on the flown paths (each drone early or late within its margins), every second:
    #    no two drones are ever within 50 m horizontally and 15 m vertically at once.
    m = Margins()
    tracks = [schedule(intent, side, m) for intent, side in flown]
    start = min(kt[0] for kt, _ in tracks)
    end = max(kt[-1] for kt, _ in tracks)
    times = np.arange(math.floor(start), math.ceil(end) + 1.0, 1.0)
    pos = [positions(times, kt, kxyz) for kt, kxyz in tracks]
    for a, b in itertools.combinations(range(len(pos)), 2):
        dh = np.hypot(pos[a][:, 0] - pos[b][:, 0], pos[a][:, 1] - pos[b][:, 1])
        dv = np.abs(pos[a][:, 2] - pos[b][:, 2])
        lost = (dh < m.separation_h_m) & (dv < m.separation_v_m)  # NaN (not airborne) compares False
        assert not lost.any(), f"{flown[a][0].flight_id} and {flown[b][0].flight_id} at t={times[lost][0]}"
