"""The public surface: exported names, GeoJSON out, and holding a flight under way."""

from __future__ import annotations

import ast
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely

import controller.airspace as airspace
from controller.airspace import (
    AirspaceBook,
    AirspaceBusy,
    FlightIntent,
    LayerPlan,
    Pad,
    fit_flight,
    flight_volumes,
    hold_flight,
    to_geojson,
)
from controller.errors import InputError
from geofences import LocalFrame

PUBLIC = {
    "KINDS", "AirspaceBook", "AirspaceBusy", "AirspaceConflict", "AirspaceError", "Conflict", "Fit",
    "FlightIntent", "FlightPath", "LayerPlan", "Margins", "Pad", "Segment", "Slot", "Volume", "fit_flight",
    "flight_volumes", "heading_deg", "hold_flight", "to_geojson",
    # the station's side, in WGS84, and its `[airspace]` table
    "AirspaceConfig", "AirspacePlan", "AirspaceStats", "HoldInstruction", "MarginsConfig", "PadConfig",
    "RallyConfig", "StationAirspace",
}  # fmt: skip
P1 = Pad("P1", (0.0, 0.0))


def intent(fid: str, vid: str, dest: tuple[float, float], **kw: object) -> FlightIntent:
    return FlightIntent(
        flight_id=fid,
        vehicle_id=vid,
        pad=P1,
        route_out=[dest],
        cruise_alt_out_m=40.0,
        cruise_alt_back_m=65.0,
        **kw,  # type: ignore[arg-type]
    )


def test_exported_members() -> None:
    assert set(airspace.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(airspace, name) is not None


def test_airspace_imports_only_geometry_and_controller_errors() -> None:
    """Pure planning: no store, API, drivers or simulators, so anything may use it."""
    for path in Path(airspace.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")
                assert top[0] not in {"vehicles", "sitl"}, f"{path.name} imports {node.module}"
                if top[0] == "controller":
                    assert node.module in {"controller.errors"} or top[1] == "airspace", node.module


def test_geojson_round_trip() -> None:
    frame = LocalFrame(47.6, -122.3)
    vols = flight_volumes(intent("f1", "d1", (2500.0, -1200.0), t_launch_s=30.0))
    epoch = datetime(2025, 5, 1, 16, 0, tzinfo=UTC)
    doc = json.loads(json.dumps(to_geojson(vols, frame, epoch=epoch)))
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == len(vols)
    for feature, vol in zip(doc["features"], vols, strict=True):
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
        ring = np.array(feature["geometry"]["coordinates"][0])
        assert (np.abs(ring[:, 0]) <= 180).all() and (np.abs(ring[:, 1]) <= 90).all()
        assert np.allclose(ring.mean(axis=0), (-122.3, 47.6), atol=0.05)
        assert shapely.Polygon(ring).exterior.is_ccw  # RFC 7946 right-hand rule
        x, y = frame.to_local(ring[:, 0], ring[:, 1])
        back = shapely.Polygon(np.column_stack([x, y]))
        assert back.symmetric_difference(vol.shape).area < 1e-3 * vol.shape.area
        props = feature["properties"]
        assert props["flight_id"] == "f1" and props["vehicle_id"] == "d1" and props["kind"] == vol.kind
        assert (props["alt_lo_m"], props["alt_hi_m"]) == (round(vol.alt_lo_m, 2), round(vol.alt_hi_m, 2))
        t0, t1 = datetime.fromisoformat(props["t0"]), datetime.fromisoformat(props["t1"])
        assert abs(t0 - (epoch + timedelta(seconds=vol.t0_s))) < timedelta(milliseconds=1)
        assert t0 <= t1
    plain = to_geojson(vols[:1], frame)["features"][0]["properties"]
    assert (plain["t0"], plain["t1"]) == (vols[0].t0_s, vols[0].t1_s)


def test_hold_flight_gives_way_to_a_late_drone() -> None:
    """b is under way when a, late, extends its landing onto b's: b holds at its layer till the pad frees."""
    book, layers = AirspaceBook(), LayerPlan()
    a = fit_flight(book, intent("a", "d1", (4000.0, 0.0)), earliest_s=0.0, latest_s=60.0, layers=layers,
                   reserve=True)  # fmt: skip
    land_a = next(v for v in book.volumes("a") if v.kind == "pad" and v.phase.startswith("arrival"))
    short = intent("b", "d2", (0.0, -1200.0))
    want = land_a.t1_s + 1.0 - short.duration_s  # b lands right after a's pad is free
    b = fit_flight(book, short, earliest_s=want, latest_s=want + 600.0, layers=layers, max_hold_s=0.0,
                   reserve=True)  # fmt: skip
    assert b.slot.hold_s == 0.0
    now = b.slot.t_launch_s + 60.0  # b is outbound; a is 120 s late
    conflicts = book.extend("a", 120.0, now)
    assert [c.flight_id for c in conflicts] == ["b"]
    held = hold_flight(book, b.intent, now_s=now, reserve=True)
    assert held.slot.hold_s > 0.0 and held.intent.arrival_s > b.intent.arrival_s
    assert book.conflicts(book.volumes("b")) == []
    assert min(v.t1_s for v in book.volumes("b")) >= now  # only what is still ahead is booked
    hold = next(v for v in book.volumes("b") if v.kind == "hold")
    assert hold.alt_lo_m < held.slot.cruise_alt_back_m < hold.alt_hi_m
    assert a.intent.flight_id == "a"


def test_hold_flight_refuses_what_a_hold_cannot_fix() -> None:
    book, layers = AirspaceBook(), LayerPlan()
    fit_flight(
        book, intent("a", "d1", (3000.0, 0.0)), earliest_s=0.0, latest_s=60.0, layers=layers, reserve=True
    )
    clash = dataclasses.replace(intent("b", "d2", (3000.0, 0.0)), t_launch_s=0.0)  # same take-off, same time
    with pytest.raises(AirspaceBusy) as err:
        hold_flight(book, clash, now_s=1.0)
    assert err.value.blocking[0].flight_id == "a"
    with pytest.raises(InputError, match="past its holding point"):
        hold_flight(book, clash, now_s=clash.arrival_s - 10.0)
