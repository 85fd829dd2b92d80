"""What the launch search keeps between questions, and when it must stop trusting it.

`Candidates` builds a combination's volumes once and shifts them; the station shares take-off columns
between requests, asks the book about every pad's column in one query, and remembers a columns refusal for
every vehicle with nothing booked until the book changes. Each of these must give exactly what asking
afresh gives: a stale or wrong answer here would book volumes that meet another drone's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from controller.airspace import (
    AirspaceBook,
    AirspaceBusy,
    AirspaceConfig,
    FlightIntent,
    LayerPlan,
    Margins,
    Pad,
    PadConfig,
    Slot,
    StationAirspace,
    fit_flight,
)
from controller.airspace.flight import flight_volume_arrays
from controller.airspace.path import _SAME_M, FlightPath
from controller.airspace.search import Candidates, Search
from controller.airspace.volumes import VolumeArrays
from geofences import LocalFrame

LAT, LON = 33.44, -112.25
FRAME = LocalFrame(LAT, LON)
M = Margins(vertical_slice_m=5.0)
PADS = [Pad(f"P{k}", (80.0 * (k % 3), 80.0 * (k // 3))) for k in range(6)]


def ll(x: float, y: float) -> tuple[float, float]:
    lon, lat = FRAME.to_wgs84(x, y)
    return float(lat), float(lon)


def station(n_pads: int, **kw: object) -> StationAirspace:
    pads = []
    for k in range(n_pads):
        lat, lon = ll(80.0 * (k % 4), 80.0 * (k // 4))
        pads.append(PadConfig(name=f"P{k + 1}", lat=lat, lon=lon))
    return StationAirspace(AirspaceConfig(pads=pads, **kw), LAT, LON, frame=FRAME)  # type: ignore[arg-type]


def intent(fid: str, vid: str, dest: tuple[float, float], slot: Slot) -> FlightIntent:
    return FlightIntent(
        flight_id=fid,
        vehicle_id=vid,
        pad=slot.pad,
        landing_pad=slot.landing_pad,
        route_out=[dest],
        cruise_alt_out_m=slot.cruise_alt_out_m,
        cruise_alt_back_m=slot.cruise_alt_back_m,
        t_launch_s=slot.t_launch_s,
        hold_s=slot.hold_s,
    )


def same(a: VolumeArrays, b: VolumeArrays) -> None:
    assert (a.flight_id, a.vehicle_id, a.kinds, a.phases, a.pads) == (
        b.flight_id,
        b.vehicle_id,
        b.kinds,
        b.phases,
        b.pads,
    )
    for name in ("alt_lo_m", "alt_hi_m", "t0_s", "t1_s", "boxes", "disks"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-9, err_msg=name)
    for p, q in zip(a.shapes, b.shapes, strict=True):
        assert p.equals_exact(q, 1e-9)


def busy_book() -> AirspaceBook:
    """A book with flights from the first pads, each fitted in turn from the same instant."""
    book, layers = AirspaceBook(), LayerPlan(margins=M)
    for k, p in enumerate(PADS[:4]):
        dest = (1500.0 + 300 * k, 900.0 - 500 * k)
        fit_flight(
            book, lambda s, k=k, dest=dest: intent(f"b{k}", f"v{k}", dest, s), earliest_s=0.0,
            latest_s=3600.0, layers=layers, pads=[p], margins=M, landing=False, reserve=True,
        )  # fmt: skip
    return book


@pytest.mark.parametrize("landing", [True, False])
@pytest.mark.parametrize("columns", [True, False])
def test_candidates_shifted_are_the_volumes_built_at_that_launch(landing: bool, columns: bool) -> None:
    dests = {"a": (2500.0, 400.0), "b": (-900.0, 1800.0)}
    shared: dict[tuple[object, ...], VolumeArrays] = {}
    for fid, dest in dests.items():
        cands = Candidates(
            lambda s, fid=fid, dest=dest: intent(fid, "d" + fid, dest, s), M, 100.0, landing=landing,
            departures=shared,
        )  # fmt: skip
        if columns:
            cands.at_ref(Slot(100.0, PADS[1], PADS[1], 40.0, 65.0, 30.0))  # the columns taken from the whole
        for t, pad in ((100.0, PADS[1]), (145.0, PADS[1]), (1230.0, PADS[4])):
            slot = Slot(t, pad, pad, 40.0, 65.0, 30.0)
            got = cands.at_ref(slot, columns=columns).shifted(t - cands.ref_s)
            phases = ("departure", "climb-out", "approach", "arrival") if columns else None
            want = flight_volume_arrays(intent(fid, "d" + fid, dest, slot), M, phases=phases, landing=landing)
            same(got, want)
    assert shared if not landing and columns else not shared  # take-off columns shared only without landing


def test_columns_of_all_pads_in_one_query_are_each_pads_own() -> None:
    book = busy_book()
    search = Search(book, lambda s: intent("n", "dn", (2000.0, 0.0), s), M, 30.0, landing=False)
    slots = [Slot(30.0, p, p, 40.0, 40.0) for p in PADS]
    on_grid, at_all = search.columns_free_all(slots, 600.0, 15.0)
    for k, slot in enumerate(slots):
        assert on_grid[k] == pytest.approx(search.columns_free(slot, 600.0, 15.0))
        assert at_all[k] <= on_grid[k] + 1e-9
    assert (on_grid > 0).any()  # the book is in the way of some


def test_fit_flight_with_shared_candidates_finds_what_it_finds_alone() -> None:
    book, layers = busy_book(), LayerPlan(margins=M)

    def make(s: Slot) -> FlightIntent:
        return intent("n", "dn", (1800.0, 700.0), s)

    cands = Candidates(make, M, 0.0, landing=False)
    for e in (0.0, 15.0, 40.0, 300.0):
        kw = dict(
            earliest_s=e, latest_s=e + 900.0, layers=layers, pads=PADS, step_s=15.0, margins=M, landing=False
        )
        alone = fit_flight(book, make, **kw)  # type: ignore[arg-type]
        shared = fit_flight(book, make, candidates=cands, **kw)  # type: ignore[arg-type]
        assert shared.slot == alone.slot


def test_a_refusal_is_shared_by_vehicles_with_nothing_booked_until_the_book_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    air = station(1)
    air.plan("a", "d1", [ll(2000.0, 0.0)], now_s=0.0)
    asked = []
    real = Search.columns_free_all

    def counting(self: Search, *args: object, **kw: object) -> object:
        asked.append(1)
        return real(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Search, "columns_free_all", counting)
    with pytest.raises(AirspaceBusy) as first:
        air.plan("b", "d2", [ll(2000.0, 300.0)], now_s=10.0, latest_s=10.0)
    with pytest.raises(AirspaceBusy) as second:
        air.plan("c", "d3", [ll(-800.0, 900.0)], now_s=10.0, latest_s=10.0)  # another drone, another route
    assert len(asked) == 1 and second.value.free_at_s == first.value.free_at_s
    # A vehicle with a flight booked sees the sky without its own volumes: asked afresh.
    with pytest.raises(AirspaceBusy):
        air.plan("d", "d1", [ll(-800.0, 900.0)], now_s=10.0, latest_s=10.0)
    assert len(asked) == 2
    # The book changes (the flight in the way is gone): the refusal is forgotten and the drone goes.
    air.finish("a")
    c = air.plan("c", "d3", [ll(-800.0, 900.0)], now_s=10.0, latest_s=10.0)
    assert c.launch_at_s == 10.0 and len(asked) == 3


def test_with_more_pads_than_a_search_takes_a_launch_still_goes_at_once_and_meets_nobody() -> None:
    """Ten pads, nine drones booked from their own pads first; the next goes at once, from a free column,
    although the search looks at no more than `_PADS_PER_SEARCH` pads."""
    air = station(10)
    for k in range(9):
        air.plan(
            f"a{k}", f"d{k}", [ll(3000.0, 3000.0 + 300 * k)], now_s=0.0, latest_s=3600.0, pads=[f"P{k + 2}"]
        )
    got = air.plan("n", "dn", [ll(-2000.0, -500.0)], now_s=0.0, latest_s=0.0)
    assert got.launch_at_s == 0.0
    vols = air.book.volumes()
    mine = [v for v in vols if v.flight_id == "n"]
    assert not any(a.intersects(b) for a in mine for b in vols if b.flight_id != "n")


def _progress_one_by_one(path: FlightPath, p: np.ndarray, now_s: float | None, after: float) -> float:
    """`FlightPath.progress` as it was written first, segment by segment (the reference)."""
    best, best_d = after, math.inf
    here = None if now_s is None else now_s - path.t_launch_s
    for s in path.segments:
        if s.tau1_s < after:
            continue
        a, b = np.asarray(s.start), np.asarray(s.end)
        ab = b - a
        length2 = float(ab @ ab)
        if length2 > 1e-12:
            u = float(np.clip((p - a) @ ab / length2, 0.0, 1.0))
            tau = s.tau0_s + u * (s.tau1_s - s.tau0_s)
        else:
            u = 0.0
            tau = s.tau0_s if here is None else float(np.clip(here, s.tau0_s, s.tau1_s))
        d = float(np.linalg.norm(a + u * ab - p))
        tie = abs(d - best_d) <= _SAME_M and here is not None and abs(tau - here) < abs(best - here)
        if d < best_d - _SAME_M or tie:
            best, best_d = max(tau, after), d
    return best


def test_progress_is_the_segment_by_segment_answer() -> None:
    it = intent("f", "d", (2400.0, -900.0), Slot(50.0, PADS[0], PADS[2], 40.0, 65.0, 45.0))
    path = it.path(M)
    rng = np.random.default_rng(3)
    times = np.linspace(40.0, 50.0 + path.duration_s + 10.0, 400)
    planned = path.position(times)
    for t, xyz in zip(times, planned, strict=True):
        if np.isnan(xyz).any():
            xyz = np.array([0.0, 0.0, 0.0])
        p = xyz + rng.normal(0.0, 3.0, 3)
        for now, after in ((None, 0.0), (float(t), 0.0), (float(t), max(0.0, float(t) - 50.0 - 60.0))):
            assert path.progress(p, now_s=now, after_tau_s=after) == pytest.approx(
                _progress_one_by_one(path, p, now, after), abs=1e-9
            )
