"""Loading zone files: good files load with every property; each bad input names its feature and field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import shapely

from geofences import LastmileError, Zone, ZoneError, ZoneKind, load_zones, zones_to_geojson

SQUARE = [[-112.27, 33.44], [-112.26, 33.44], [-112.26, 33.45], [-112.27, 33.45], [-112.27, 33.44]]


def feature(props: dict[str, Any], geometry: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    geom = geometry if geometry is not None else {"type": "Polygon", "coordinates": [SQUARE]}
    return {"type": "Feature", "geometry": geom, "properties": props, **extra}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


GOOD = collection(
    feature({"id": "airport", "name": "Airport", "kind": "no_fly", "note": "class C"}),
    feature(
        {"kind": "no_go", "applies_to": "both", "floor_m": 0, "ceiling_m": 30.5, "fill": "#ff0000"},
        id="stadium",
    ),
    feature(
        {
            "id": "heli",
            "kind": "no_fly",
            "radius_m": 250,
            "active_from": "2026-11-21T08:00:00-07:00",
            "active_until": "2026-11-21T18:00:00-07:00",
        },
        {"type": "Point", "coordinates": [-112.25, 33.46]},
    ),
    feature(
        {"id": "area", "kind": "operating_area", "ceiling_m": 120, "applies_to": ["drone"]},
        {
            "type": "MultiPolygon",
            "coordinates": [[SQUARE], [[[-112.2, 33.4], [-112.1, 33.4], [-112.1, 33.5], [-112.2, 33.4]]]],
        },
    ),
    feature({"id": 7, "kind": "no_fly", "floor_m": 60}),
)


def test_good_file_loads_every_property(tmp_path: Path) -> None:
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(GOOD))
    zones = {z.id: z for z in load_zones(path)}
    assert list(zones) == ["airport", "stadium", "heli", "area", "7"]
    airport = zones["airport"]
    assert airport.kind is ZoneKind.NO_FLY and airport.is_exclusion
    assert airport.applies_to == {"drone"} and airport.name == "Airport" and airport.note == "class C"
    assert zones["stadium"].applies_to == {"drone", "robot"} and zones["stadium"].ceiling_m == 30.5
    assert zones["stadium"].name == "stadium"
    heli = zones["heli"]
    assert heli.geometry.geom_type == "Point" and heli.radius_m == 250.0
    assert heli.active_from == datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    area = zones["area"]
    assert (
        not area.is_exclusion and area.applies_to == {"drone"} and area.geometry.geom_type == "MultiPolygon"
    )
    assert zones["7"].floor_m == 60.0 and zones["7"].ceiling_m is None


def test_defaults_for_applies_to() -> None:
    zones = load_zones(
        collection(
            feature({"id": "a", "kind": "no_fly"}),
            feature({"id": "b", "kind": "no_go"}),
            feature({"id": "c", "kind": "operating_area"}),
        )
    )
    assert [z.applies_to for z in zones] == [{"drone"}, {"robot"}, {"drone", "robot"}]


def test_round_trip_through_geojson() -> None:
    zones = load_zones(GOOD)
    again = load_zones(json.loads(json.dumps(zones_to_geojson(zones))))
    assert again == zones


def test_zone_applies_by_kind_time_and_altitude() -> None:
    zones = {z.id: z for z in load_zones(GOOD)}
    heli, high = zones["heli"], zones["7"]
    mst = timezone(timedelta(hours=-7))
    assert heli.applies("drone", at=datetime(2026, 11, 21, 12, 0, tzinfo=mst))
    assert not heli.applies("drone", at=datetime(2026, 11, 21, 18, 0, tzinfo=mst))  # until is exclusive
    assert not heli.applies("drone", at=datetime(2026, 11, 21, 7, 59, tzinfo=mst))
    assert heli.applies("drone")  # no time given: assume active
    assert not heli.applies("robot")
    assert high.applies("drone", altitude_m=60) and high.applies("drone", altitude_m=100)
    assert not high.applies("drone", altitude_m=59.9)
    assert high.applies("drone")  # unknown altitude: the conservative answer
    with pytest.raises(ValueError, match="timezone-aware"):
        heli.is_active(datetime(2026, 11, 21, 12, 0))
    with pytest.raises(ValueError, match="vehicle_kind"):
        heli.applies("van")


def bad(doc: Any) -> ZoneError:
    with pytest.raises(ZoneError) as info:
        load_zones(doc)
    return info.value


def with_feature(**changes: Any) -> dict[str, Any]:
    """GOOD's first feature changed: properties merged from `props`, or geometry replaced."""
    doc = copy.deepcopy(GOOD)
    feat = doc["features"][0]
    feat["properties"].update(changes.pop("props", {}))
    for key in changes.pop("drop", ()):
        feat["properties"].pop(key)
    if "geometry" in changes:
        feat["geometry"] = changes.pop("geometry")
    return doc


@pytest.mark.parametrize(
    ("props", "field", "text"),
    [
        ({"kind": "no_swim"}, "kind", "no_swim"),
        ({"applies_to": "van"}, "applies_to", "van"),
        ({"applies_to": []}, "applies_to", "got []"),
        ({"floor_m": "60"}, "floor_m", "'60'"),
        ({"floor_m": -1}, "floor_m", "greater than or equal to 0"),
        ({"floor_m": True}, "floor_m", "True"),
        ({"ceiling_m": 0}, "ceiling_m", "greater than 0"),
        ({"floor_m": 50, "ceiling_m": 50}, "ceiling_m", "must be above floor_m"),
        ({"active_from": "2026-11-21T08:00:00"}, "active_from", "timezone"),
        ({"active_until": "tomorrow"}, "active_until", "tomorrow"),
        (
            {"active_from": "2026-11-21T10:00:00Z", "active_until": "2026-11-21T09:00:00Z"},
            "active_until",
            "must be after",
        ),
        ({"radius_m": 100}, "radius_m", "only allowed for Point"),
        ({"ceilling_m": 100}, "ceilling_m", "unknown property"),
        ({"name": 5}, "name", "string"),
    ],
)
def test_bad_properties_name_feature_and_field(props: dict[str, Any], field: str, text: str) -> None:
    err = bad(with_feature(props=props))
    assert err.feature == "airport"
    assert err.field == field
    assert text in str(err) and "airport" in str(err)


def test_missing_kind() -> None:
    err = bad(with_feature(drop=["kind"]))
    assert (err.feature, err.field) == ("airport", "kind")


def test_missing_id_names_the_feature_by_index() -> None:
    err = bad(with_feature(drop=["id"]))
    assert (err.feature, err.field) == ("#0", "id")


def test_conflicting_ids() -> None:
    doc = with_feature()
    doc["features"][0]["id"] = "tower"
    err = bad(doc)
    assert err.field == "id" and "differ" in str(err)


def test_duplicate_ids() -> None:
    doc = copy.deepcopy(GOOD)
    doc["features"].append(feature({"id": "heli", "kind": "no_go"}))
    err = bad(doc)
    assert (err.feature, err.field) == ("heli", "id") and "duplicate" in str(err) and "#2" in str(err)


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "Feature", "geometry": None, "properties": {}},
        {"type": "GeometryCollection", "geometries": []},
        [],
        42,
    ],
)
def test_not_a_feature_collection(doc: Any) -> None:
    err = bad(doc)
    assert "FeatureCollection" in str(err)


def test_features_not_a_list() -> None:
    assert bad({"type": "FeatureCollection", "features": {}}).field == "features"


def test_unreadable_and_non_json_files(tmp_path: Path) -> None:
    assert "cannot read" in str(bad(tmp_path / "missing.geojson"))
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", ')
    assert "not JSON" in str(bad(path))


@pytest.mark.parametrize(
    ("geometry", "text"),
    [
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "unsupported geometry type 'LineString'"),
        (None, "missing"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}, "degenerate Polygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "malformed Polygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}, "degenerate Polygon"),
        ({"type": "Polygon", "coordinates": "nope"}, "malformed Polygon"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            "Self-intersection",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, float("nan")], [1, 0], [0, 0]]]}, "finite"),
        ({"type": "Point", "coordinates": [-112.26, 33.45]}, "required for a Point"),
    ],
)
def test_bad_geometry(geometry: Any, text: str) -> None:
    err = bad(with_feature(geometry=geometry))
    assert err.feature == "airport" and err.field in {"geometry", "radius_m"}
    assert text in str(err)


def test_out_of_range_coordinates_hint_at_swapped_order() -> None:
    swapped = [[lat, lon] for lon, lat in SQUARE]
    err = bad(with_feature(geometry={"type": "Polygon", "coordinates": [swapped]}))
    assert err.field == "geometry" and "out of range" in str(err) and "swap" in str(err)
    far = [[200.0, 10.0], [201.0, 10.0], [201.0, 11.0], [200.0, 10.0]]
    err = bad(with_feature(geometry={"type": "Polygon", "coordinates": [far]}))
    assert "out of range" in str(err) and "swap" not in str(err)


def test_zone_is_immutable_and_hashable() -> None:
    zone = load_zones(GOOD)[0]
    assert isinstance(zone, Zone) and hash(zone) == hash(load_zones(GOOD)[0])
    with pytest.raises(AttributeError):
        zone.name = "other"  # type: ignore[misc]
    assert shapely.equals(zone.geometry, shapely.Polygon(SQUARE))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "no_swim"}, "kind"),
        ({"applies_to": frozenset({"van"})}, "applies_to"),
        ({"applies_to": frozenset()}, "applies_to"),
        ({"geometry": shapely.LineString([(0, 0), (1, 1)])}, "geometry"),
        ({"geometry": shapely.Point(-112.26, 33.45)}, "radius_m"),
        ({"geometry": shapely.Point(-112.26, 33.45), "radius_m": -5.0}, "radius_m"),
        ({"radius_m": 10.0}, "radius_m"),
        ({"floor_m": 80.0, "ceiling_m": 60.0}, "ceiling_m"),
        ({"floor_m": float("nan")}, "floor_m"),
        ({"active_from": datetime(2026, 1, 1)}, "active_from"),
        ({"geometry": shapely.Polygon([(33.44, -112.27), (33.45, -112.27), (33.45, -112.26)])}, "geometry"),
    ],
)
def test_zones_built_in_code_follow_the_same_rules(changes: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "id": "z",
        "name": "z",
        "kind": ZoneKind.NO_FLY,
        "applies_to": frozenset({"drone"}),
        "geometry": shapely.Polygon(SQUARE),
    }
    with pytest.raises(ZoneError) as info:
        Zone(**{**args, **changes})
    assert (info.value.feature, info.value.field) == ("z", field)


def test_zone_in_code_coerces_kind_and_applies_to() -> None:
    zone = Zone("z", "z", "no_go", ["robot"], shapely.Polygon(SQUARE))  # type: ignore[arg-type]
    assert zone.kind is ZoneKind.NO_GO and zone.applies_to == frozenset({"robot"})
    assert isinstance(ZoneError("x"), LastmileError)


def test_active_during_is_overlap_of_the_window_with_the_trip(make_zone: Any) -> None:
    t0 = datetime(2026, 12, 1, 8, tzinfo=UTC)
    tfr = make_zone("tfr", (0.0, 0.0), radius_m=500.0, active_from=t0, active_until=t0 + timedelta(hours=2))
    hour = timedelta(hours=1)
    assert tfr.active_during(t0 - hour, t0 + timedelta(minutes=1))  # starts while the trip is out
    assert not tfr.active_during(t0 - hour, t0)  # the trip is back as it starts ([start, end))
    assert tfr.active_during(t0 + hour, t0 + 2 * hour)
    assert not tfr.active_during(t0 + 2 * hour, t0 + 3 * hour)  # over before the trip
    assert tfr.active_during(None, None)  # no time given: assume it binds
