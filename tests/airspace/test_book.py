"""The book: what conflicts, what is reserved, what a late drone's extension runs into."""

from __future__ import annotations

import dataclasses

import pytest

from controller.airspace import AirspaceBook, AirspaceConflict, FlightIntent, Pad, flight_volumes
from controller.errors import InputError

P1 = Pad("P1", (0.0, 0.0))
FAR = Pad("P9", (5000.0, 5000.0))


def flight(fid: str, vid: str, *, t: float = 0.0, pad: Pad = P1, dest: tuple = (2000.0, 0.0)) -> FlightIntent:
    return FlightIntent(
        flight_id=fid,
        vehicle_id=vid,
        pad=pad,
        route_out=[dest],
        cruise_alt_out_m=40.0,
        cruise_alt_back_m=65.0,
        t_launch_s=t,
    )


def test_reserve_refuses_another_vehicles_volumes_and_changes_nothing() -> None:
    book = AirspaceBook()
    a = flight("a", "d1")
    book.reserve("a", flight_volumes(a), intent=a)
    before = book.volumes()
    with pytest.raises(AirspaceConflict) as err:
        book.reserve("b", flight_volumes(flight("b", "d2", t=10.0)))
    assert book.volumes() == before and "b" not in book
    (c,) = err.value.conflicts
    assert (c.flight_id, c.vehicle_id) == ("a", "d1")
    assert "pad" in c.kinds and c.free_at_s == max(v.t1_s for v in c.reserved)
    assert "pad P1 in use, " in str(err.value) and "by d1 (flight a) until t=" in str(err.value)
    assert book.flight_intent("a") is a


def test_same_vehicle_and_same_flight_do_not_conflict() -> None:
    book = AirspaceBook()
    book.reserve("a", flight_volumes(flight("a", "d1")))
    book.reserve("a2", flight_volumes(flight("a2", "d1", t=10.0)))  # its next flight: the caller's business
    book.reserve("a", flight_volumes(flight("a", "d1", t=5.0)))  # re-planned: replaces its own booking
    assert set(book.intents()) == {"a", "a2"}
    assert min(v.t0_s for v in book.volumes("a")) == pytest.approx(0.0)


def test_far_apart_flights_do_not_conflict() -> None:
    book = AirspaceBook()
    book.reserve("a", flight_volumes(flight("a", "d1")))
    other = flight("b", "d2", pad=FAR, dest=(5000.0, 8000.0))
    assert book.conflicts(flight_volumes(other)) == []


def test_release_and_release_before() -> None:
    book = AirspaceBook()
    a, b = flight("a", "d1"), flight("b", "d2", t=2000.0)
    book.reserve("a", flight_volumes(a))
    book.reserve("b", flight_volumes(b))
    n = len(book)
    mid = a.t_launch_s + 100.0
    dropped = book.release_before(mid)
    assert 0 < dropped < len(flight_volumes(a))
    assert all(v.t1_s >= mid for v in book.volumes())
    assert len(book) == n - dropped
    book.release_before(a.arrival_s + 1000.0)
    assert "a" not in book and "b" in book
    assert book.release("b") == len(flight_volumes(b))
    assert len(book) == 0 and book.volumes() == []


def test_extend_reports_the_conflicts_it_causes() -> None:
    book = AirspaceBook()
    a = flight("a", "d1")
    book.reserve("a", flight_volumes(a))
    b_at = book.volumes("a")[-1].t1_s + 1.0  # the pad is free again just before b's launch
    b = dataclasses.replace(
        flight("b", "d2", t=0.0), t_launch_s=b_at - flight_volumes(flight("x", "x"))[0].t0_s
    )
    book.reserve("b", flight_volumes(b))
    now = a.t_launch_s + 200.0
    before = book.volumes("a")
    conflicts = book.extend("a", 60.0, now)
    assert [c.flight_id for c in conflicts] == ["b"]
    assert conflicts[0].against and all(v.flight_id == "a" for v in conflicts[0].against)
    after = book.volumes("a")
    assert after[-1].t1_s == pytest.approx(b_at - 1.0 + 60.0)
    for old, new in zip(before, after, strict=True):
        assert new.t0_s == old.t0_s  # windows grow at the end only
        assert new.t1_s == (old.t1_s if old.t1_s < now - 60.0 else old.t1_s + 60.0)
    with pytest.raises(InputError):
        book.extend("a", -1.0, now)


def test_many_releases_compact_the_storage() -> None:
    book = AirspaceBook(capacity=16)
    for i in range(60):
        book.reserve(f"f{i}", flight_volumes(flight(f"f{i}", f"d{i}", t=1000.0 * i)))
    for i in range(0, 60, 3):
        book.release(f"f{i}")
    assert len(book) == sum(len(flight_volumes(flight("x", "x"))) for i in range(60) if i % 3)
    late = flight("z", "dz", t=1000.0 * 59)
    assert [c.flight_id for c in book.conflicts(flight_volumes(late))] == ["f59"]
    assert book.conflicts(flight_volumes(flight("z", "dz", t=1000.0 * 57))) == []


def test_replace_books_a_flight_under_way_whatever_it_meets() -> None:
    book = AirspaceBook()
    a = flight("a", "d1")
    book.reserve("a", flight_volumes(a), intent=a)
    # tightened on plan: fewer, smaller volumes, nothing met
    seen = 0.5 * a.duration_s
    assert book.replace("a", flight_volumes(a.progressed(seen, seen))) == []
    assert len(book.volumes("a")) < len(flight_volumes(a)) and book.flight_intent("a") is a
    b_at = book.volumes("a")[-1].t1_s + 1.0
    b = flight("b", "d2", t=b_at + 5.0)
    book.reserve("b", flight_volumes(b))
    # a is seen 120 s late: its booking moves onto b's, and b is named
    late = a.progressed(seen + 120.0, seen)
    assert [c.flight_id for c in book.replace("a", flight_volumes(late), intent=late)] == ["b"]
    assert book.volumes("a")[-1].t1_s > b_at + 100.0 and book.flight_intent("a") is late
