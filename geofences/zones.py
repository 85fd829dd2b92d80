"""Zones: where vehicles must not go (no-fly, no-go) or must stay (operating area), loaded from GeoJSON.

A zone file is an RFC 7946 FeatureCollection; each Feature is one zone whose properties say what kind it
is, which vehicles it binds, at which altitudes and when. Geometry stays in WGS84 lon/lat here; the
`checks` module projects it into a station's metric frame. Everything wrong with a file is reported as a
`ZoneError` naming the feature (by id, or by index when it has none) and the field, because a zone file
is written by a person and a silent mistake in one is a safety problem.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import shapely
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geofences.errors import ZoneError

__all__ = ["VEHICLE_KINDS", "Zone", "ZoneKind", "load_zones", "zones_to_geojson"]

VEHICLE_KINDS = frozenset({"drone", "robot"})


class ZoneKind(StrEnum):
    """Exclusions (no_fly for drones, no_go for robots) and the inclusion `operating_area`."""

    NO_FLY = "no_fly"
    NO_GO = "no_go"
    OPERATING_AREA = "operating_area"


_DEFAULT_APPLIES_TO = {
    ZoneKind.NO_FLY: frozenset({"drone"}),
    ZoneKind.NO_GO: frozenset({"robot"}),
    ZoneKind.OPERATING_AREA: frozenset({"drone", "robot"}),
}


@dataclass(frozen=True)
class Zone:
    """One zone in WGS84; circles are a Point plus `radius_m`."""

    id: str
    name: str
    kind: ZoneKind
    applies_to: frozenset[str]
    geometry: BaseGeometry
    radius_m: float | None = None
    floor_m: float | None = None
    ceiling_m: float | None = None
    active_from: datetime | None = None
    active_until: datetime | None = None
    note: str = ""

    def __post_init__(self) -> None:
        """Hold zones built in code to the same rules as zones loaded from files (raises ZoneError)."""
        zid = str(self.id)
        try:
            object.__setattr__(self, "kind", ZoneKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in ZoneKind)
            raise ZoneError(
                f"unknown kind {self.kind!r} (one of {kinds})", feature=zid, field="kind"
            ) from None
        applies = frozenset({self.applies_to} if isinstance(self.applies_to, str) else self.applies_to)
        if not applies or not applies <= VEHICLE_KINDS:
            raise ZoneError(
                f"{sorted(applies)!r} must be a non-empty subset of {sorted(VEHICLE_KINDS)}",
                feature=zid,
                field="applies_to",
            )
        object.__setattr__(self, "applies_to", applies)
        _check_geometry(self.geometry, zid)
        _check_limits(self, zid)

    @property
    def is_exclusion(self) -> bool:
        """True for no_fly / no_go: the vehicle must stay out; False for an operating area."""
        return self.kind is not ZoneKind.OPERATING_AREA

    def is_active(self, at: datetime | None) -> bool:
        """Whether the active window covers `at` ([from, until)); `at=None` means "assume active"."""
        if at is None:
            return True
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"zone {self.id}: is_active() needs a timezone-aware datetime, got {at!r}")
        if self.active_from is not None and at < self.active_from:
            return False
        return not (self.active_until is not None and at >= self.active_until)

    def active_during(self, start: datetime | None, end: datetime | None) -> bool:
        """Whether the active window overlaps [start, end): the zone matters for a trip flown then.

        `None` for either end means unbounded (and `start=None` with `end=None`: "assume active").
        """
        if self.active_until is not None and start is not None and self.active_until <= start:
            return False
        return not (self.active_from is not None and end is not None and self.active_from >= end)

    def applies(
        self, vehicle_kind: str, *, at: datetime | None = None, altitude_m: float | None = None
    ) -> bool:
        """Whether this zone binds `vehicle_kind` at time `at` and altitude `altitude_m` (None: any/always).

        The band is inclusive on both ends so that a vehicle exactly at a floor counts as inside it: the
        conservative reading for exclusions.
        """
        if vehicle_kind not in VEHICLE_KINDS:
            raise ValueError(f"vehicle_kind {vehicle_kind!r}: must be one of {sorted(VEHICLE_KINDS)}")
        if vehicle_kind not in self.applies_to or not self.is_active(at):
            return False
        if altitude_m is None:
            return True
        if self.floor_m is not None and altitude_m < self.floor_m:
            return False
        return not (self.ceiling_m is not None and altitude_m > self.ceiling_m)


# --- validation of feature properties -------------------------------------------------------------------

_Metres = Annotated[float, Field(strict=True, ge=0.0, allow_inf_nan=False)]
_AppliesTo = Literal["drone", "robot", "both"]

# simplestyle-spec keys written by geojson.io and similar editors; harmless, so tolerated.
_STYLE_KEYS = frozenset(
    {
        "title",
        "description",
        "marker-size",
        "marker-symbol",
        "marker-color",
        "stroke",
        "stroke-opacity",
        "stroke-width",
        "fill",
        "fill-opacity",
    }
)


class _ZoneProperties(BaseModel):
    """The properties of one zone Feature; unknown keys are refused so a typo cannot silently drop a limit."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1)] | Annotated[int, Field(strict=True)] | None = None
    name: str | None = None
    kind: ZoneKind
    applies_to: _AppliesTo | Annotated[list[_AppliesTo], Field(min_length=1)] | None = None
    floor_m: _Metres | None = None
    ceiling_m: Annotated[float, Field(strict=True, gt=0.0, allow_inf_nan=False)] | None = None
    active_from: AwareDatetime | None = None
    active_until: AwareDatetime | None = None
    radius_m: Annotated[float, Field(strict=True, gt=0.0, allow_inf_nan=False)] | None = None
    note: str = ""


def _field_of(err: Mapping[str, Any]) -> str | None:
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    return loc[0] if loc else None


def _props_error(exc: ValidationError, feature: str) -> ZoneError:
    err = exc.errors()[0]
    field = _field_of(err)
    reason = err["msg"]
    if err["type"] == "extra_forbidden":
        reason = "unknown property (allowed: " + ", ".join(sorted(_ZoneProperties.model_fields)) + ")"
    elif "input" in err and err["type"] != "missing":
        reason = f"{reason} (got {err['input']!r})"
    return ZoneError(reason, feature=feature, field=field)


def _applies_to(value: str | list[str] | None, kind: ZoneKind) -> frozenset[str]:
    if value is None:
        return _DEFAULT_APPLIES_TO[kind]
    values = [value] if isinstance(value, str) else value
    out: set[str] = set()
    for v in values:
        out |= VEHICLE_KINDS if v == "both" else {v}
    return frozenset(out)


# --- geometry --------------------------------------------------------------------------------------------

_GEOMETRY_TYPES = ("Polygon", "MultiPolygon", "Point")


def _check_coordinates(geom: BaseGeometry, feature: str) -> None:
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        raise ZoneError("geometry is empty", feature=feature, field="geometry")
    if not np.isfinite(coords).all():
        raise ZoneError("coordinates must be finite numbers", feature=feature, field="geometry")
    lon, lat = coords[:, 0], coords[:, 1]
    bad_lon = np.abs(lon) > 180.0
    bad_lat = np.abs(lat) > 90.0
    if bad_lon.any() or bad_lat.any():
        i = int(np.argmax(bad_lon | bad_lat))
        reason = (
            f"coordinate [{float(lon[i])!r}, {float(lat[i])!r}] is out of range "  # not np.float64(...)
            "(GeoJSON order is [longitude, latitude]: lon in [-180, 180], lat in [-90, 90])"
        )
        # Swapped order is the usual culprit: every pair would be valid read the other way round.
        if (np.abs(lat) <= 180.0).all() and (np.abs(lon) <= 90.0).all():
            reason += "; these look like [latitude, longitude]: swap them"
        raise ZoneError(reason, feature=feature, field="geometry")


def _parse_geometry(raw: Any, feature: str) -> BaseGeometry:
    if not isinstance(raw, Mapping):
        raise ZoneError("missing or not an object", feature=feature, field="geometry")
    gtype = raw.get("type")
    if gtype not in _GEOMETRY_TYPES:
        raise ZoneError(
            f"unsupported geometry type {gtype!r} (use one of {', '.join(_GEOMETRY_TYPES)})",
            feature=feature,
            field="geometry",
        )
    try:
        with warnings.catch_warnings():  # NaN coordinates warn here; _check_coordinates reports them
            warnings.simplefilter("ignore", RuntimeWarning)
            geom = shape(raw)
    except Exception as exc:  # shapely/GEOS raise several types for malformed coordinate arrays
        raise ZoneError(f"malformed {gtype} coordinates: {exc}", feature=feature, field="geometry") from exc
    _check_geometry(geom, feature)
    return geom


def _check_geometry(geom: Any, feature: str) -> None:
    if not isinstance(geom, BaseGeometry) or geom.geom_type not in _GEOMETRY_TYPES:
        got = geom.geom_type if isinstance(geom, BaseGeometry) else type(geom).__name__
        raise ZoneError(
            f"unsupported geometry type {got!r} (use one of {', '.join(_GEOMETRY_TYPES)})",
            feature=feature,
            field="geometry",
        )
    gtype = geom.geom_type
    _check_coordinates(geom, feature)
    if gtype == "Point":
        return
    # Collinear rings are also "Self-intersection" to GEOS; their hull having no area tells them apart.
    if geom.convex_hull.area <= 0.0:
        raise ZoneError(f"degenerate {gtype}: it encloses no area", feature=feature, field="geometry")
    if not geom.is_valid:
        raise ZoneError(
            f"invalid {gtype}: {shapely.is_valid_reason(geom)} (self-intersecting or overlapping rings?)",
            feature=feature,
            field="geometry",
        )
    if geom.area <= 0.0:
        raise ZoneError(f"degenerate {gtype}: it encloses no area", feature=feature, field="geometry")


def _positive(value: float | None, field: str, feature: str, *, zero_ok: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ZoneError(f"must be a finite number (got {value!r})", feature=feature, field=field)
    if value < 0.0 or (value == 0.0 and not zero_ok):
        raise ZoneError(
            f"must be {'>= 0' if zero_ok else '> 0'} (got {value!r})", feature=feature, field=field
        )


def _check_limits(zone: Zone, feature: str) -> None:
    """Radius, altitude band and active window rules shared by files and code."""
    is_point = zone.geometry.geom_type == "Point"
    if is_point and zone.radius_m is None:
        raise ZoneError("required for a Point (circle) zone", feature=feature, field="radius_m")
    if not is_point and zone.radius_m is not None:
        raise ZoneError(
            f"only allowed for Point (circle) zones, not {zone.geometry.geom_type}",
            feature=feature,
            field="radius_m",
        )
    _positive(zone.radius_m, "radius_m", feature)
    _positive(zone.floor_m, "floor_m", feature, zero_ok=True)
    _positive(zone.ceiling_m, "ceiling_m", feature)
    if zone.floor_m is not None and zone.ceiling_m is not None and zone.ceiling_m <= zone.floor_m:
        raise ZoneError(
            f"ceiling_m {zone.ceiling_m} must be above floor_m {zone.floor_m}",
            feature=feature,
            field="ceiling_m",
        )
    for field in ("active_from", "active_until"):
        when = getattr(zone, field)
        if when is not None and (not isinstance(when, datetime) or when.utcoffset() is None):
            raise ZoneError(f"must be a timezone-aware datetime (got {when!r})", feature=feature, field=field)
    if (
        zone.active_from is not None
        and zone.active_until is not None
        and zone.active_until <= zone.active_from
    ):
        raise ZoneError(
            f"active_until {zone.active_until.isoformat()} must be after "
            f"active_from {zone.active_from.isoformat()}",
            feature=feature,
            field="active_until",
        )


# --- loading ---------------------------------------------------------------------------------------------


def _feature_zone(feat: Any, index: int) -> Zone:
    label = f"#{index}"
    if not isinstance(feat, Mapping) or feat.get("type") != "Feature":
        raise ZoneError("not a GeoJSON Feature object", feature=label, field="type")
    _check_crs(feat, label)
    raw_props = feat.get("properties")
    if raw_props is None:
        raw_props = {}
    if not isinstance(raw_props, Mapping):
        raise ZoneError("must be an object", feature=label, field="properties")
    props_in = {k: v for k, v in raw_props.items() if k not in _STYLE_KEYS}
    fid, pid = feat.get("id"), props_in.get("id")
    if fid is not None and pid is not None and str(fid) != str(pid):
        raise ZoneError(f"Feature.id {fid!r} and properties.id {pid!r} differ", feature=label, field="id")
    if pid is None and fid is not None:
        if isinstance(fid, bool) or not isinstance(fid, str | int):
            raise ZoneError(f"must be a string or an integer (got {fid!r})", feature=label, field="id")
        props_in["id"] = fid
    if props_in.get("id") is not None and isinstance(props_in["id"], str | int):
        label = str(props_in["id"])
    try:
        props = _ZoneProperties.model_validate(props_in)
    except ValidationError as exc:
        raise _props_error(exc, label) from None
    if props.id is None:
        raise ZoneError("every zone needs an id (Feature.id or properties.id)", feature=label, field="id")
    zid = str(props.id)

    geom = _parse_geometry(feat.get("geometry"), zid)
    return Zone(
        id=zid,
        name=props.name if props.name is not None else zid,
        kind=props.kind,
        applies_to=_applies_to(props.applies_to, props.kind),
        geometry=geom,
        radius_m=props.radius_m,
        floor_m=props.floor_m,
        ceiling_m=props.ceiling_m,
        active_from=props.active_from,
        active_until=props.active_until,
        note=props.note,
    )


# The obsolete GeoJSON 2008 `crs` member: only names of WGS84 longitude/latitude are accepted. RFC 7946
# removed the member and fixed the CRS, but tools still write it, and coordinates in a projected CRS
# (metres) would otherwise be read as degrees or fail with a baffling range error.
_WGS84_NAMES = frozenset(
    {
        "urn:ogc:def:crs:ogc:1.3:crs84",
        "urn:ogc:def:crs:ogc::crs84",
        "http://www.opengis.net/def/crs/ogc/1.3/crs84",
        "crs84",
        "ogc:crs84",
        "wgs84",
        "epsg:4326",
        "urn:ogc:def:crs:epsg::4326",
        "urn:ogc:def:crs:epsg:6.6:4326",
        "http://www.opengis.net/def/crs/epsg/0/4326",
    }
)


def _check_crs(obj: Mapping[str, Any], feature: str | None) -> None:
    """Refuse a `crs` member that names anything but WGS84 longitude/latitude (or cannot be read)."""
    if "crs" not in obj or obj["crs"] is None:
        return
    crs = obj["crs"]
    props = crs.get("properties") if isinstance(crs, Mapping) else None
    name = props.get("name") if isinstance(props, Mapping) else None
    if isinstance(crs, Mapping) and crs.get("type") == "name" and isinstance(name, str):
        if name.strip().lower() in _WGS84_NAMES:
            return
        reason = f"names the coordinate reference system {name!r}; zones must be in WGS84 longitude/latitude"
    else:
        reason = "is not a named WGS84 coordinate reference system (such as urn:ogc:def:crs:OGC:1.3:CRS84)"
    raise ZoneError(
        f"{reason}: reproject the file to WGS84 (EPSG:4326) and drop the member", feature=feature, field="crs"
    )


def _read_source(source: str | os.PathLike[str] | Mapping[str, Any]) -> Any:
    if not isinstance(source, str | os.PathLike):
        return source  # a parsed document (or something that is not one): checked by the caller
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ZoneError(f"cannot read zone file {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZoneError(
            f"{str(path)!r} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def load_zones(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[Zone]:
    """Zones from a GeoJSON FeatureCollection (a file path or an already parsed dict), validated.

    Raises `ZoneError` naming the feature and field for the first problem found.
    """
    doc = _read_source(source)
    if not isinstance(doc, Mapping) or doc.get("type") != "FeatureCollection":
        got = doc.get("type") if isinstance(doc, Mapping) else type(doc).__name__
        raise ZoneError(f"a zone file must be a GeoJSON FeatureCollection (got type {got!r})", field="type")
    features = doc.get("features")
    if not isinstance(features, list):
        raise ZoneError("must be a list of Feature objects", field="features")
    _check_crs(doc, None)
    zones: list[Zone] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(features):
        zone = _feature_zone(feat, i)
        if zone.id in seen:
            raise ZoneError(
                f"duplicate id: features #{seen[zone.id]} and #{i} share it", feature=zone.id, field="id"
            )
        seen[zone.id] = i
        zones.append(zone)
    return zones


def zones_to_geojson(zones: Sequence[Zone]) -> dict[str, Any]:
    """A FeatureCollection for `zones` that `load_zones` reads back to equal zones."""
    features = []
    for z in zones:
        props: dict[str, Any] = {"id": z.id, "name": z.name, "kind": z.kind.value}
        props["applies_to"] = sorted(z.applies_to)
        for key in ("radius_m", "floor_m", "ceiling_m"):
            value = getattr(z, key)
            if value is not None:
                props[key] = float(value)
        for key in ("active_from", "active_until"):
            value = getattr(z, key)
            if value is not None:
                props[key] = value.isoformat()
        if z.note:
            props["note"] = z.note
        features.append({"type": "Feature", "id": z.id, "geometry": mapping(z.geometry), "properties": props})
    return {"type": "FeatureCollection", "features": features}
