"""fit_flight: pads, layers, launch times and holds chosen so that no two drones' volumes meet."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from controller.airspace import (
    AirspaceBook,
    AirspaceBusy,
    FlightIntent,
    LayerPlan,
    Pad,
    Slot,
    Volume,
    fit_flight,
)

LAYERS = LayerPlan()
P1, P2 = Pad("P1", (0.0, 0.0)), Pad("P2", (8.0, 0.0))  # a few metres apart: one shared column of air
FAR = Pad("P3", (0.0, 200.0))  # far enough to work at the same time as P1


def intent(fid: str, vid: str, dest: tuple[float, float] = (2000.0, 300.0), **kw: object) -> FlightIntent:
    return FlightIntent(
        flight_id=fid,
        vehicle_id=vid,
        pad=P1,
        route_out=[dest],
        cruise_alt_out_m=40.0,
        cruise_alt_back_m=65.0,
        **kw,  # type: ignore[arg-type]
    )


def windows_overlap(a: Volume, b: Volume) -> bool:
    return a.t0_s <= b.t1_s and b.t0_s <= a.t1_s


def assert_no_two_vehicles_meet(book: AirspaceBook) -> None:
    vols = book.volumes()
    for a, b in itertools.combinations(vols, 2):
        if a.vehicle_id != b.vehicle_id:
            assert not a.intersects(b), (a.flight_id, a.phase, b.flight_id, b.phase)


def test_same_instant_same_pad_never_shares_the_pad_slot() -> None:
    book = AirspaceBook()
    fits = [
        fit_flight(
            book, intent(f"f{i}", f"d{i}"), earliest_s=0.0, latest_s=3600.0, layers=LAYERS, reserve=True
        )
        for i in range(2)
    ]
    assert fits[0].slot.t_launch_s == 0.0 and fits[1].slot.t_launch_s > 0.0
    pads = [[v for v in f.volumes if v.kind == "pad"] for f in fits]
    for a, b in itertools.product(*pads):
        assert not windows_overlap(a, b)
    assert_no_two_vehicles_meet(book)


def test_two_pads_apart_launch_together_close_pads_take_turns() -> None:
    east, north = (2000.0, 300.0), (-300.0, 2000.0)
    book = AirspaceBook()
    a, b = (
        fit_flight(
            book,
            intent(f"f{i}", f"d{i}", dest),
            earliest_s=0.0,
            latest_s=3600.0,
            layers=LAYERS,
            pads=[P1, FAR],
            reserve=True,
        )
        for i, dest in enumerate((east, north))
    )
    assert (a.slot.pad, b.slot.pad) == (P1, FAR)
    assert a.slot.t_launch_s == b.slot.t_launch_s == 0.0
    assert_no_two_vehicles_meet(book)

    book = AirspaceBook()
    c, d = (
        fit_flight(
            book,
            intent(f"f{i}", f"d{i}", dest),
            earliest_s=0.0,
            latest_s=3600.0,
            layers=LAYERS,
            pads=[P1, P2],
            reserve=True,
        )
        for i, dest in enumerate((east, north))
    )
    assert c.slot.t_launch_s == 0.0 and d.slot.t_launch_s > 0.0  # 8 m apart is one pad for separation
    assert_no_two_vehicles_meet(book)


def test_head_on_routes_get_different_layers() -> None:
    """A flies out to X while B, on the same line, comes back from X: different layers, no delay."""
    book = AirspaceBook()
    x = (3000.0, 0.0)
    b = fit_flight(book, intent("b", "d2", x), earliest_s=0.0, latest_s=600.0, layers=LAYERS, reserve=True)
    back_start = next(v for v in b.volumes if v.phase.startswith("cruise back")).t0_s
    a = fit_flight(
        book,
        intent("a", "d1", x),
        earliest_s=back_start - 60.0,
        latest_s=back_start + 600.0,
        layers=LAYERS,
        pads=[FAR],
        reserve=True,
    )
    assert a.slot.t_launch_s == back_start - 60.0
    assert a.slot.cruise_alt_out_m != b.slot.cruise_alt_back_m
    outbound = [v for v in a.volumes if v.phase.startswith("cruise out")]
    inbound = [v for v in b.volumes if v.phase.startswith(("cruise back", "final"))]
    assert any(windows_overlap(o, i) and o.shape.intersects(i.shape) for o in outbound for i in inbound)
    assert_no_two_vehicles_meet(book)


def test_head_on_on_one_layer_waits() -> None:
    """Forced onto one layer both ways, the later flight launches when the other's corridor is clear."""
    book = AirspaceBook()
    x = (3000.0, 0.0)

    def one_layer(fid: str, vid: str) -> object:
        def make(slot: Slot) -> FlightIntent:
            return dataclasses.replace(
                intent(fid, vid, x),
                t_launch_s=slot.t_launch_s,
                pad=slot.pad,
                landing_pad=slot.landing_pad,
                cruise_alt_out_m=60.0,
                cruise_alt_back_m=60.0,
            )

        return make

    b = fit_flight(
        book, one_layer("b", "d2"), earliest_s=0.0, latest_s=600.0, layers=LAYERS, pads=[P1], reserve=True
    )
    back = [v for v in b.volumes if v.phase.startswith(("cruise back", "final"))]
    want = back[0].t0_s - 60.0
    a = fit_flight(
        book,
        one_layer("a", "d1"),
        earliest_s=want,
        latest_s=want + 3600.0,
        layers=LAYERS,
        pads=[FAR],
        reserve=True,
    )
    assert a.slot.t_launch_s > want
    outbound = [v for v in a.volumes if v.phase.startswith("cruise out")]
    assert not any(o.intersects(i) for o in outbound for i in back)
    assert_no_two_vehicles_meet(book)


def test_late_drone_extension_delays_the_next_launch() -> None:
    book = AirspaceBook()
    a = fit_flight(book, intent("a", "d1"), earliest_s=0.0, latest_s=600.0, layers=LAYERS, reserve=True)
    # b wants to leave as a lands: it is booked right after a's landing
    b = fit_flight(
        book,
        intent("b", "d2", (-1500.0, 800.0)),
        earliest_s=a.intent.arrival_s,
        latest_s=a.intent.arrival_s + 3600.0,
        layers=LAYERS,
        reserve=True,
    )
    first = b.slot.t_launch_s
    assert first > a.intent.arrival_s
    # a is 90 s late, 250 s into its flight: its booking grows, and now meets b's
    conflicts = book.extend("a", 90.0, now_s=250.0)
    assert [c.flight_id for c in conflicts] == ["b"]
    # the later flight is held back: re-planned from the same earliest time, it launches later
    book.release("b")
    b2 = fit_flight(
        book,
        intent("b", "d2", (-1500.0, 800.0)),
        earliest_s=a.intent.arrival_s,
        latest_s=a.intent.arrival_s + 3600.0,
        layers=LAYERS,
        reserve=True,
    )
    assert b2.slot.t_launch_s > first and b2.slot.hold_s == 0.0
    assert book.conflicts(book.volumes("b")) == []
    assert_no_two_vehicles_meet(book)


def test_no_room_before_the_deadline_is_airspace_busy_with_a_time() -> None:
    book = AirspaceBook()
    fit_flight(book, intent("a", "d3"), earliest_s=0.0, latest_s=60.0, layers=LAYERS, reserve=True)
    with pytest.raises(AirspaceBusy) as err:
        fit_flight(book, intent("b", "d4"), earliest_s=0.0, latest_s=20.0, layers=LAYERS)
    busy = err.value
    assert busy.code == "airspace_busy"
    assert busy.free_at_s > 20.0
    assert busy.blocking and busy.blocking[0].vehicle_id == "d3"
    assert "airspace busy until t=" in str(busy) and "pad P1 in use" in str(busy) and "d3" in str(busy)
    assert busy.reason(lambda s: f"[{s:.0f}]").startswith(f"airspace busy until [{busy.free_at_s:.0f}]")
    later = fit_flight(book, intent("b", "d4"), earliest_s=0.0, latest_s=3600.0, layers=LAYERS)
    assert later.slot.t_launch_s >= busy.free_at_s
    assert "b" not in book  # not asked to reserve


def test_busy_landing_pad_means_a_hold_at_the_inbound_layer() -> None:
    """b's take-off is clear but its landing meets a's: it holds at the holding point instead of waiting."""
    book = AirspaceBook()
    a = fit_flight(
        book, intent("a", "d1", (6000.0, 0.0)), earliest_s=0.0, latest_s=60.0, layers=LAYERS, reserve=True
    )
    short = intent("b", "d2", (0.0, -1500.0))
    t = a.intent.arrival_s - short.duration_s
    b = fit_flight(
        book, short, earliest_s=t, latest_s=t + 3600.0, layers=LAYERS, max_hold_s=600.0, reserve=True
    )
    assert b.slot.t_launch_s == t and b.slot.hold_s > 0.0
    assert b.intent.arrival_s == pytest.approx(b.slot.t_launch_s + short.duration_s + b.slot.hold_s)
    hold = next(v for v in b.volumes if v.kind == "hold")
    assert hold.alt_lo_m < b.slot.cruise_alt_back_m < hold.alt_hi_m
    assert_no_two_vehicles_meet(book)


def test_busy_landing_pad_lands_on_a_free_one() -> None:
    book = AirspaceBook()
    a = fit_flight(
        book, intent("a", "d1", (6000.0, 0.0)), earliest_s=0.0, latest_s=60.0, layers=LAYERS, reserve=True
    )
    short = intent("b", "d2", (0.0, -1500.0))
    t = a.intent.arrival_s - short.duration_s
    b = fit_flight(
        book,
        short,
        earliest_s=t,
        latest_s=t + 3600.0,
        layers=LAYERS,
        pads=[FAR],
        landing_pads=[FAR, P1],
        reserve=True,
    )
    assert b.slot.t_launch_s == t and b.slot.hold_s == 0.0
    assert b.intent.landing_pad == FAR
    assert_no_two_vehicles_meet(book)
